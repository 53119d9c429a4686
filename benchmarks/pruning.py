"""Pruning benchmark: what exact pruning saves, for the shipped default and for best-of-8 at T=1.

One server, one run, the same prompts (the load generator's built-in set) and max_tokens for
every way; requests go one at a time so latencies are not mixed up by batching across requests.
The ways:

  greedy               `temperature 0, strategy none`: one greedy decode
  default              nothing sent: the shipped default (best_of_n, greedy + 7 candidates at 0.4,
                       exact pruning, load policy spare with deadline 0.5)
  default_unpruned     the same with pruning off: `sharpening: {prune: false, load: spare}` (no
                       temperature, so greedy + 7 at 0.4; `load: spare` keeps the default's policy,
                       which any sharpening field would otherwise turn to `wait`)
  t1_pruned            best-of-8 at temperature 1 with pruning, the previous default (`wait`)
  t1_unpruned          the same with pruning off

Writes benchmarks/results/pruning.md (+ .json and a PNG) with the machine described, and the
block docs/performance.md quotes.

    python -m benchmarks.pruning                 # starts its own server (compiled mode)
    python -m benchmarks.pruning --url http://127.0.0.1:8000
    python -m benchmarks.pruning --report-only   # pruning.md, .png and the quoted block from pruning.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.environment import log_progress, machine
from benchmarks.common.figure_blocks import RESULTS, FigureBlock, requote, run_stamp
from benchmarks.common.interleaved import timed_requests
from benchmarks.common.servers import given_or_started_server
from clients.prompts import LOAD_PROMPTS
from clients.stats import percentile

WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "default": {},
    "default_unpruned": {"sharpening": {"prune": False, "load": "spare"}},
    "t1_pruned": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8, "prune": True}},
    "t1_unpruned": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8, "prune": False}},
}
LABELS = {
    "greedy": "greedy",
    "default": "**shipped default** (nothing sent)",
    "default_unpruned": "shipped default, pruning off",
    "t1_pruned": "best-of-8 at temperature 1, pruned (previous default)",
    "t1_unpruned": "best-of-8 at temperature 1, pruning off",
}
# (pruned way, its unpruned twin): what pruning saves for each setting
PAIRS = {"shipped default": ("default", "default_unpruned"), "best-of-8 at T=1": ("t1_pruned", "t1_unpruned")}
TOKEN_RATIO_TARGET = 0.40  # pruned / unpruned generated tokens
LATENCY_RATIO_TARGET = 1.3  # pruned median latency / greedy's


@dataclass(frozen=True)
class Sample:
    """One request's measurements."""

    way: str
    prompt: int
    latency: float
    generated_tokens: int
    candidates_drawn: int
    selected_score: float
    stopped_by: str | None
    text: str


def measure(url: str, max_tokens: int, prompts: list[str]) -> list[Sample]:
    """Every prompt through every way, interleaved, one request at a time."""
    samples = []
    for way, i, latency, result in timed_requests(url, WAYS, prompts, max_tokens, timeout=600):
        summary, usage = result.sharpening, result.usage
        assert summary is not None and usage is not None
        samples.append(Sample(way, i, latency, usage.completion_tokens, summary.candidates_drawn,
                              summary.selected_score or 0.0, summary.stopped_by, result.text))
    return samples


