"""What the sharpening objective means for accuracy: `python -m benchmarks.frontier.accuracy`.

The quality tasks (arithmetic, gsm8k, arc_easy) through greedy decoding, the old default
(best-of-8 at temperature 1), the new default, `beam`, and both maximisers selecting by per-token
mean (length_penalty 1), one request at a time. Reports accuracy with paired 95 % intervals against
greedy and the old default, how likely the answers are, and where the most likely answer is the
worse one (too short, or no answer in it). Answers are cached in
benchmarks/results/frontier_accuracy_raw.jsonl, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common.datasets import TASKS, Item, Task, load_task
from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import given_or_started_server
from benchmarks.quality.answers import Answers, collect_answers, graded_ways, paired_interval

RESULTS = Path(__file__).resolve().parent.parent / "results"
BEAM = {"strategy": "beam", "n": 8, "checkpoint_tokens": 16}
WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "old default (best-of-8, T=1)": {"temperature": 1.0, "sharpening": {"n": 8}},
    "new default": {},
    "beam": {"sharpening": BEAM},
    "new default, lp 1": {"sharpening": {"length_penalty": 1.0}},
    "beam, lp 1": {"sharpening": BEAM | {"length_penalty": 1.0}},
}
SHORT = 8  # tokens: an answer this short is too short to show its work on these tasks


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontier.accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running whetstone server (default: start one, compiled)")
    parser.add_argument("--items", nargs=3, type=int, default=[80, 40, 80], metavar=("ARITH", "GSM8K", "ARC"),
                        help="items of arithmetic, gsm8k and arc_easy")
    parser.add_argument("--enforce-eager", action="store_true", help="start the server without torch.compile")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    return parser.parse_args()


def collect(url: str, tasks: dict[str, list[Item]], path: Path) -> Answers:
    """Every item through every way (interleaved item by item), appending each answer to `path`."""
    steps = [(task, item, way, WAYS[way]) for task, items in tasks.items() for item in items for way in WAYS]
    return collect_answers(url, steps, path)


def task_section(task: Task, items: list[Item], found: Answers) -> list[str]:
    """One task's table: accuracy, paired differences, likelihood, cost; then where likelier is worse."""
    answers, results = graded_ways(task.name, items, found, list(WAYS))
    greedy, old = results["greedy"], results["old default (best-of-8, T=1)"]
    lines = [
        f"### {task.name} ({len(items)} items, max_tokens {task.max_tokens})", "",
        "| way | accuracy | vs greedy (paired 95 %) | vs old default | median log-likelihood | "
        "no answer | shorter than 8 tokens | generated tokens / item | median latency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for way, result in results.items():
        rs = answers[way]
        shown = ["-" if way == base.method else paired_interval(result, base) for base in (greedy, old)]
        lines.append(
            f"| {way} | {100 * result.accuracy:.1f} % | {shown[0]} | {shown[1]} | "
            f"{statistics.median(r['logprob_sum'] for r in rs):.1f} | "
            f"{sum(r['extracted'] is None for r in rs)} | {sum(r['num_tokens'] < SHORT for r in rs)} | "
            f"{statistics.fmean(r['generated_tokens'] for r in rs):.0f} | "
            f"{statistics.median(r['latency'] for r in rs):.2f} s |"
        )
    lines += ["", likelier_but_worse(answers), ""]
    return lines


def likelier_but_worse(answers: dict[str, list[dict[str, Any]]]) -> str:
    """Items where a maximiser's answer is more likely than greedy's yet wrong where greedy was right."""
    notes = []
    for way, rs in answers.items():
        if way == "greedy":
            continue
        worse = [(g, r) for g, r in zip(answers["greedy"], rs, strict=True)
                 if g["correct"] and not r["correct"] and r["logprob_sum"] > g["logprob_sum"]]
        if worse:
            short = sum(r["num_tokens"] < g["num_tokens"] for g, r in worse)
            empty = sum(r["extracted"] is None for _, r in worse)
            example = min(worse, key=lambda pair: pair[1]["num_tokens"])[1]["text"][:80].replace("\n", " ")
            notes.append(f"- {way}: {len(worse)} items more likely than greedy's answer but wrong where "
                         f"greedy was right ({short} shorter than greedy's, {empty} with no answer in "
                         f"them); the shortest: \"{example}\"")
    return "\n".join(notes) or "- no answer was both likelier than greedy's and wrong where greedy was right"


def main() -> None:
    """Collect (resuming), then write frontier_accuracy.md."""
    args = parse_args()
    log_progress()
    tasks = {name: load_task(name, count) for name, count in zip(("arithmetic", "gsm8k", "arc_easy"),
                                                                   args.items, strict=True)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "frontier_accuracy_raw.jsonl"
    with given_or_started_server(args.url, args.enforce_eager, args.out / "frontier_server.log") as url:
        found = collect(url, tasks, path)
    parts = [
        "# What the sharpening objective means for accuracy", "",
        f"Machine: {machine()}. One request at a time, each item seeded by its id. Paired intervals are "
        "over items (normal approximation), in percentage points.", "",
    ]
    for name, items in tasks.items():
        parts += task_section(TASKS[name], items, found)
    (args.out / "frontier_accuracy.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
