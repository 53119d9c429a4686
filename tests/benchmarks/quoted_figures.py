"""Every figure README and docs quote in prose, with the committed result it comes from.

Each `Quote` is the text a page says, `{}` where a figure stands, and a function computing those
figures from the result; tests/benchmarks/test_quoted_figures.py checks that every page says
exactly what its result gives. Tables a benchmark renders itself (`<!-- NAME:begin -->` blocks)
are checked there too. A figure a page states that is not here is not checked: add it. This
module holds the frontier's figures (README, sharpening.md, performance.md);
quoted_studies.py the other studies'.
"""

from __future__ import annotations

from benchmarks.common.quoted import Quote
from tests.benchmarks.quoted_sources import (
    RESULTS,
    f1,
    f2,
    found_in,
    frontier,
    frontier_records,
    number,
    result_json,
    started_in,
    strictly_at_least_greedy,
    table_cell,
)
from tests.benchmarks.quoted_studies import STUDIES

LOAD = "benchmarks/results/frontier_load/frontier.json"
NOVEL_A = "benchmarks/results/frontier_novel_a/frontier.json"
FRONTIER = "benchmarks/results/frontier.json"
BEAM = "benchmarks/results/frontier.md"
ACCURACY = "benchmarks/results/frontier_accuracy.md"
SHARPENING = "docs/sharpening.md"


def shipped() -> tuple[str, ...]:
    """The shipped default against greedy on `novel` (frontier_load): its and greedy's median
    log-likelihood, prompts at least greedy's (strictly, then within the tie tolerance), the
    latency ratio and its interval."""
    rows = frontier("frontier_load")
    default = rows["default"]
    return (
        f1(default.median_logprob),
        f1(rows["greedy"].median_logprob),
        str(strictly_at_least_greedy("frontier_load", "default")),
        str(default.at_least_greedy),
        f2(default.latency_vs_greedy or 0),
        *map(f2, default.latency_ratio_interval or ()),
    )


def load_wait() -> tuple[str, ...]:
    """The same with `"load": "wait"`: median, prompts within the tolerance, latency ratio, interval."""
    row = frontier("frontier_load")["default, load wait"]
    return (
        f1(row.median_logprob),
        str(row.at_least_greedy),
        f2(row.latency_vs_greedy or 0),
        *map(f2, row.latency_ratio_interval or ()),
    )


def counterexample() -> tuple[str, str]:
    """novel #6 in frontier_novel_a: the default's and greedy's log-likelihood, both finished."""
    found = {
        r.way: r for r in frontier_records("frontier_novel_a") if (r.prompt_set, r.prompt) == ("novel", 6)
    }
    assert found["default"].finish_reason == found["greedy"].finish_reason == "stop"
    return f1(found["default"].logprob_sum), f1(found["greedy"].logprob_sum)


def unseen(way: str) -> tuple[str, ...]:
    """A way's row on `unseen` in frontier.md's run: median, >= greedy, tokens, latency ratio."""
    row = frontier("", "unseen")[way]
    beats = "-" if row.at_least_greedy is None else f"{row.at_least_greedy} of {row.prompts}"
    return f1(row.median_logprob), beats, str(row.generated_tokens), f2(row.latency_vs_greedy or 0)


def below_greedy(way: str) -> tuple[str, str]:
    """On `unseen`, the prompts where `way` is below greedy's answer, and the prompts."""
    row = frontier("", "unseen")[way]
    return str(row.prompts - (row.at_least_greedy or 0)), str(row.prompts)


def beam(way: str, column: str) -> str:
    """A cell of frontier.md's comparison with vLLM's beam search (a gap without its sign)."""
    return table_cell("frontier.md", "## Against vLLM's beam search", way, column).lstrip("+")


def anchor_latencies() -> list[float]:
    """vLLM beam search's latency on each prompt of frontier_anchor.json."""
    return [a["latency"] for a in result_json("frontier_anchor.json")["answers"]]


def against_beam() -> tuple[str, ...]:
    """vLLM's beam: prompts, median and latency; beam16 and beam8's medians, gaps, latencies and
    shares; the default's gap and share."""
    return (
        str(len(anchor_latencies())),
        beam("vLLM beam search", "median log-likelihood"),
        number(beam("vLLM beam search", "median latency")),
        beam("beam16_w4", "median log-likelihood"),
        beam("beam16_w4", "gap to vLLM beam (nats)"),
        number(beam("beam16_w4", "median latency")),
        beam("beam16_w4", "share of beam latency"),
        beam("beam8 (default beam)", "median log-likelihood"),
        number(beam("beam8 (default beam)", "median latency")),
        beam("default", "gap to vLLM beam (nats)"),
        beam("default", "share of beam latency"),
    )


