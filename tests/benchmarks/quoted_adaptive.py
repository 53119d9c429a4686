"""The figures docs/budgets.md (and README) quote from the adaptive-stopping studies (see
quoted_figures.py): the replay on cached candidates (benchmarks/results/adaptive_offline.md, which
has no raw file of its own) and the live run (benchmarks/results/adaptive.md, from
adaptive_raw.jsonl)."""

from __future__ import annotations

import re
import statistics

from benchmarks.common.quoted import Quote
from tests.benchmarks.quoted_sources import RESULTS, f1, f2, jsonl, number, plain, table, table_cell

PAGE = "docs/budgets.md"
OFFLINE = "adaptive_offline.md"
LIVE = "adaptive.md"
RAW = "adaptive_raw.jsonl"
TASKS = ("arithmetic", "arc_easy")
SHORT = "(short answers: arithmetic and arc_easy)"


def of_full(name: str, task: str, ways: tuple[str, ...]) -> tuple[str, ...]:
    """The 'of full' share of each way in a task's table of an adaptive result."""
    return tuple(table_cell(name, f"### {task}", way, "of full") for way in ways)


def caps(strategy: str, suffix: str = "") -> tuple[str, ...]:
    """`strategy`'s adaptive ways at caps 8, 16 and 32."""
    return tuple(f"{strategy}-{cap} adaptive{suffix}" for cap in (8, 16, 32))


def items(name: str, task: str) -> int:
    """The items of a task's section in an adaptive result."""
    heading = next(
        line for line in (RESULTS / name).read_text().splitlines() if line.startswith(f"### {task}")
    )
    return int(number(heading.split("(")[1]))


def stopped_early(task: str, strategy: str) -> tuple[int, int]:
    """The lowest and highest share (%) of items a rule stopped early, over caps 8-32, in the replay."""
    total = items(OFFLINE, task)
    shares = []
    for way in caps(strategy):
        cell = table_cell(OFFLINE, f"### {task}", way, "stopped by")
        ran = sum(int(part.split()[-1]) for part in cell.split(", ") if part.split()[0] == "-")
        shares.append(round(100 * (total - ran) / total))
    return min(shares), max(shares)


def replay_row(task: str) -> tuple[str, ...]:
    """The replay table's row: best_of_n's and majority's shares, then the share of items each
    stopped early (least-most)."""
    return (
        *of_full(OFFLINE, task, caps("best_of_n")),
        *of_full(OFFLINE, task, caps("majority")),
        *map(str, stopped_early(task, "best_of_n")),
        *map(str, stopped_early(task, "majority")),
    )


def replay_gsm8k() -> tuple[str, ...]:
    """gsm8k in the replay: best_of_n's share (the same at every cap, never stopping early),
    majority's shares and the share of items it stopped early."""
    (best,) = set(of_full(OFFLINE, "gsm8k", caps("best_of_n")))
    assert stopped_early("gsm8k", "best_of_n") == (0, 0), "best_of_n stopped early on gsm8k"
    return best, *of_full(OFFLINE, "gsm8k", caps("majority")), *map(str, stopped_early("gsm8k", "majority"))


def replay_items() -> tuple[str, ...]:
    """The replay's items: arithmetic, gsm8k, arc_easy."""
    return tuple(str(items(OFFLINE, task)) for task in ("arithmetic", "gsm8k", "arc_easy"))


def paired(cell: str) -> tuple[float, float, float]:
    """A '+0.3 (-0.8 to +1.5)' cell: the difference and its interval."""
    difference, low, high = (float(number(cell, k)) for k in range(3))
    return difference, low, high


def certainty() -> tuple[str, ...]:
    """At certainty 0.8 every paired interval includes 0; arc_easy's majority-32 with its
    interval; at 0.7 the accuracy lost on arithmetic (the same at every cap)."""
    column = "adaptive - full (paired 95 %)"
    for task in TASKS:
        for way in caps("majority", " c0.8"):
            _, low, high = paired(table_cell(OFFLINE, f"### {task}", way, column))
            assert low <= 0 <= high, f"{task} {way}: the interval excludes 0"
    cell = table_cell(OFFLINE, "### arc_easy", "majority-32 adaptive c0.8", column)
    (lost,) = {
        table_cell(OFFLINE, "### arithmetic", way, column).split()[0] for way in caps("majority", " c0.7")
    }
    return *(number(cell, k) for k in range(3)), lost.lstrip("-")


def decode_steps(task: str) -> list[float]:
    """Decode steps of each adaptive way at the default certainty over its full way's."""
    steps = {
        r["way"]: float(r["decode steps / item"])
        for r in table(OFFLINE, f"### {task}")
        if r["way"] != "greedy"
    }
    return [steps[way] / steps[way.split()[0]] for s in ("best_of_n", "majority") for way in caps(s)]


