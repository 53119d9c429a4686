"""What the quality study knows about one task (TaskReport), built from its graded samples.

The report's tables, its plots and the Pareto section all read it; it lives apart from them so
that none of them imports another for it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.common.datasets import Task
from benchmarks.quality.data import Record, normalize_answer
from benchmarks.quality.stats import (
    GREEDY,
    ItemSamples,
    MethodResult,
    best_answers,
    evaluate,
    greedy_agreement,
    ranking_auc,
    top_answer_share,
)


@dataclass(frozen=True)
class TaskReport:
    """Everything the report says about one task."""

    task: Task
    model: str
    items: int
    sizes: tuple[int, ...]
    subsets: int
    results: tuple[MethodResult, ...]
    auc_sum: float | None
    auc_mean: float | None
    agreement: float | None
    top_best: tuple[str | None, float]
    top_greedy: tuple[str | None, float]
    top_reference: tuple[str | None, float]
    answered: float
    truncated: float
    greedy_truncated: float
    tokens_right: float | None
    tokens_wrong: float | None
    greedy_latency: float
    sampled_latency: float

    @classmethod
    def build(
        cls,
        task: Task,
        records: Sequence[Record],
        items: Sequence[ItemSamples],
        sizes: Sequence[int],
        subset_count: int,
        seed: int,
    ) -> TaskReport:
        """Evaluate every method on the graded items and gather the diagnostics."""
        samples = [s for item in items for s in item.samples]
        right = [s.num_tokens for s in samples if s.correct]
        wrong = [s.num_tokens for s in samples if not s.correct]
        return cls(
            task=task,
            model=str(records[0].get("model", "?")) if records else "?",
            items=len(items),
            sizes=tuple(sizes),
            subsets=subset_count,
            results=tuple(evaluate(items, sizes, subset_count, seed)),
            auc_sum=ranking_auc(items, 0.0),
            auc_mean=ranking_auc(items, 1.0),
            agreement=greedy_agreement(items, 0.0),
            top_best=top_answer_share(best_answers(items, 0.0)),
            top_greedy=top_answer_share([item.greedy.answer for item in items]),
            top_reference=top_answer_share([normalize_answer(r["answer"]) for r in records]),
            answered=statistics.fmean(s.answer is not None for s in samples),
            truncated=statistics.fmean(not s.finished for s in samples),
            greedy_truncated=statistics.fmean(not item.greedy.finished for item in items),
            tokens_right=statistics.fmean(right) if right else None,
            tokens_wrong=statistics.fmean(wrong) if wrong else None,
            greedy_latency=statistics.fmean(r["greedy"]["latency"] for r in records),
            sampled_latency=statistics.fmean(r["sampled"]["latency"] for r in records),
        )

    def result(self, method: str, n: int = 1) -> MethodResult:
        """The result of a method at N."""
        for result in self.results:
            if result.method == method and result.n == n:
                return result
        raise KeyError(f"{method} at N={n}")

    @property
    def greedy(self) -> MethodResult:
        """The greedy baseline."""
        return self.result(GREEDY)

    @property
    def largest(self) -> int:
        """The largest N evaluated."""
        return self.sizes[-1]
