"""Stepwise-strategy latency: smc with 8 particles and mcmc against one sample, the shipped default
and pruned best-of-8 at temperature 1 (the previous default).

One server, the same prompts (the load generator's built-in set), max_tokens and seeds for
every way; requests go one at a time. The shipped default is a request with no `sharpening` and no
`temperature` (greedy + 7 candidates at 0.4, exact pruning, load policy spare). Writes
benchmarks/results/stepwise_<max-tokens>tokens.md (+ .json) and the block docs/performance.md
quotes. Latency only: the quality comparison is `make bench-quality`.

    python -m benchmarks.stepwise --prompts 8 --max-tokens 64 --paper-mcmc
    python -m benchmarks.stepwise --prompts 24 --max-tokens 192
    python -m benchmarks.stepwise --url http://127.0.0.1:8000
    python -m benchmarks.stepwise --max-tokens 192 --report-only   # report and block from the JSON
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

ALPHA = 4.0
WAYS: dict[str, dict[str, Any]] = {
    "one_sample": {"temperature": 1.0, "sharpening": {"strategy": "none"}},
    "default": {},
    "best_of_8_pruned": {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": 8}},
    "smc_8": {"sharpening": {"strategy": "smc", "n": 8, "alpha": ALPHA}},
    "mcmc": {"sharpening": {"strategy": "mcmc", "alpha": ALPHA}},
}
# Karan & Du's setting (16 blocks, 10 MH steps per block): sequential and long, so only on request
PAPER_MCMC = {"mcmc_16x10": {"sharpening": {"strategy": "mcmc", "alpha": ALPHA, "blocks": 16,
                                            "mh_steps": 10}}}
LABELS = {
    "one_sample": "one sample at temperature 1",
    "default": "**shipped default** (nothing sent)",
    "best_of_8_pruned": "best-of-8 at temperature 1, pruned (previous default)",
    "smc_8": "`smc`, 8 particles",
    "mcmc": "`mcmc`, 4 blocks x 2 MH steps",
    "mcmc_16x10": "`mcmc`, Karan & Du's 16 blocks x 10 MH steps",
}
SMC_TARGET = 1.5  # smc_8 median latency / pruned best-of-8 (at temperature 1) median latency
LENGTHS = (64, 192)  # the answer lengths `make bench-stepwise` runs, each its own report and block


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


def write_report(out: Path, max_tokens: int, result: dict[str, Any] | None = None) -> None:
    """stepwise_<max-tokens>tokens.json (when given a result), then its .md and quoted block from it."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"{report_name(max_tokens)}.json"
    if result is not None:
        data.write_text(json.dumps(result, indent=1) + "\n")
    result = json.loads(data.read_text())
    (out / f"{report_name(max_tokens)}.md").write_text(markdown(result))
    requote(out, tuple(b for b in BLOCKS if b.name == report_name(max_tokens)))