def per_token() -> tuple[str, ...]:
    """Per-token selection (default lp1) against the default on `chat`, and its latency ratios."""
    chat, seen = frontier("", "chat"), frontier("", "unseen")
    lp1, default = chat["default lp1"], chat["default"]
    return (
        f"{lp1.median_answer_tokens:.0f}",
        f"{default.median_answer_tokens:.0f}",
        f1(lp1.median_logprob),
        f1(default.median_logprob),
        f"{lp1.median_logprob_per_token:.3f}",
        f"{default.median_logprob_per_token:.3f}",
        f2(lp1.latency_vs_greedy or 0),
        f2(seen["default lp1"].latency_vs_greedy or 0),
    )


def accuracy(task: str, way: str, column: str = "accuracy") -> str:
    """A cell of frontier_accuracy.md's table for `task`."""
    return table_cell("frontier_accuracy.md", f"### {task}", way, column)


def accuracy_row(task: str) -> tuple[str, ...]:
    """sharpening.md's accuracy row: greedy, best-of-8 at T=1, the default with its paired
    difference, beam, the default at lp 1."""
    paired = accuracy(task, "new default", "vs greedy (paired 95 %)").replace(" (", ", ").rstrip(")")
    return (
        accuracy(task, "greedy"),
        accuracy(task, "old default (best-of-8, T=1)"),
        accuracy(task, "new default"),
        paired,
        accuracy(task, "beam"),
        accuracy(task, "new default, lp 1"),
    )


def gsm8k_likelihoods() -> tuple[str, ...]:
    """gsm8k: the median log-likelihood of the default, beam, greedy and best-of-8 at T=1, and
    the answers with no "Answer:" line of the default and greedy."""
    ways = ("new default", "beam", "greedy", "old default (best-of-8, T=1)")
    return (
        *(accuracy("gsm8k", way, "median log-likelihood") for way in ways),
        accuracy("gsm8k", "new default", "no answer"),
        accuracy("gsm8k", "greedy", "no answer"),
    )


def likelier_but_wrong() -> tuple[str]:
    """arc_easy: items whose default answer is likelier than greedy's and wrong where greedy was right."""
    lines = (RESULTS / "frontier_accuracy.md").read_text().splitlines()
    return (number(next(line for line in lines if line.startswith("- new default: "))),)


def lp1_cost() -> tuple[str, ...]:
    """gsm8k: generated tokens per item and median latency at lp 1, then at lp 0."""
    return (
        accuracy("gsm8k", "new default, lp 1", "generated tokens / item"),
        accuracy("gsm8k", "new default", "generated tokens / item"),
        accuracy("gsm8k", "new default, lp 1", "median latency"),
        accuracy("gsm8k", "new default", "median latency"),
    )


def smc_ratios(name: str, *sets: str) -> str:
    """smc's median latency over pruned best-of-8 at temperature 1's, on `sets` of a frontier result."""
    rows = frontier(name, *sets)
    return f2(rows["smc8_a4"].median_latency / rows["bon8_t1 (old default)"].median_latency)


def smc_short() -> tuple[str, ...]:
    """performance.md's smc row: latencies and ratios at 96 tokens (smc_short), then at 192 (smc_long)."""
    short, long = frontier("smc_short"), frontier("smc_long")
    return (f2(short["smc8_a4"].median_latency), f2(short["bon8_t1 (old default)"].median_latency),
            smc_ratios("smc_short"), smc_ratios("smc_short", "unseen"), smc_ratios("smc_short", "fresh"),
            f2(short["default"].median_latency),
            f2(short["smc8_a4"].median_latency / short["default"].median_latency),
            f2(long["smc8_a4"].median_latency), f2(long["bon8_t1 (old default)"].median_latency),
            smc_ratios("smc_long"))


