"""The Pareto section's data: one way of answering a task (Point) and a task's points (TaskPareto).

pareto.py builds them and pareto_plot.py draws them; both import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.common.datasets import Task
from benchmarks.quality.stats import GREEDY, METHOD_LABELS, MethodResult


@dataclass(frozen=True)
class Point:
    """One way of answering a task: accuracy with intervals and its mean generated tokens."""

    method: str
    n: int
    live: bool
    result: MethodResult
    tokens: float
    versus_greedy: tuple[float, float, float]
    same_as_greedy: float | None = None  # live: the share of items answered as greedy answered

    @property
    def label(self) -> str:
        """How the report names the way."""
        if self.method == GREEDY:
            return "greedy"
        if self.live:
            return f"{self.method} (n={self.n})" if self.method != "mcmc" else "mcmc (one chain)"
        return f"{METHOD_LABELS[self.method]}, N={self.n}"


@dataclass(frozen=True)
class TaskPareto:
    """A task's points on the shared items."""

    task: Task
    items: int
    points: tuple[Point, ...]

    def offline(self, method: str) -> list[Point]:
        """An offline rule's points, by N."""
        return [p for p in self.points if p.method == method and not p.live]

    @property
    def greedy(self) -> Point:
        """The greedy point."""
        return next(p for p in self.points if p.method == GREEDY)

    @property
    def live(self) -> list[Point]:
        """The live strategies' points."""
        return [p for p in self.points if p.live]