def ratios(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Every way's median latency over one sample's, over the shipped default's and over pruned
    best-of-8 at temperature 1's."""
    bases = {"one_sample": "one sample", "default": "default", "best_of_8_pruned": "best-of-8 at T=1"}
    return {base: {way: row["median_latency_s"] / table[key]["median_latency_s"]
                   for way, row in table.items()}
            for key, base in bases.items() if key in table}


def markdown(result: dict[str, Any]) -> str:
    """The report: setup, one row per way with its ratios, what the ratios say."""
    table, settings = result["table"], result["settings"]
    found = ratios(table)
    lines = [
        "# Stepwise strategies: latency",
        "",
        f"Machine: {result['machine']}; vLLM CPU build, embedded SmolLM2-135M-Instruct, "
        f"{settings['mode']} mode. {settings['prompts']} chat prompts, max_tokens {settings['max_tokens']}, "
        f"requests one at a time, seed 1000+i per prompt; alpha {ALPHA}; smc and mcmc with their defaults "
        "(checkpoints of 32 tokens, ESS threshold 0.5; 4 blocks, 2 MH steps per block). Medians over the "
        f"prompts; latency only, not a quality comparison. {result['date']}; command: `{result['command']}`.",
        "",
        "Ways: " + "; ".join(f"`{way}` {LABELS[way]}" for way in table) + ". The shipped default runs "
        "under the load policy `spare` (alone on the engine here, so every candidate starts; the deadline "
        "of 0.5x its greedy candidate's time still applies); every other way sends `sharpening` "
        "fields and waits for all its candidates.",
        "",
        "| way | median latency (s) | x one sample | x shipped default | x best-of-8 at T=1 "
        "| mean generated tokens | mean candidates drawn |",
        "|---|---|---|---|---|---|---|",
    ]
    for way, row in table.items():
        lines.append(
            f"| {way} | {row['median_latency_s']:.2f} | {found['one sample'][way]:.2f} "
            f"| {found['default'][way]:.2f} | {found['best-of-8 at T=1'][way]:.2f} "
            f"| {row['mean_generated_tokens']:.0f} | {row['mean_candidates_drawn']:.1f} |"
        )
    smc_ratio = found["best-of-8 at T=1"]["smc_8"]
    verdict = "met" if smc_ratio <= SMC_TARGET else "missed"
    lines += [
        "",
        f"- smc (8 particles) median latency / pruned best-of-8 at temperature 1: **{smc_ratio:.2f}x** "
        f"(target <= {SMC_TARGET}: {verdict}); / the shipped default: **{found['default']['smc_8']:.2f}x**",
        f"- mcmc median latency / one sample: **{found['one sample']['mcmc']:.2f}x**"
        f"{paper_mcmc_note(table, found['one sample'])}",
        f"- smc forked {table['smc_8']['mean_candidates_drawn'] - 8:.1f} particles per request on average "
        f"(every particle that goes on past a 32-token checkpoint is a fork; mean answer length of one "
        f"sample: {table['one_sample']['mean_generated_tokens']:.0f} tokens). smc and mcmc sample at "
        "temperature 1/alpha, which also shortens answers"
        + (": with answers this short few particles reach a checkpoint, so this run says little about the "
           "cost of forking and resampling." if table["smc_8"]["mean_candidates_drawn"] < 10 else "."),
    ]
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> str:
    """The block docs/performance.md quotes: each way's median latency and its ratios."""
    table, settings = result["table"], result["settings"]
    found = ratios(table)
    lines = [
        f"| way, max_tokens {settings['max_tokens']} | median latency | x one sample | x shipped default "
        "| x best-of-8 at T=1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for way, row in table.items():
        lines.append(f"| {LABELS[way]} | {row['median_latency_s']:.2f} s | {found['one sample'][way]:.2f} "
                     f"| {found['default'][way]:.2f} | {found['best-of-8 at T=1'][way]:.2f} |")
    lines += [
        "",
        f"{settings['prompts']} prompts, alpha {ALPHA}, one request at a time; `smc` forked "
        f"{table['smc_8']['mean_candidates_drawn'] - 8:.1f} particles per request; {result['machine']}; "
        f"{result['date']}; `{result['command']}` "
        f"([full table](benchmarks/results/{report_name(settings['max_tokens'])}.md)).",
    ]
    return "\n".join(lines) + "\n"


def report_name(max_tokens: int) -> str:
    """The report's file name (without suffix): one report per answer length."""
    return f"stepwise_{max_tokens}tokens"


BLOCKS = tuple(FigureBlock(report_name(n), RESULTS / f"{report_name(n)}.json", headline) for n in LENGTHS)


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
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write the report of --max-tokens and its block from its JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = build_parser().parse_args(argv)
    if args.report_only:
        write_report(args.out, args.max_tokens)
        return 0
    prompts = list(LOAD_PROMPTS[: args.prompts])
    log_progress()
    stamp = run_stamp("benchmarks.stepwise")
    started = time.perf_counter()
    ways = WAYS | (PAPER_MCMC if args.paper_mcmc else {})
    with given_or_started_server(args.url, args.enforce_eager, args.out / "stepwise_server.log") as url:
        samples = measure(url, ways, args.max_tokens, prompts)
    settings = {"prompts": len(prompts), "max_tokens": args.max_tokens,
                "mode": "eager" if args.enforce_eager else "compiled",
                "run_minutes": (time.perf_counter() - started) / 60}
    table = summarise(samples)
    result = {"machine": machine(), **stamp, "settings": settings, "ways": ways, "table": table,
              "ratios": ratios(table), "samples": [asdict(s) for s in samples]}
    write_report(args.out, args.max_tokens, result)
    print((args.out / f"{report_name(args.max_tokens)}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