def waves() -> tuple[str, ...]:
    """The least and most ratio of decode steps on arithmetic and arc_easy, then on gsm8k."""
    short = sorted(r for task in TASKS for r in decode_steps(task))
    long = sorted(decode_steps("gsm8k"))
    return f1(short[0]), f1(short[-1]), f1(long[0]), f1(long[-1])


def live_rows(task: str) -> dict[str, dict[str, str]]:
    """The live run's table for a task, by way."""
    return {plain(row["way"]): row for row in table(LIVE, f"### {task}")}


def latency(task: str, way: str) -> float:
    """A way's median latency in the live run, as its table gives it."""
    return float(number(live_rows(task)[way]["median latency"]))


def slower(task: str, way: str) -> float:
    """An adaptive way's median latency over its full way's."""
    return latency(task, way) / latency(task, way.split()[0])


def latency_ratios(task: str) -> tuple[str, ...]:
    """Adaptive best_of_n's median latency over the full way's, caps 8, 16, 32, in the live run."""
    return tuple(f2(slower(task, way)) for way in caps("best_of_n"))


def live_setup() -> tuple[str, ...]:
    """The live run's items per task (arithmetic, gsm8k, arc_easy) and gsm8k's slowest request (s)."""
    found = [str(items(LIVE, task)) for task in ("arithmetic", "gsm8k", "arc_easy")]
    slowest = max(r["latency"] for r in jsonl(RAW) if r["task"] == "gsm8k")
    return *found, *found, f"{slowest:.0f}"


def live_gsm8k() -> tuple[str, ...]:
    """gsm8k's live row: best_of_n's shares, its latency ratios (least-most), majority's shares."""
    ratios = sorted(slower("gsm8k", way) for way in caps("best_of_n"))
    return (
        *of_full(LIVE, "gsm8k", caps("best_of_n")),
        f1(ratios[0]),
        f1(ratios[-1]),
        *of_full(LIVE, "gsm8k", caps("majority")),
        *of_full(LIVE, "gsm8k", caps("majority", " c0.8")),
    )


def largest_gap() -> tuple[str, ...]:
    """Of every adaptive way in the live run (all of whose intervals include 0), the one furthest
    from its full way: its name as the page writes it, the task, the gap and its interval."""
    found = []
    for task in ("arithmetic", "gsm8k", "arc_easy"):
        for way, row in live_rows(task).items():
            if "adaptive" in way:
                difference, low, high = paired(row["vs full (paired 95 %)"])
                assert low <= 0 <= high, f"{task} {way}: the interval excludes 0"
                found.append((abs(difference), way, task, row["vs full (paired 95 %)"]))
    _, way, task, cell = max(found)
    name = re.sub(r" adaptive c(\S+)$", r" at certainty \1", way)
    return name, task, *(number(cell, k) for k in range(3))


def leader() -> tuple[str, ...]:
    """best_of_n at caps 16 and 32 on the short tasks: every request ended by repeated_leader
    (from the raw answers), after the least-most mean candidates drawn; at cap 8 the shares and
    latency ratios (least-most); at 16 and 32 the latency ratios (least-most)."""
    drawn = []
    for task in TASKS:
        for way in caps("best_of_n")[1:]:
            answers = [r for r in jsonl(RAW) if r["task"] == task and r["way"] == way]
            assert answers and all(r["stopped_by"] == "repeated_leader" for r in answers), f"{task} {way}"
            drawn.append(statistics.fmean(r["candidates_drawn"] for r in answers))
    at_8 = sorted(slower(task, "best_of_n-8 adaptive") for task in TASKS)
    beyond = sorted(slower(task, way) for task in TASKS for way in caps("best_of_n")[1:])
    return (
        f1(min(drawn)),
        f1(max(drawn)),
        *(of_full(LIVE, task, ("best_of_n-8 adaptive",))[0] for task in TASKS),
        f1(at_8[0]),
        f1(at_8[-1]),
        f2(beyond[0]),
        f2(beyond[-1]),
    )


def lower_certainty() -> tuple[str, ...]:
    """majority-32 at certainty 0.8 on the short tasks: its shares, then its latency ratios."""
    way = "majority-32 adaptive c0.8"
    return (*(of_full(LIVE, task, (way,))[0] for task in TASKS), *(f2(slower(task, way)) for task in TASKS))


def gsm8k_live() -> tuple[str, ...]:
    """gsm8k live: every way's accuracy (least-most, %), the items, and every adaptive way's
    latency over its full way's (least-most)."""
    rows = live_rows("gsm8k")
    accuracy = sorted(float(number(row["accuracy"])) for row in rows.values())
    ratios = sorted(slower("gsm8k", way) for way in rows if "adaptive" in way)
    return (
        f"{accuracy[0]:.0f}",
        f"{accuracy[-1]:.0f}",
        str(items(LIVE, "gsm8k")),
        f1(ratios[0]),
        f1(ratios[-1]),
    )