HELD_OUT = (
    "its answers were at least greedy's on {2} ({3} within 0.1 nat), at a median {0} nats against "
    "greedy's {1}, in {4}x greedy's median latency (95 % interval {5}-{6}"
)
FRONTIER_QUOTES = [
    Quote(
        "README.md",
        "compiles the model's kernels ({} s to ready in a logged run",
        "benchmarks/results/frontier_load/frontier_server.log",
        lambda: (f"{started_in('frontier_load/frontier_server.log'):.0f}",),
    ),
    Quote(
        "README.md",
        "the default answered at {} nats where greedy alone reached {}",
        NOVEL_A,
        counterexample,
    ),
    Quote("README.md", HELD_OUT, LOAD, shipped),
    Quote(
        SHARPENING, "the default answered at {} nats where greedy alone reached {}", NOVEL_A, counterexample
    ),
    Quote(
        SHARPENING,
        "| greedy | {1} | - | 1.00x | | default (load policy `spare`) | {0} | {2} of 24 "
        "({3} within 0.1 nat) | {4}x ({5}-{6}) |",
        LOAD,
        shipped,
    ),
    Quote(
        SHARPENING, '| default, `"load": "wait"` | {} | {} within 0.1 nat | {}x ({}-{}) |', LOAD, load_wait
    ),
    Quote(SHARPENING, "| greedy | {} | {} | {} | {}x |", FRONTIER, lambda: unseen("greedy")),
    Quote(
        SHARPENING,
        "| **default** (greedy + 7 at 0.4) | **{}** | **{}** | {} | {}x |",
        FRONTIER,
        lambda: unseen("default"),
    ),
    Quote(
        SHARPENING,
        "| best-of-8 at temperature 1 (the paper's setting) | {} | {} | {} | {}x |",
        FRONTIER,
        lambda: unseen("bon8_t1 (old default)"),
    ),
    Quote(
        SHARPENING,
        "| best-of-16 at temperature 1 | {} | {} | {} | {}x |",
        FRONTIER,
        lambda: unseen("bon16_t1"),
    ),
    Quote(SHARPENING, "| best-of-8 at 0.7 | {} | {} | {} | {}x |", FRONTIER, lambda: unseen("bon8_t0.7")),
    Quote(SHARPENING, "| `beam`, n = 16 | {} | {} | {} | {}x |", FRONTIER, lambda: unseen("beam16_w4")),
    Quote(
        SHARPENING,
        "best-of-8 at 1.0 is below greedy on {} of {}",
        FRONTIER,
        lambda: below_greedy("bon8_t1 (old default)"),
    ),
    Quote(
        SHARPENING,
        "on {} prompts of that run: its median is {} at a median {} s. `beam` with n = 16 reaches {} "
        "({} nats away) at {} s, {} of the time; with the default n = 8 it reaches {} at {} s. The default "
        "best-of-8 is {} nats away at {} of the time",
        BEAM,
        against_beam,
    ),
    Quote(
        SHARPENING,
        "within {} nats of vLLM's beam-4 at {} of its time",
        BEAM,
        lambda: (beam("beam16_w4", "gap to vLLM beam (nats)"), beam("beam16_w4", "share of beam latency")),
    ),
    Quote(
        SHARPENING,
        "it took {}-{} s per answer on the {} prompts above",
        "benchmarks/results/frontier_anchor.json",
        lambda: (
            f"{min(anchor_latencies()):.0f}",
            f"{max(anchor_latencies()):.0f}",
            str(len(anchor_latencies())),
        ),
    ),
    Quote(
        SHARPENING,
        "(on `chat`: median {} tokens against the default's {}) that are less likely as sequences "
        "({} against {}) but likelier per token ({} against {}); it also prunes far less, so it costs {}x "
        "greedy's median latency on `chat` and {}x on `unseen`",
        FRONTIER,
        per_token,
    ),
    *(
        Quote(
            SHARPENING,
            f"| {task} | {{}} | {{}} | {{}} ({{}}) | {{}} | {{}} |",
            ACCURACY,
            lambda task=task: accuracy_row(task),
        )
        for task in ("arithmetic", "gsm8k", "arc_easy")
    ),
    Quote(
        SHARPENING,
        "on gsm8k the default's median answer is at {} nats and `beam`'s at {}, against greedy's {} "
        "and best-of-8 at T=1's {}, and fewer of the default's answers lack a final \"Answer:\" line "
        "({} of 25 against {} for greedy)",
        ACCURACY,
        gsm8k_likelihoods,
    ),
    Quote(
        SHARPENING,
        "on arc_easy, {} of 45 items get an answer that is likelier than greedy's and wrong",
        ACCURACY,
        likelier_but_wrong,
    ),
    Quote(
        SHARPENING,
        "(gsm8k: {} generated tokens per item against {}) but here it was no more accurate, and it "
        "prunes less, so it is slower ({} against {} median on gsm8k)",
        ACCURACY,
        lp1_cost,
    ),
]

PERFORMANCE_QUOTES = [
    Quote(
        "docs/performance.md",
        "| median latency {4}x greedy's (95 % interval {5}-{6}) with answers at median {0} nats against "
        "greedy's {1}, at least greedy's on {2} of 24 ({3} within 0.1 nat)",
        LOAD,
        shipped,
    ),
    Quote(
        "docs/performance.md",
        "| median {} s against {} s for pruned best-of-8 at temperature 1 ({}x; unseen {}x, fresh {}x) "
        "and {} s for the default ({}x). At 192 tokens {} s against {} s ({}x)",
        "benchmarks/results/smc_short/frontier.json",
        smc_short,
    ),
    Quote(
        "docs/performance.md",
        "the {1} requests in flight at the kill got 503, the server restarted the engine by itself "
        "(/health 200 again after {0} s, compiled) and served the rest; 0 candidates left running; all "
        "processes {4} -> {5} MiB over the run (+{6} %), the HTTP server process {2} -> {3} MiB",
        "benchmarks/results/soak.md",
        lambda: found_in(
            "soak.md",
            r"/health was 200 again ([\d.]+) s later.*the (\d+) requests in flight.*"
            r"HTTP server process (\d+) -> (\d+) MiB .*?server and engine processes (\d+) -> (\d+) MiB "
            r"\(\*\*\+([\d.]+)%",
        ),
    ),
]

QUOTES: list[Quote] = [*FRONTIER_QUOTES, *PERFORMANCE_QUOTES, *STUDIES]
