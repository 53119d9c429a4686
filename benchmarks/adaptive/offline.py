"""Adaptive stopping replayed on cached candidates: `python -m benchmarks.adaptive.offline`.

The quality benchmark keeps, per item, 32 candidates of the embedded model drawn at temperature 1
without pruning (benchmarks/results/quality_raw/). This replays the server's own adaptive
strategies (server/sharpening/adaptive.py) on them: candidate i of a request is cached candidate
i; the candidates of a wave start together and end in order of length, as in a batch; an aborted
candidate has generated as many tokens as the one whose end stopped the drawing. Pruning is off
on both sides (the cache has no per-token log-probabilities), so token counts are those of
unpruned drawing. "Decode steps" sums each wave's longest candidate: the latency of waves run one
after the other, against one wave of n for the full way. Ways ending in `cX` stop at
`sharpening.certainty` X instead of the default 0.95. No server is started.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common.datasets import TASKS, Task
from benchmarks.common.environment import log_progress
from benchmarks.quality.data import raw_path, read_records
from benchmarks.quality.stats import MethodResult, Sample, paired_difference, summarize
from server.sharpening import Abort, Candidate, CandidateStatus, Draw, SharpeningConfig, build_strategy

RESULTS = Path(__file__).resolve().parent.parent / "results"


@dataclass(frozen=True)
class Replay:
    """What one strategy did on one item's cached candidates."""

    selected: Candidate | None
    tokens: int  # generated, aborted candidates' share included
    steps: int  # decode steps: each wave's longest candidate, one wave after the other
    drawn: int
    stopped_by: str | None


def play(candidate: Candidate, cached: dict[str, Any], ids: dict[str, int]) -> None:
    """End the strategy's candidate as cached (one made-up token id per distinct text: its tokens)."""
    key = f"{cached['logprob_sum']:.6f}|{cached['text']}"
    first = ids.setdefault(key, len(ids) + 100)
    candidate.extend([first] + [0] * (cached["num_tokens"] - 1), [cached["logprob_sum"]], cached["text"])
    candidate.finish(cached["finish_reason"])


def replay(config: SharpeningConfig, pool: list[dict[str, Any]], max_tokens: int) -> Replay:
    """Run one strategy over cached candidates, wave by wave; what it selects and spends."""
    strategy = build_strategy(config, max_tokens, from_model=True)
    ids: dict[str, int] = {}
    drawn: list[Candidate] = []
    tokens = steps = 0
    wave = [d.candidate for d in strategy.start() if isinstance(d, Draw)]
    while wave:
        drawn += wave
        ends = sorted(wave, key=lambda c: pool[c.index]["num_tokens"])
        clock = 0
        following: list[Candidate] = []
        for candidate in ends:
            if candidate.status is CandidateStatus.PRUNED:
                continue
            play(candidate, pool[candidate.index], ids)
            clock = candidate.num_tokens
            tokens += clock
            for decision in strategy.on_end(candidate):
                if isinstance(decision, Abort):
                    for stopped in decision.candidates:
                        stopped.prune()
                        tokens += min(clock, pool[stopped.index]["num_tokens"])
                elif isinstance(decision, Draw):
                    following.append(decision.candidate)
        steps += clock
        wave = following
    selected = strategy.select([c for c in drawn if c.completed])
    return Replay(selected, tokens, steps, len(drawn), strategy.stopped_by)


def sample(selected: Candidate | None, task: Task, answer: str) -> Sample:
    """A selected candidate graded like the quality benchmark grades answers."""
    text = selected.text if selected is not None else ""
    return Sample(selected.logprob_sum if selected else 0.0, selected.num_tokens if selected else 0,
                  True, None, task.check(text, answer))


def task_section(task: Task, records: list[dict[str, Any]], caps: list[int],
                 certainties: Sequence[float] = ()) -> list[str]:
    """One task's table: each strategy and cap, full and adaptive (each certainty), paired differences."""
    lines = [
        f"### {task.name} ({len(records)} items, max_tokens {task.max_tokens})", "",
        "| way | accuracy | adaptive - full (paired 95 %) | tokens / item | of full | "
        "decode steps / item | candidates drawn | stopped by |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    greedy = summarize("greedy", 1, [[Sample(0.0, 0, True, None, task.check(
        r["greedy"]["candidates"][0]["text"], r["answer"]))] for r in records])
    lines.append(f"| greedy | {100 * greedy.accuracy:.1f} % | - | - | - | - | 1 | - |")
    for strategy in ("best_of_n", "majority"):
        for cap in caps:
            configs = {f"{strategy}-{cap}": SharpeningConfig(
                strategy=strategy, n=cap, prune=False, answer_pattern=task.answer_pattern)}
            configs[f"{strategy}-{cap} adaptive"] = replace(configs[f"{strategy}-{cap}"], adaptive=True)
            for certainty in certainties if strategy == "majority" else ():  # best_of_n's rules ignore it
                configs[f"{strategy}-{cap} adaptive c{certainty:g}"] = replace(
                    configs[f"{strategy}-{cap}"], adaptive=True, certainty=certainty)
            rows = {way: [replay(config, r["sampled"]["candidates"], task.max_tokens) for r in records]
                    for way, config in configs.items()}
            results = {
                way: summarize(way, cap, [
                    [sample(row.selected, task, r["answer"])] for row, r in zip(rs, records, strict=True)
                ])
                for way, rs in rows.items()
            }
            full = f"{strategy}-{cap}"
            full_tokens = statistics.fmean(row.tokens for row in rows[full])
            for way, rs in rows.items():
                lines.append(table_row(way, rs, results[way], results[full], full_tokens))
    return [*lines, ""]


def table_row(way: str, rows: list[Replay], result: MethodResult, full: MethodResult,
              full_tokens: float) -> str:
    """One way's line of the table (an adaptive one compared with `full`)."""
    tokens = statistics.fmean(row.tokens for row in rows)
    versus, rules = "-", "-"
    if result is not full:
        mean, low, high = paired_difference(result, full)
        versus = f"{100 * mean:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"
        counts = Counter(row.stopped_by or "-" for row in rows)
        rules = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    accuracy = 100 * result.accuracy
    steps = statistics.fmean(row.steps for row in rows)
    return (f"| {way} | {accuracy:.1f} % | {versus} | "
            f"{tokens:.0f} | {tokens / full_tokens:.2f} | {steps:.0f} | "
            f"{statistics.fmean(row.drawn for row in rows):.1f} | {rules} |")


def main() -> None:
    """Replay every cached item of the chosen tasks and write adaptive_offline.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive.offline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["arithmetic", "gsm8k", "arc_easy"])
    parser.add_argument("--caps", nargs="+", type=int, default=[8, 16, 32])
    parser.add_argument("--certainty", nargs="*", type=float, default=[0.8, 0.7],
                        help="adaptive majority at these `sharpening.certainty` values too (default 0.95)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    log_progress()
    parts = ["# Adaptive stopping replayed on cached candidates", "", (__doc__ or "").split("\n\n", 1)[1]]
    for name in args.tasks:
        records = read_records(raw_path(RESULTS, name))
        parts += task_section(TASKS[name], records, args.caps, args.certainty)
    (args.out / "adaptive_offline.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
