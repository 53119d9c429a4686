"""The figures docs/quality.md quotes from the quality study (see quoted_figures.py).

What the 32 cached candidates per item give is computed from the raw cache
(benchmarks/results/quality_raw/, with the benchmark's own grading and selection rules); what
needs the benchmark's sub-sampling or its live-strategy runs is read from the tables it
generated in benchmarks/results/quality.md.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from functools import cache

from benchmarks.common.datasets import TASKS
from benchmarks.common.quoted import Quote
from benchmarks.quality.data import graded_items
from benchmarks.quality.stats import ItemSamples, Sample, best_of, majority_of, rank_positions
from tests.benchmarks.quoted_sources import RESULTS, jsonl, line_after, number, table, table_cell

PAGE = "docs/quality.md"
REPORT = "quality.md"
SOURCE = "benchmarks/results/quality.md"
RAW = "benchmarks/results/quality_raw"
EVERY_N = "## Every method at every N"
LIVE = ("power", "smc", "mcmc", "confidence")
LIVE_ROWS = {
    "power": "power (n=8)",
    "smc": "smc (n=8)",
    "mcmc": "mcmc (one chain)",
    "confidence": "confidence (n=8)",
}


@dataclass(frozen=True)
class Picks:
    """A task's items with what greedy, best-of-32 (lp 0 and lp 1) and majority of 32 chose."""

    items: tuple[ItemSamples, ...]
    best: tuple[Sample, ...]
    per_token: tuple[Sample, ...]
    majority: tuple[Sample, ...]


@cache
def picks(task: str) -> Picks:
    """Every item of the task's raw cache, graded, with each rule's choice among all 32."""
    items = tuple(graded_items(jsonl(f"quality_raw/{task}.jsonl"), TASKS[task], 32))
    everything = range(32)
    best, per_token, majority = [], [], []
    for item in items:
        by_score, by_mean = rank_positions(item.samples, 0.0), rank_positions(item.samples, 1.0)
        best.append(item.samples[best_of(by_score, everything)])
        per_token.append(item.samples[best_of(by_mean, everything)])
        majority.append(item.samples[majority_of(item.samples, by_score, everything)])
    return Picks(items, tuple(best), tuple(per_token), tuple(majority))


def mean_tokens(samples: tuple[Sample, ...] | list[Sample]) -> str:
    """Their mean length, in whole tokens."""
    return f"{statistics.fmean(s.num_tokens for s in samples):.0f}"


def every_n(task: str, method: str, n: int, column: str) -> str:
    """A cell of the task's table in 'Every method at every N'."""
    rows = table(REPORT, f"### {task}", EVERY_N)
    return next(r[column] for r in rows if r["method"] == method and r["N"] == str(n))


def points(task: str, method: str, n: int) -> list[str]:
    """A method's difference from greedy and its paired interval, as written."""
    return [number(every_n(task, method, n, "vs greedy, points [paired 95% CI]"), k) for k in range(3)]


def by_n(task: str, method: str) -> dict[int, str]:
    """A method's accuracy (%) at each N, from the task's 'Accuracy (%) by N' table."""
    row = next(r for r in table(REPORT, f"## {task}") if r["method"] == method)
    return {int(column[2:]): cell for column, cell in row.items() if column.startswith("N=") and cell}


def setup() -> tuple[str, ...]:
    """The host's cores and the one date every collection finished on."""
    runs = jsonl("quality_raw/runs.jsonl")
    assert all(run["server"] == "spawned, compiled" for run in runs)
    (day,) = {run["finished_at"][:10] for run in runs}
    machine = line_after(REPORT, "## Setup", "- Machine:")
    assert "AMD EPYC" in machine and "bfloat16" in line_after(REPORT, "## Setup", "- Model:")
    return number(machine.split(",")[1]), day


def intervals() -> tuple[str, ...]:
    """Best-of-32's paired interval against greedy, per task."""
    return tuple(
        k for task in ("arithmetic", "arc_easy", "gsm8k") for k in points(task, "best-of-N, lp 0", 32)[1:]
    )


def growth() -> tuple[str, ...]:
    """Best-of-N (lp 0) on arithmetic at N = 1, 2, 4 and 32."""
    accuracy = by_n("arithmetic", "best-of-N, lp 0")
    return tuple(accuracy[n] for n in (1, 2, 4, 32))


def verifier(task: str) -> str:
    """How often a correct sample out-scores a wrong one, in %."""
    line = line_after(REPORT, f"## {task}", "- Within an item, a correct sample out-scores a wrong one")
    return f"{100 * float(number(line)):.0f}"