def summarise(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Median/p90 latency, mean generated tokens and selected score per way."""
    table = {}
    for way in WAYS:
        rows = [s for s in samples if s.way == way]
        latencies = [s.latency for s in rows]
        table[way] = {
            "median_latency_s": statistics.median(latencies),
            "p90_latency_s": percentile(latencies, 90),
            "mean_generated_tokens": statistics.mean(s.generated_tokens for s in rows),
            "total_generated_tokens": sum(s.generated_tokens for s in rows),
            "mean_selected_score": statistics.mean(s.selected_score for s in rows),
            "cut_by_deadline": sum(s.stopped_by == "deadline" for s in rows),
        }
    return table


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per setting: pruned / unpruned generated tokens, pruned / greedy and / unpruned median latency,
    and how often the pruned and unpruned way chose the same text."""
    table, samples = result["table"], result["samples"]
    greedy = table["greedy"]["median_latency_s"]
    found = {}
    for setting, (pruned, unpruned) in PAIRS.items():
        texts = {(s["way"], s["prompt"]): s["text"] for s in samples}
        prompts = {s["prompt"] for s in samples}
        found[setting] = {
            "tokens": table[pruned]["total_generated_tokens"] / table[unpruned]["total_generated_tokens"],
            "latency_vs_greedy": table[pruned]["median_latency_s"] / greedy,
            "latency_vs_unpruned": table[pruned]["median_latency_s"] / table[unpruned]["median_latency_s"],
            "same_choice": sum(texts[pruned, p] == texts[unpruned, p] for p in prompts) / len(prompts),
        }
    return found


def met(value: float, target: float) -> str:
    """'met' when value is at most the target, else 'missed'."""
    return "met" if value <= target else "missed"


def markdown(result: dict[str, Any]) -> str:
    """pruning.md: the setup, one row per way, and what pruning saves for each setting."""
    settings = result["settings"]
    lines = [
        "# Pruning benchmark",
        "",
        f"Machine: {result['machine']}; vLLM CPU build, embedded SmolLM2-135M-Instruct, "
        f"{settings['mode']} mode. {settings['prompts']} chat prompts, max_tokens {settings['max_tokens']}, "
        f"requests one at a time, seed 1000+i per prompt. {result['date']}; run took "
        f"{settings['run_minutes']:.1f} min. Command: `{result['command']}` "
        "(`make bench-pruning` runs the defaults).",
        "",
        "Ways (the request body beside the prompt and max_tokens):",
        *(f"- `{way}`: {LABELS[way]}: `{json.dumps(body) if body else 'nothing'}`"
          for way, body in result["ways"].items()),
        "",
        "One request at a time the load policy `spare` has the whole engine to itself, so it draws every "
        "candidate; its deadline (0.5x the greedy candidate's time) still cuts the extras that run "
        "longer. The `t1_` ways name sharpening fields, so they run under `wait` (no deadline).",
        "",
        "| way | median latency (s) | p90 latency (s) | mean generated tokens | mean selected score "
        "| requests cut by the deadline |",
        "|---|---|---|---|---|---|",
    ]
    for way, row in result["table"].items():
        lines.append(
            f"| {way} | {row['median_latency_s']:.2f} | {row['p90_latency_s']:.2f} | "
            f"{row['mean_generated_tokens']:.0f} | {row['mean_selected_score']:.2f} "
            f"| {row['cut_by_deadline']} |"
        )
    lines += ["", "What pruning saves, each setting against the same setting with pruning off:"]
    for setting, found in ratios(result).items():
        tokens, latency = found["tokens"], found["latency_vs_greedy"]
        lines += [
            f"- {setting}: pruned / unpruned generated tokens **{tokens:.2f}** "
            f"(target <= {TOKEN_RATIO_TARGET}: {met(tokens, TOKEN_RATIO_TARGET)}); median latency "
            f"**{found['latency_vs_unpruned']:.2f}x** the unpruned one's and **{latency:.2f}x** greedy's "
            f"(target <= {LATENCY_RATIO_TARGET}: {met(latency, LATENCY_RATIO_TARGET)}); "
            f"the same text as unpruned for {found['same_choice']:.0%} of prompts",
        ]
    lines += [
        "",
        "Pruning never changes the winner among the same candidate streams (property-tested); across two "
        "requests the streams themselves can differ because vLLM on CPU is not batch-invariant.",
        "",
        "![latency per way](pruning.png)",
    ]
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> str:
    """The block docs/performance.md quotes: every way's latency and tokens, and what pruning saves."""
    table, settings = result["table"], result["settings"]
    greedy = table["greedy"]["median_latency_s"]
    lines = [
        "| way | median latency | p90 latency | generated tokens (all candidates) |",
        "|---|---:|---:|---:|",
    ]
    for way, row in table.items():
        versus = "" if way == "greedy" else f" ({row['median_latency_s'] / greedy:.2f}x greedy's)"
        lines.append(f"| {LABELS[way]} | {row['median_latency_s']:.2f} s{versus} "
                     f"| {row['p90_latency_s']:.2f} s | {row['mean_generated_tokens']:.0f} |")
    found = ratios(result)
    default, old = found["shipped default"], found["best-of-8 at T=1"]
    lines += [
        "",
        f"Pruning leaves the shipped default {default['tokens']:.2f}x the generated tokens it draws "
        f"with pruning off, at {default['latency_vs_unpruned']:.2f}x its median latency (best-of-8 at "
        f"temperature 1: {old['tokens']:.2f}x, {old['latency_vs_unpruned']:.2f}x). {settings['prompts']} "
        f"prompts, max_tokens {settings['max_tokens']}, one request at a time; {result['machine']}; "
        f"{result['date']}; "
        "`make bench-pruning` ([full table](benchmarks/results/pruning.md)).",
    ]
    return "\n".join(lines) + "\n"


BLOCKS = (FigureBlock("pruning", RESULTS / "pruning.json", headline),)


def plot(path: Path, result: dict[str, Any]) -> None:
    """Latency and generated-token distributions per way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    ways = list(result["ways"])
    left.boxplot([[s["latency"] for s in samples if s["way"] == w] for w in ways], tick_labels=ways)
    left.set_ylabel("latency (s)")
    left.set_title("Latency per request")
    right.boxplot([[s["generated_tokens"] for s in samples if s["way"] == w] for w in ways], tick_labels=ways)
    right.set_ylabel("generated tokens (all candidates)")
    right.set_title("Compute per request")
    for axis in (left, right):
        axis.tick_params(axis="x", labelsize=8, rotation=15)
    fig.suptitle(result["machine"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, result: dict[str, Any] | None = None) -> None:
    """pruning.json (when given a result), then pruning.md, pruning.png and the quoted block from it."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "pruning.json"
    if result is not None:
        data.write_text(json.dumps(result, indent=1) + "\n")
    result = json.loads(data.read_text())
    (out / "pruning.md").write_text(markdown(result))
    plot(out / "pruning.png", result)
    requote(out, BLOCKS)


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pruning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="a running whetstone server (default: start one)")
    parser.add_argument(
        "--enforce-eager",
        action="store_true",
        help="start the server in eager mode (faster start, ~2x slower decoding)",
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="token limit per candidate")
    parser.add_argument(
        "--prompts",
        type=int,
        default=len(LOAD_PROMPTS),
        help=f"how many built-in prompts to use (at most {len(LOAD_PROMPTS)})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write the report and the quoted block from pruning.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = build_parser().parse_args(argv)
    if args.report_only:
        write_report(args.out)
        return 0
    prompts = list(LOAD_PROMPTS[: args.prompts])
    log_progress()
    stamp = run_stamp("benchmarks.pruning")
    started = time.perf_counter()
    with given_or_started_server(args.url, args.enforce_eager, args.out / "pruning_server.log") as url:
        samples = measure(url, args.max_tokens, prompts)
    settings = {"prompts": len(prompts), "max_tokens": args.max_tokens,
                "mode": "eager" if args.enforce_eager else "compiled",
                "run_minutes": (time.perf_counter() - started) / 60}
    result = {"machine": machine(), **stamp, "settings": settings, "ways": WAYS,
              "table": summarise(samples), "samples": [asdict(s) for s in samples]}
    write_report(args.out, result)
    print((args.out / "pruning.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
