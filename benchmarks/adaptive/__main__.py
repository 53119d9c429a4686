"""Adaptive stopping against drawing every candidate: `python -m benchmarks.adaptive`.

The quality tasks (arithmetic, gsm8k, arc_easy) through greedy decoding and through best_of_n and
majority at each cap n (default 8, 16, 32), with `sharpening.adaptive` off and on (majority on at
the server's default certainty, and at each `--certainty` besides), one request at a time, each
item seeded by its id. best_of_n runs with the server's defaults (a greedy candidate
and the candidate temperature when no temperature is sent), majority at its own default of 1.0.
The report gives per task: accuracy, the paired 95 % interval of each adaptive way against the
same strategy and cap drawn in full, generated tokens per item (and their ratio to the full way),
median latency, candidates drawn and which rule stopped the drawing; and one Pareto plot of
accuracy against generated tokens. Answers are cached in OUT/adaptive_raw.jsonl (a run resumes;
`--report-only` rebuilds the report from them).
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.adaptive.plot import pareto_plot
from benchmarks.common.datasets import TASKS, Item, Task, load_task
from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import given_or_started_server
from benchmarks.quality.answers import Answers, cached_answers, collect_answers, graded_ways, paired_interval

RESULTS = Path(__file__).resolve().parent.parent / "results"
GREEDY = "greedy"


def ways(caps: list[int], task: Task, certainties: Sequence[float] = ()) -> dict[str, dict[str, Any]]:
    """Request fields of each way: greedy, then each strategy and cap, in full and adaptive."""
    found: dict[str, dict[str, Any]] = {GREEDY: {"temperature": 0.0, "sharpening": {"strategy": "none"}}}
    for strategy in ("best_of_n", "majority"):
        for cap in caps:
            sharpening: dict[str, Any] = {"strategy": strategy, "n": cap}
            if strategy == "majority":
                sharpening["answer_pattern"] = task.answer_pattern
            found[way_name(strategy, cap)] = {"sharpening": sharpening}
            found[way_name(strategy, cap, True)] = {"sharpening": sharpening | {"adaptive": True}}
            for certainty in certainties if strategy == "majority" else ():  # best_of_n's rules ignore it
                found[way_name(strategy, cap, True, certainty)] = {
                    "sharpening": sharpening | {"adaptive": True, "certainty": certainty}}
    return found


def way_name(strategy: str, cap: int, adaptive: bool = False, certainty: float | None = None) -> str:
    """How a way is named in the cache and the report: `majority-16 adaptive c0.8`."""
    return f"{strategy}-{cap}{' adaptive' if adaptive else ''}{f' c{certainty:g}' if certainty else ''}"


def full_way(way: str) -> str:
    """The way an adaptive one is compared with: the same strategy and cap, drawn in full."""
    return way.split(" adaptive")[0]


def collect(url: str, tasks: dict[str, list[Item]], caps: list[int], path: Path,
            certainties: Sequence[float] = ()) -> Answers:
    """Every item through every way (item by item), appending each answer to `path`."""
    steps = [(name, item, way, fields) for name, items in tasks.items()
             for item in items for way, fields in ways(caps, TASKS[name], certainties).items()]
    return collect_answers(url, steps, path)


def task_section(task: Task, items: list[Item], caps: list[int], found: Answers, plot: Path,
                 certainties: Sequence[float] = ()) -> list[str]:
    """One task's table (adaptive against full, cost, stopping rules) and its Pareto plot."""
    answers, results = graded_ways(task.name, items, found, list(ways(caps, task, certainties)))
    tokens = {way: statistics.fmean(r["generated_tokens"] for r in rs) for way, rs in answers.items()}
    lines = [
        f"### {task.name} ({len(items)} items, max_tokens {task.max_tokens})", "",
        "| way | accuracy | vs full (paired 95 %) | vs greedy | generated tokens / item | of full | "
        "median latency | candidates drawn | stopped by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for way, result in results.items():
        rs = answers[way]
        full = full_way(way)
        adaptive = full != way
        rules = Counter(r["stopped_by"] or "-" for r in rs)
        versus_full = paired_interval(result, results[full]) if adaptive else "-"
        versus_greedy = paired_interval(result, results[GREEDY]) if way != GREEDY else "-"
        lines.append(
            f"| {way} | {100 * result.accuracy:.1f} % | {versus_full} | {versus_greedy} | "
            f"{tokens[way]:.0f} | {tokens[way] / tokens[full]:.2f} | "
            f"{statistics.median(r['latency'] for r in rs):.2f} s | "
            f"{statistics.fmean(r['candidates_drawn'] for r in rs):.1f} | "
            f"{', '.join(f'{rule} {count}' for rule, count in rules.most_common())} |"
        )
    pareto_plot(task.name, {way: (tokens[way], results[way]) for way in results}, plot)
    return [*lines, "", f"![{task.name}]({plot.name})", ""]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running whetstone server (default: start one, compiled)")
    parser.add_argument("--items", nargs=3, type=int, default=[40, 20, 40], metavar=("ARITH", "GSM8K", "ARC"),
                        help="items of arithmetic, gsm8k and arc_easy")
    parser.add_argument("--caps", nargs="+", type=int, default=[8, 16, 32], help="candidate caps n")
    parser.add_argument("--certainty", nargs="*", type=float, default=[0.8],
                        help="adaptive majority at these `sharpening.certainty` values too")
    parser.add_argument("--enforce-eager", action="store_true", help="start the server without torch.compile")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild adaptive.md and the plots from the cached answers (no server)")
    return parser.parse_args()


def main() -> None:
    """Collect (resuming), then write adaptive.md and one plot per task."""
    args = parse_args()
    log_progress()
    tasks = {name: load_task(name, count) for name, count in zip(("arithmetic", "gsm8k", "arc_easy"),
                                                                   args.items, strict=True) if count}
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "adaptive_raw.jsonl"
    if args.report_only:
        found = cached_answers(cache)
    else:
        with given_or_started_server(args.url, args.enforce_eager, args.out / "adaptive_server.log") as url:
            found = collect(url, tasks, args.caps, cache, args.certainty)
    parts = [
        "# Adaptive stopping against drawing every candidate", "",
        f"Machine: {machine()}. One request at a time, each item seeded by its id. Paired intervals are "
        "over items (normal approximation), in percentage points; 'of full' is the adaptive way's "
        "generated tokens over the same strategy and cap drawn in full. Ways ending in `cX` stop at "
        "`sharpening.certainty` X instead of the default 0.95.", "",
    ]
    for name, items in tasks.items():
        parts += task_section(TASKS[name], items, args.caps, found, args.out / f"adaptive_{name}.png",
                              args.certainty)
    (args.out / "adaptive.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
