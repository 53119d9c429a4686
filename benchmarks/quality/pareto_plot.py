"""The Pareto plot of one task: accuracy (95% Wilson intervals) against mean generated tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from benchmarks.quality.pareto_points import Point, TaskPareto
from benchmarks.quality.plots import COLORS, DPI
from benchmarks.quality.stats import GREEDY, METHOD_LABELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LIVE_STYLE = {  # colour and marker of each live strategy
    "power": ("#d62728", "s"),
    "smc": ("#8c564b", "D"),
    "mcmc": ("#e377c2", "^"),
    "confidence": ("#17becf", "v"),
}


def error_bars(ax: Axes, points: list[Point], **style: object) -> None:
    """Points at (tokens, accuracy %) with their Wilson intervals as vertical error bars."""
    ax.errorbar(
        [p.tokens for p in points],
        [100 * p.result.accuracy for p in points],
        yerr=[[100 * (p.result.accuracy - p.result.ci_low) for p in points],
              [100 * (p.result.ci_high - p.result.accuracy) for p in points]],
        capsize=3, **style,  # type: ignore[arg-type]
    )


def write_pareto_plot(pareto: TaskPareto, path: Path) -> None:
    """Offline rules as curves over N, greedy and the live strategies as single points."""
    figure, ax = plt.subplots(figsize=(7.5, 5.0))
    for method in ("best_of_n", "best_of_n_mean", "majority"):
        points = pareto.offline(method)
        error_bars(ax, points, color=COLORS[method], marker="o", markersize=4, linewidth=1.2,
                   elinewidth=0.8, alpha=0.8, label=f"{METHOD_LABELS[method]} (N = 1 ... {points[-1].n})")
        for point in points:
            ax.annotate(f"{point.n}", (point.tokens, 100 * point.result.accuracy), fontsize=7,
                        xytext=(3, -9), textcoords="offset points", color=COLORS[method])
    greedy = pareto.greedy
    error_bars(ax, [greedy], color=COLORS[GREEDY], marker="*", markersize=12, linestyle="none",
               label="greedy")
    ax.axhline(100 * greedy.result.accuracy, color=COLORS[GREEDY], linestyle="--", linewidth=0.8)
    for point in pareto.live:
        color, marker = LIVE_STYLE.get(point.method, ("black", "x"))
        error_bars(ax, [point], color=color, marker=marker, markersize=9, linestyle="none",
                   label=point.label)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mean generated tokens per question (log scale; usage.completion_tokens)")
    ax.set_ylabel("accuracy (%), 95% Wilson interval")
    ax.set_title(f"{pareto.task.name}: accuracy vs generated tokens ({pareto.items} items)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
