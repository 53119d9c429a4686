"""The figures docs quote from the studies other than the frontier (see quoted_figures.py)."""

from __future__ import annotations

from benchmarks.common.quoted import Quote
from tests.benchmarks.quoted_adaptive import ADAPTIVE
from tests.benchmarks.quoted_amortize import AMORTIZATION
from tests.benchmarks.quoted_quality import QUALITY
from tests.benchmarks.quoted_sources import (
    compiled_in,
    f2,
    found_in,
    result_json,
    started_in,
)

LOG = "frontier_load/frontier_server.log"
SOAK = "benchmarks/results/soak.md"


def speed(dtype: str) -> dict[str, float]:
    """Generated tokens per second of each way in precision_speed.json for `dtype`."""
    return next(
        r["tokens_per_s"] for r in result_json("precision_speed.json")["results"] if r["dtype"] == dtype
    )


def speed_row(dtype: str) -> tuple[str, ...]:
    """operations.md's speed row for `dtype`: greedy, the default, best-of-8 at T=1."""
    rates = speed(dtype)
    return tuple(str(rates[way]) for way in ("greedy", "default_8", "best_of_8_t1"))


def bf16_gain() -> tuple[str, ...]:
    """bfloat16's speed over float32's for greedy and the default; the default's and greedy's rate."""
    bf16, fp32 = speed("bfloat16"), speed("float32")
    return (
        f2(bf16["greedy"] / fp32["greedy"]),
        f2(bf16["default_8"] / fp32["default_8"]),
        str(bf16["default_8"]),
        str(bf16["greedy"]),
    )


def drift() -> tuple[str, ...]:
    """precision.json: bfloat16 in its batch of 8 against alone, and against float32's score."""
    results = {r["dtype"]: r for r in result_json("precision.json")["results"]}
    batch, other = results["bfloat16"]["batch_of_8_vs_alone"], results["float32"]["other_dtype_vs_this"]
    return (
        f2(batch["max"]),
        f2(batch["median"]),
        f"{batch['max_per_token']:.3f}",
        f2(other["max"]),
        f2(other["median"]),
        f"{other['max_per_token']:.3f}",
    )


def upstream() -> tuple[str, ...]:
    """upstream_compiled: latency and requests/s against in-process whetstone, and against vLLM n=8."""
    targets = result_json("upstream_compiled/serving.json")["targets"]["upstream"]
    return f2(targets["latency_ratio"]), f2(targets["throughput_ratio"]), f2(targets["throughput_vs_vllm"])


STUDIES: list[Quote] = [
    # setup: the first start
    Quote(
        "docs/setup.md",
        '2026-12-07), {} s passed from its first log line to "Application startup complete", '
        "{} s of them compiling",
        f"benchmarks/results/{LOG}",
        lambda: (f"{started_in(LOG):.0f}", f"{compiled_in(LOG):.0f}"),
    ),
    # operations.md: precision's speed, the soak run
    Quote(
        "docs/operations.md",
        "| bfloat16 | {} | {} | {} |",
        "benchmarks/results/precision_speed.json",
        lambda: speed_row("bfloat16"),
    ),
    Quote(
        "docs/operations.md",
        "| float32 | {} | {} | {} |",
        "benchmarks/results/precision_speed.json",
        lambda: speed_row("float32"),
    ),
    Quote(
        "docs/operations.md",
        "bfloat16 is {}x faster than float32 for greedy and {}x for the default, and a decode "
        "step of 8 sequences costs about what a step of one does ({} tokens/s against {})",
        "benchmarks/results/precision_speed.json",
        bf16_gain,
    ),
    Quote(
        "docs/operations.md",
        "{} requests, {} min, {} unexpected errors",
        SOAK,
        lambda: found_in(
            "soak.md",
            r"(\d+) requests at concurrency.*run took ([\d.]+) min.*"
            r"unexpected errors: \*\*(\d+)\*\*",
        ),
    ),
    Quote(
        "docs/operations.md",
        "flat under traffic: {} -> {} MiB over the five minutes from warm-up to the kill, "
        "and {} -> {} MiB after the restart",
        SOAK,
        lambda: found_in(
            "soak.md",
            r"from warm-up to the kill: HTTP server process (\d+) -> (\d+) MiB.*"
            r"after the restart on: HTTP server process (\d+) -> (\d+) MiB",
        ),
    ),
    Quote(
        "docs/operations.md",
        "({} -> {} MiB)",
        SOAK,
        lambda: found_in("soak.md", r"across the engine restart: HTTP server process (\d+) -> (\d+) MiB"),
    ),
    Quote(
        "docs/operations.md",
        "({} -> {} MiB before the kill, {} -> {} MiB after)",
        SOAK,
        lambda: found_in(
            "soak.md",
            r"to the kill: .*?all processes (\d+) -> (\d+) MiB.*"
            r"restart on: .*?all processes (\d+) -> (\d+) MiB",
        ),
    ),
    # api.md: how far a bfloat16 score moves
    Quote(
        "docs/api.md",
        "| bfloat16 | up to {} nats, median {} (at most {} per token) | identical (0.0) | up to {} "
        "nats, median {} ({} per token) |",
        "benchmarks/results/precision.json",
        drift,
    ),
    # upstream.md
    Quote(
        "docs/upstream.md",
        "answered at {}x the median latency of in-process whetstone at concurrency 1 and {}x "
        "its requests/s at concurrency 8, which is {}x the requests/s",
        "benchmarks/results/upstream_compiled/serving.json",
        upstream,
    ),
    *QUALITY,
    *ADAPTIVE,
    *AMORTIZATION,
]
