"""Pruning benchmark: greedy vs best-of-8 without pruning vs best-of-8 with exact pruning.

One server, one run, the same prompts (the load generator's built-in set) and max_tokens for
every way; requests go one at a time so latencies are not mixed up by batching across requests.
Writes benchmarks/results/pruning.md (+ .json and a PNG) with the machine described.

    python -m benchmarks.pruning                 # starts its own server (compiled mode)
    python -m benchmarks.pruning --url http://127.0.0.1:8000
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
from benchmarks.common.interleaved import timed_requests
from benchmarks.common.servers import given_or_started_server
from clients.prompts import LOAD_PROMPTS
from clients.stats import percentile

WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "best_of_8": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8, "prune": False}},
    "best_of_8_pruned": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8, "prune": True}},
}
TOKEN_RATIO_TARGET = 0.40
LATENCY_RATIO_TARGET = 1.3


@dataclass(frozen=True)
class Sample:
    """One request's measurements."""

    way: str
    prompt: int
    latency: float
    generated_tokens: int
    selected_score: float
    text: str


def measure(url: str, max_tokens: int, prompts: list[str]) -> list[Sample]:
    """Every prompt through every way, interleaved, one request at a time."""
    samples = []
    for way, i, latency, result in timed_requests(url, WAYS, prompts, max_tokens, timeout=600):
        assert result.sharpening is not None and result.usage is not None
        tokens, score = result.usage.completion_tokens, result.sharpening.selected_score or 0.0
        samples.append(Sample(way, i, latency, tokens, score, result.text))
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
        }
    return table


def same_choice_rate(samples: list[Sample]) -> float:
    """How often pruned and unpruned best-of-8 returned the same text for a prompt."""
    full = {s.prompt: s.text for s in samples if s.way == "best_of_8"}
    pruned = {s.prompt: s.text for s in samples if s.way == "best_of_8_pruned"}
    return sum(full[p] == pruned[p] for p in full) / len(full)


def write_report(
    out: Path,
    table: dict[str, dict[str, float]],
    samples: list[Sample],
    args: argparse.Namespace,
    wall: float,
) -> None:
    """pruning.md, pruning.json and pruning.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    pruned, full, greedy = table["best_of_8_pruned"], table["best_of_8"], table["greedy"]
    token_ratio = pruned["total_generated_tokens"] / full["total_generated_tokens"]
    latency_ratio = pruned["median_latency_s"] / greedy["median_latency_s"]
    (out / "pruning.json").write_text(
        json.dumps(
            {
                "table": table,
                "token_ratio": token_ratio,
                "latency_ratio_vs_greedy": latency_ratio,
                "samples": [asdict(s) for s in samples],
            },
            indent=1,
        )
    )
    lines = [
        "# Pruning benchmark",
        "",
        f"Machine: {machine()}; vLLM CPU build, embedded SmolLM2-135M-Instruct, "
        f"{'eager' if args.enforce_eager else 'compiled'} mode. {len(args.prompts)} chat prompts, "
        f"max_tokens {args.max_tokens}, requests one at a time, temperature 1 for best-of-8, "
        f"seed 1000+i per prompt. Run took {wall / 60:.1f} min. Re-run: `make bench-pruning`.",
        "",
        "| way | median latency (s) | p90 latency (s) | mean generated tokens | mean selected score |",
        "|---|---|---|---|---|",
    ]
    for way, row in table.items():
        lines.append(
            f"| {way} | {row['median_latency_s']:.2f} | {row['p90_latency_s']:.2f} | "
            f"{row['mean_generated_tokens']:.0f} | {row['mean_selected_score']:.2f} |"
        )
    lines += [
        "",
        f"- pruned / unpruned generated tokens: **{token_ratio:.2f}** "
        f"(target <= {TOKEN_RATIO_TARGET}: {'met' if token_ratio <= TOKEN_RATIO_TARGET else 'missed'})",
        f"- pruned best-of-8 median latency / greedy median latency: **{latency_ratio:.2f}x** "
        f"(target <= {LATENCY_RATIO_TARGET}: {'met' if latency_ratio <= LATENCY_RATIO_TARGET else 'missed'})",
        f"- pruned and unpruned best-of-8 chose the same text for {same_choice_rate(samples):.0%} of "
        "prompts. Pruning never changes the winner among the same candidate streams (property-tested); "
        "across two runs the streams themselves can differ because vLLM on CPU is not batch-invariant.",
        "",
        "![latency per way](pruning.png)",
    ]
    (out / "pruning.md").write_text("\n".join(lines) + "\n")
    plot(out / "pruning.png", samples)


def plot(path: Path, samples: list[Sample]) -> None:
    """Latency and generated-token distributions per way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    ways = list(WAYS)
    left.boxplot([[s.latency for s in samples if s.way == w] for w in ways], tick_labels=ways)
    left.set_ylabel("latency (s)")
    left.set_title("Latency per request")
    right.boxplot([[s.generated_tokens for s in samples if s.way == w] for w in ways], tick_labels=ways)
    right.set_ylabel("generated tokens (all candidates)")
    right.set_title("Compute per request")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = build_parser().parse_args(argv)
    args.prompts = list(LOAD_PROMPTS[: args.prompts])
    log_progress()
    started = time.perf_counter()
    with given_or_started_server(args.url, args.enforce_eager, args.out / "pruning_server.log") as url:
        samples = measure(url, args.max_tokens, args.prompts)
    table = summarise(samples)
    write_report(args.out, table, samples, args, time.perf_counter() - started)
    print((args.out / "pruning.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
