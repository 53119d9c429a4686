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
    frontier,
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


def restart_step() -> tuple[str, ...]:
    """The HTTP server process across the engine restart: the step (MiB), before and after."""
    before, after = found_in("soak.md", r"across the engine restart: HTTP server process (\d+) -> (\d+) MiB")
    return str(int(after) - int(before)), before, after


def all_processes() -> tuple[str, ...]:
    """All processes' growth (%) from warm-up to the kill and after the restart, then both ranges."""
    ranges = found_in(
        "soak.md",
        r"to the kill: .*?all processes (\d+) -> (\d+) MiB.*restart on: .*?all processes (\d+) -> (\d+) MiB",
    )
    first, last = [int(x) for x in ranges[0::2]], [int(x) for x in ranges[1::2]]
    return *(f"{100 * (b - a) / a:.1f}" for a, b in zip(first, last, strict=True)), *ranges


def tie_tolerances() -> tuple[str, str]:
    """The tie tolerance the server reported for bfloat16 (at least every bfloat16 drift that
    precision.json measured) and for float32."""
    tolerance = {
        r["dtype"]: r["health"]["tie_tolerance"] for r in result_json("precision_speed.json")["results"]
    }
    measured = [
        r[key]["max"]
        for r in result_json("precision.json")["results"]
        for key in ("batch_of_8_vs_alone", "among_others_vs_alone", "other_dtype_vs_this")
        if key in r
    ]
    assert max(measured) <= tolerance["bfloat16"] < max(measured) + 1, "not the largest drift rounded up"
    return str(tolerance["bfloat16"]), str(tolerance["float32"])


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
        "a step of {} MiB ({} -> {} MiB)",
        SOAK,
        lambda: restart_step(),
    ),
    Quote(
        "docs/operations.md",
        "All processes together grow by {}% before the kill and {}% after, and level off ({} -> {} MiB "
        "before the kill, {} -> {} MiB after)",
        SOAK,
        lambda: all_processes(),
    ),
    Quote(
        "docs/operations.md",
        "bfloat16 was not (up to {} nats over 32 tokens",
        "benchmarks/results/precision.json",
        lambda: drift()[:1],
    ),
    # api.md: the restart, the tie tolerance, the precision run
    Quote(
        "docs/api.md",
        "`/health` is 200 again as soon as it serves ({} s after the kill in the soak run, compiled, "
        "2 cores;",
        SOAK,
        lambda: found_in("soak.md", r"/health was 200 again ([\d.]+) s later"),
    ),
    Quote(
        "docs/api.md",
        "The tolerance follows from the dtype: {} nats in bfloat16 (the largest drift measured above, "
        "rounded up), {} in float32",
        "benchmarks/results/precision_speed.json",
        lambda: tie_tolerances(),
    ),
    Quote(
        "docs/api.md",
        "`benchmarks/precision.py` measures it ({} best-of-8 candidates of up to 32 tokens",
        "benchmarks/results/precision.json",
        lambda: tuple({str(r["candidates"]) for r in result_json("precision.json")["results"]}),
    ),
    # README, sharpening.md, upstream.md: what the runs were
    Quote(
        "README.md",
        "On {} questions written before any choice was made (`novel`)",
        "benchmarks/results/frontier_load/frontier.json",
        lambda: (str(frontier("frontier_load", "novel")["default"].prompts),),
    ),
    Quote(
        "docs/sharpening.md",
        "On the {} `novel` questions (written before any",
        "benchmarks/results/frontier_load/frontier.json",
        lambda: (str(frontier("frontier_load", "novel")["default"].prompts),),
    ),
    Quote(
        "docs/sharpening.md",
        "{} arithmetic, {} gsm8k and {} arc_easy items",
        "benchmarks/results/frontier_accuracy.md",
        lambda: tuple(
            found_in("frontier_accuracy.md", rf"### {task} \((\d+) items")[0]
            for task in ("arithmetic", "gsm8k", "arc_easy")
        ),
    ),
    Quote(
        "docs/upstream.md",
        "(`make bench-serving`, {}, {} prompts, {} tokens, best-of-{} at temperature 1",
        "benchmarks/results/upstream_compiled/serving.json",
        lambda: tuple(
            str(result_json("upstream_compiled/serving.json")["config"][key])
            for key in ("mode", "prompts", "max_tokens", "n")
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