def agreement() -> tuple[str, ...]:
    """On arithmetic: best-of-32 gives greedy's answer (%, where greedy gives one); items where
    both are right or both wrong, of all; fixed; broken; pass@32 (%); pass@32 over the better
    likelihood pick's accuracy, in words."""
    found = picks("arithmetic")
    pairs = list(zip(found.best, found.items, strict=True))
    answered = [(b, i) for b, i in pairs if i.greedy.answer is not None]
    same = 100 * statistics.fmean(b.answer == i.greedy.answer for b, i in answered)
    oracle = statistics.fmean(any(s.correct for s in i.samples) for i in found.items)
    picked = max(statistics.fmean(s.correct for s in chosen) for chosen in (found.best, found.per_token))
    return (
        f"{same:.0f}",
        str(sum(b.correct == i.greedy.correct for b, i in pairs)),
        str(len(pairs)),
        str(sum(b.correct and not i.greedy.correct for b, i in pairs)),
        str(sum(i.greedy.correct and not b.correct for b, i in pairs)),
        f"{100 * oracle:.1f}",
        {2: "twice", 3: "three times"}[round(oracle / picked)],
    )


def small_n() -> tuple[str, ...]:
    """One sample's shortfall on arithmetic and arc_easy (whole points, least and most); best-of-2
    on arithmetic with its interval; the least N at which best-of-N reaches greedy on both."""
    tasks = ("arithmetic", "arc_easy")
    short = sorted(abs(float(points(task, "sampling (N=1)", 1)[0])) for task in tasks)
    greedy = {task: float(by_n(task, "greedy")[1]) for task in tasks}
    reached = {
        min(n for n, cell in by_n(task, "best-of-N, lp 0").items() if float(cell) >= greedy[task])
        for task in tasks
    }
    (n,) = reached
    return (f"{short[0]:.0f}", f"{short[-1]:.0f}", *points("arithmetic", "best-of-N, lp 0", 2), str(n))


def letter_bias() -> tuple[str, ...]:
    """arc_easy: greedy's accuracy (%), best-of-32's most frequent answer and its share (%)."""
    found = picks("arc_easy")
    letter, count = Counter(s.answer for s in found.best).most_common(1)[0]
    greedy = 100 * statistics.fmean(i.greedy.correct for i in found.items)
    return f"{greedy:.1f}", str(letter), f"{100 * count / len(found.best):.0f}"


def short_answers() -> tuple[str, ...]:
    """gsm8k: mean tokens of best-of-32 (lp 0), greedy, correct samples and lp 1's picks; the
    items majority of 32 gets right, the items, greedy's."""
    found = picks("gsm8k")
    accuracy = {
        rule: sum(s.correct for s in chosen)
        for rule, chosen in (("lp0", found.best), ("lp1", found.per_token))
    }
    assert accuracy["lp1"] <= accuracy["lp0"], "the page says lp 1 is no more accurate"
    return (
        mean_tokens(found.best),
        mean_tokens([i.greedy for i in found.items]),
        mean_tokens([s for i in found.items for s in i.samples if s.correct]),
        mean_tokens(found.per_token),
        str(sum(s.correct for s in found.majority)),
        str(len(found.items)),
        str(sum(i.greedy.correct for i in found.items)),
    )


def cost() -> tuple[str, ...]:
    """A 32-candidate request's time over greedy's on arithmetic, in whole times, and both times."""
    many = table_cell(REPORT, "## Setup", "arithmetic", "32-candidate request (s)")
    one = table_cell(REPORT, "## Setup", "arithmetic", "greedy request (s)")
    return f"{float(many) / float(one):.0f}", many, one


def live_rows(task: str) -> dict[str, dict[str, str]]:
    """The task's 'accuracy versus tokens' table, by way."""
    return {row["way"]: row for row in table(REPORT, f"### {task}: accuracy versus tokens")}


def live_items(task: str) -> int:
    """The items the live strategies answered on the task."""
    heading = next(
        line
        for line in (RESULTS / REPORT).read_text().splitlines()
        if line.startswith(f"### {task}: accuracy versus tokens")
    )
    return int(number(heading.split("(")[1]))


def includes_zero(cell: str) -> bool:
    """Whether a 'points [low, high]' cell's interval includes 0."""
    return float(number(cell, 1)) <= 0 <= float(number(cell, 2))


