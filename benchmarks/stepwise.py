"""Stepwise-strategy latency: smc with 8 particles vs pruned best-of-8, and mcmc's multiplier.

One server, the same prompts (the load generator's built-in set), max_tokens and seeds for
every way; requests go one at a time. Writes benchmarks/results/stepwise_<max-tokens>tokens.md
(+ .json). Latency only: the quality comparison is `make bench-quality`.

    python -m benchmarks.stepwise --prompts 8 --max-tokens 64 --paper-mcmc
    python -m benchmarks.stepwise --prompts 24 --max-tokens 192
    python -m benchmarks.stepwise --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.environment import log_progress, machine
from benchmarks.common.interleaved import timed_requests
from benchmarks.common.servers import given_or_started_server
from clients.prompts import LOAD_PROMPTS

ALPHA = 4.0
WAYS: dict[str, dict[str, Any]] = {
    "one_sample": {"temperature": 1.0, "sharpening": {"strategy": "none"}},
    "best_of_8_pruned": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8}},
    "smc_8": {"sharpening": {"strategy": "smc", "n": 8, "alpha": ALPHA}},
    "mcmc": {"sharpening": {"strategy": "mcmc", "alpha": ALPHA}},
}
# Karan & Du's setting (16 blocks, 10 MH steps per block): sequential and long, so only on request
PAPER_MCMC = {"mcmc_16x10": {"sharpening": {"strategy": "mcmc", "alpha": ALPHA, "blocks": 16,
                                            "mh_steps": 10}}}
SMC_TARGET = 1.5  # smc_8 median latency / pruned best-of-8 median latency


@dataclass(frozen=True)
class Sample:
    """One request's measurements."""

    way: str
    prompt: int
    latency: float
    generated_tokens: int
    candidates_drawn: int


def measure(url: str, ways: dict[str, dict[str, Any]], max_tokens: int, prompts: list[str]) -> list[Sample]:
    """Every prompt through every way, interleaved, one request at a time."""
    samples = []
    for way, i, latency, result in timed_requests(url, ways, prompts, max_tokens, timeout=1800):
        assert result.sharpening is not None and result.usage is not None
        samples.append(
            Sample(way, i, latency, result.usage.completion_tokens, result.sharpening.candidates_drawn)
        )
    return samples


def summarise(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Median latency, mean generated tokens and candidates per way."""
    table = {}
    for way in dict.fromkeys(s.way for s in samples):
        rows = [s for s in samples if s.way == way]
        table[way] = {
            "median_latency_s": statistics.median(s.latency for s in rows),
            "mean_generated_tokens": statistics.mean(s.generated_tokens for s in rows),
            "mean_candidates_drawn": statistics.mean(s.candidates_drawn for s in rows),
        }
    return table


def write_report(out: Path, table: dict[str, dict[str, float]], samples: list[Sample], args: Any) -> None:
    """stepwise_<max-tokens>tokens.md and .json under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    base = table["one_sample"]["median_latency_s"]
    smc_ratio = table["smc_8"]["median_latency_s"] / table["best_of_8_pruned"]["median_latency_s"]
    ratios = {way: row["median_latency_s"] / base for way, row in table.items()}
    data = {"table": table, "smc_vs_pruned_best_of_8": smc_ratio, "vs_one_sample": ratios}
    data["samples"] = [asdict(s) for s in samples]
    (out / f"{report_name(args.max_tokens)}.json").write_text(json.dumps(data, indent=1))
    lines = [
        "# Stepwise strategies: latency",
        "",
        f"Machine: {machine()}; vLLM CPU build, embedded SmolLM2-135M-Instruct, "
        f"{'eager' if args.enforce_eager else 'compiled'} mode. {len(args.prompts)} chat prompts, "
        f"max_tokens {args.max_tokens}, requests one at a time, seed 1000+i per prompt; alpha {ALPHA}; "
        "smc and mcmc with their defaults (checkpoints of 32 tokens, ESS threshold 0.5; 4 blocks, "
        "2 MH steps per block). Medians over the prompts; latency only, not a quality comparison.",
        "",
        "| way | median latency (s) | x one sample | mean generated tokens | mean candidates drawn |",
        "|---|---|---|---|---|",
    ]
    for way, row in table.items():
        lines.append(
            f"| {way} | {row['median_latency_s']:.2f} | {ratios[way]:.2f} | "
            f"{row['mean_generated_tokens']:.0f} | {row['mean_candidates_drawn']:.1f} |"
        )
    verdict = "met" if smc_ratio <= SMC_TARGET else "missed"
    lines += [
        "",
        f"- smc (8 particles) median latency / pruned best-of-8: **{smc_ratio:.2f}x** "
        f"(target <= {SMC_TARGET}: {verdict})",
        f"- mcmc median latency / one sample: **{ratios['mcmc']:.2f}x**{paper_mcmc_note(table, ratios)}",
        f"- smc forked {table['smc_8']['mean_candidates_drawn'] - 8:.1f} particles per request on average "
        f"(every particle that goes on past a 32-token checkpoint is a fork; mean answer length of one "
        f"sample: {table['one_sample']['mean_generated_tokens']:.0f} tokens). smc and mcmc sample at "
        "temperature 1/alpha, which also shortens answers"
        + (": with answers this short few particles reach a checkpoint, so this run says little about the "
           "cost of forking and resampling." if table["smc_8"]["mean_candidates_drawn"] < 10 else "."),
    ]
    (out / f"{report_name(args.max_tokens)}.md").write_text("\n".join(lines) + "\n")


def report_name(max_tokens: int) -> str:
    """The report's file name (without suffix): one report per answer length."""
    return f"stepwise_{max_tokens}tokens"


def paper_mcmc_note(table: dict[str, dict[str, float]], ratios: dict[str, float]) -> str:
    """The multipliers of mcmc at the paper's size, when it was timed."""
    if "mcmc_16x10" not in table:
        return ""
    tokens = table["mcmc_16x10"]["mean_generated_tokens"] / table["one_sample"]["mean_generated_tokens"]
    return (f"; with Karan & Du's 16 blocks x 10 MH steps: **{ratios['mcmc_16x10']:.2f}x** "
            f"({tokens:.1f}x the generated tokens of one sample)")


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stepwise",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="a running whetstone server (default: start one)")
    parser.add_argument("--enforce-eager", action="store_true", help="start the server in eager mode")
    parser.add_argument("--max-tokens", type=int, default=64, help="token limit per answer")
    parser.add_argument(
        "--prompts", type=int, default=6, help=f"built-in prompts (at most {len(LOAD_PROMPTS)})"
    )
    parser.add_argument(
        "--paper-mcmc", action="store_true",
        help="also time mcmc with the paper's 16 blocks x 10 MH steps (tens of seconds per request)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = build_parser().parse_args(argv)
    args.prompts = list(LOAD_PROMPTS[: args.prompts])
    log_progress()
    with given_or_started_server(args.url, args.enforce_eager, args.out / "stepwise_server.log") as url:
        samples = measure(url, WAYS | (PAPER_MCMC if args.paper_mcmc else {}), args.max_tokens, args.prompts)
    write_report(args.out, summarise(samples), samples, args)
    print((args.out / f"{report_name(args.max_tokens)}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