def replayed_32() -> tuple[str, ...]:
    """Adaptive best-of-32's share of drawing all 32 in the replay, least and most over the short
    tasks (every paired interval including 0), and their items."""
    way = "best_of_n-32 adaptive"
    for task in TASKS:
        _, low, high = paired(table_cell(OFFLINE, f"### {task}", way, "adaptive - full (paired 95 %)"))
        assert low <= 0 <= high, f"{task}: the interval excludes 0"
    shares = sorted(of_full(OFFLINE, task, (way,))[0] for task in TASKS)
    (total,) = {items(OFFLINE, task) for task in TASKS}
    return shares[0], shares[-1], str(total)


SOURCE = f"benchmarks/results/{OFFLINE}"
LIVE_SOURCE = f"benchmarks/results/{LIVE}"
ADAPTIVE: list[Quote] = [
    Quote(
        PAGE,
        "(32 per item at temperature 1, no pruning: {} arithmetic, {} gsm8k, {} arc_easy items",
        SOURCE,
        replay_items,
    ),
    Quote(
        PAGE,
        "| arithmetic | {}, {}, {} | {}, {}, {} | best_of_n {}-{} % of items, majority {}-{} % |",
        SOURCE,
        lambda: replay_row("arithmetic"),
    ),
    Quote(
        PAGE,
        "| arc_easy | {}, {}, {} | {}, {}, {} | best_of_n {}-{} %, majority {}-{} % |",
        SOURCE,
        lambda: replay_row("arc_easy"),
    ),
    Quote(
        PAGE,
        "| gsm8k | {} at every cap | {}, {}, {} | best_of_n never (no sequence is likely), majority {}-{} %",
        SOURCE,
        replay_gsm8k,
    ),
    Quote(
        PAGE,
        "majority's tokens fall to {}, {} and {} of full on arithmetic (caps 8, 16, 32) and {}, {} and {} "
        "on arc_easy",
        SOURCE,
        lambda: (
            *of_full(OFFLINE, "arithmetic", caps("majority", " c0.8")),
            *of_full(OFFLINE, "arc_easy", caps("majority", " c0.8")),
        ),
    ),
    Quote(
        PAGE,
        "every paired interval still including 0 (arc_easy at cap 32: {} points, {} to {}). At 0.7 a "
        "single vote settles it (one vote to none with many to come gives 0.75) and accuracy falls {} "
        "points on arithmetic",
        SOURCE,
        certainty,
    ),
    Quote(
        PAGE,
        "the replay's decode steps per item at the default certainty are {}-{}x the full way's on "
        "arithmetic and arc_easy and {}-{}x on gsm8k",
        SOURCE,
        waves,
    ),
    Quote(
        PAGE,
        "(`python -m benchmarks.adaptive --items {} {} {}`: {} arithmetic, {} gsm8k and {} arc_easy items",
        LIVE_SOURCE,
        lambda: live_setup()[:6],
    ),
    Quote(
        PAGE,
        "gsm8k has only {} items because its 256-token answers take up to {} s a request",
        f"benchmarks/results/{RAW}",
        lambda: (live_setup()[1], live_setup()[-1]),
    ),
    *(
        Quote(
            PAGE,
            f"| {task} | **{{}}, {{}}, {{}}** | {{}}, {{}}, {{}} | {{}}, {{}}, {{}} | {{}}, {{}}, **{{}}** |",
            LIVE_SOURCE,
            lambda task=task: (
                *of_full(LIVE, task, caps("best_of_n")),
                *latency_ratios(task),
                *of_full(LIVE, task, caps("majority")),
                *of_full(LIVE, task, caps("majority", " c0.8")),
            ),
        )
        for task in TASKS
    ),
    Quote(PAGE, "| gsm8k | {}, {}, {} | {}-{} | {}, {}, {} | {}, {}, {} |", LIVE_SOURCE, live_gsm8k),
    Quote(
        PAGE, "(all include 0; the largest gap is {} on {}, {} points, {} to {})", LIVE_SOURCE, largest_gap
    ),
    Quote(
        PAGE,
        "`repeated_leader` ended every arithmetic and arc_easy request at caps 16 and 32 after {}-{} "
        "candidates. At cap 8 the saving is about half ({} and {}) and the two or three waves cost latency "
        "({}-{}x); at 16 and 32 fewer candidates in fewer waves beat one wave of all of them ({}-{}x)",
        f"benchmarks/results/{RAW}",
        leader,
    ),
    Quote(
        PAGE,
        "at 0.8, cap 32 spends {} and {} of the tokens, at {}x and {}x the latency",
        LIVE_SOURCE,
        lower_certainty,
    ),
    Quote(
        PAGE,
        "every way's accuracy is {}-{} % ({} items): the 135M model cannot do the task. Waves then only "
        "add latency ({}-{}x)",
        LIVE_SOURCE,
        gsm8k_live,
    ),
    Quote(
        "README.md",
        "adaptive best-of-32 spent {}-{} of drawing all 32, with no accuracy difference measured, "
        "replaying {} cached items per task",
        SOURCE,
        replayed_32,
    ),
]