def live() -> tuple[str, ...]:
    """The live strategies on arithmetic and arc_easy: the items; the largest distance from greedy
    (whole points, rounded up); mcmc's tokens over greedy's; the others' least and most; greedy's
    answer lengths (least, most); then gsm8k's items, greedy's tokens (to tens) and the best
    accuracy any way reached there (%)."""
    tasks = ("arithmetic", "arc_easy")
    (items,) = {live_items(task) for task in tasks}
    rows = {task: live_rows(task) for task in (*tasks, "gsm8k")}
    column = "vs greedy, points [paired 95% CI]"
    for task, found in rows.items():
        assert all(includes_zero(found[LIVE_ROWS[s]][column]) for s in LIVE), (
            f"{task}: an interval excludes 0"
        )
        best_of_8 = float(number(found["best-of-N, lp 0, N=8"]["accuracy % [95% Wilson CI]"]))
        if task != "gsm8k":
            assert all(
                float(number(found[LIVE_ROWS[s]]["accuracy % [95% Wilson CI]"])) <= best_of_8 for s in LIVE
            )
    for task in tasks:
        for strategy in ("smc", "mcmc"):
            line = line_after(REPORT, f"### {task}: accuracy versus tokens", f"- {LIVE_ROWS[strategy]}:")
            assert float(number(line.split("greedy's answer on")[1])) > 50, (
                f"{strategy} mostly differs on {task}"
            )
    gap = max(abs(float(number(rows[t][LIVE_ROWS[s]][column]))) for t in tasks for s in LIVE)
    ratio = "x greedy's tokens"
    (mcmc,) = {rows[t][LIVE_ROWS["mcmc"]][ratio] for t in tasks}
    others = sorted(
        float(rows[t][LIVE_ROWS[s]][ratio].rstrip("x")) for t in tasks for s in ("power", "smc", "confidence")
    )
    lengths = sorted(float(rows[t]["greedy"]["mean generated tokens per question"]) for t in tasks)
    gsm8k = rows["gsm8k"]
    most = max(float(number(row["accuracy % [95% Wilson CI]"])) for row in gsm8k.values())
    return (
        str(items),
        str(math.ceil(gap)),
        mcmc,
        f"{others[0]:.0f}",
        f"{others[-1]:.0f}",
        f"{lengths[0]:.0f}",
        f"{lengths[-1]:.0f}",
        str(live_items("gsm8k")),
        f"{round(float(gsm8k['greedy']['mean generated tokens per question']), -1):.0f}",
        f"{most:.0f}",
    )


QUALITY: list[Quote] = [
    Quote(
        PAGE,
        "`make bench-quality` measured three tasks (AMD EPYC, {} cores, compiled, bfloat16, {});",
        f"{RAW}/runs.jsonl",
        setup,
    ),
    *(
        Quote(
            PAGE,
            f"| {row} | {{}} |",
            SOURCE,
            lambda row=row: (
                " | ".join(
                    table_cell(REPORT, "## Does sharpening help?", row, column)
                    for column in (
                        "greedy",
                        "1 sample, T=1",
                        "best-of-32, lp 0",
                        "best-of-32, lp 1",
                        "majority of 32",
                        "pass@32 (oracle)",
                    )
                ),
            ),
        )
        for row in ("arithmetic (300)", "arc_easy (300)", "gsm8k (100)")
    ),
    Quote(
        PAGE,
        "best-of-32: {} to {} points on arithmetic, {} to {} on arc_easy, {} to {} on gsm8k",
        SOURCE,
        intervals,
    ),
    Quote(
        PAGE, "on arithmetic from {}% (one sample) to {}% at N=2, {}% at N=4 and {}% at N=32", SOURCE, growth
    ),
    Quote(
        PAGE,
        "a correct sample out-scores a wrong one {}% of the time on arithmetic and {}% on gsm8k",
        SOURCE,
        lambda: (verifier("arithmetic"), verifier("gsm8k")),
    ),
    Quote(
        PAGE,
        "gives greedy's answer on {}% of questions; best-of-32 and greedy are right or wrong together on "
        "{} of {} ({} fixed, {} broken). A correct answer is among the 32 samples on {}% of questions, "
        "{} what any likelihood-based pick reaches",
        f"{RAW}/arithmetic.jsonl",
        agreement,
    ),
    Quote(
        PAGE,
        "On arithmetic and arc_easy, temperature-1 samples start {}-{} points below greedy, so best-of-2 is "
        "worse than greedy ({} points on arithmetic, paired interval {} to {}); best-of-N only catches up "
        "with greedy at about N={}",
        SOURCE,
        small_n,
    ),
    Quote(
        PAGE,
        'The model is at chance ({}% with four choices); its most likely candidate answers "{}" (the letter '
        "of the prompt's worked example) on {}% of questions",
        f"{RAW}/arc_easy.jsonl",
        letter_bias,
    ),
    Quote(
        PAGE,
        "best-of-32 (lp 0) picks {}-token completions on average against {} for greedy and {} for correct "
        "samples, often one-line guesses that skip the reasoning. Per-token scoring (lp 1) picks longer "
        "ones ({} tokens) but is no more accurate; majority vote does best ({} of {} against greedy's {})",
        f"{RAW}/gsm8k.jsonl",
        short_answers,
    ),
    Quote(PAGE, "keep the wall time near {}x greedy ({} s against {} s on arithmetic)", SOURCE, cost),
    Quote(
        PAGE,
        "on {} questions each of arithmetic and arc_easy, all four land within {} points of greedy (every "
        "paired interval includes 0). smc and mcmc, at temperature 1/alpha = 0.25, mostly return greedy's "
        "answer; mcmc costs {} greedy's tokens, the others {}-{}x, about what best-of-8 costs for at least "
        "the same accuracy. The answers ({}-{} tokens) are too short for checkpoints and confidence windows "
        "to act. On {} gsm8k questions, where answers are long enough (about {} tokens) but no way solves "
        "more than {}% of them, none differs from greedy either",
        SOURCE,
        live,
    ),
]
