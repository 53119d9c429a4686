"""The quality benchmark's plots (matplotlib, Agg): accuracy, lift, log-likelihood and length."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.quality.stats import (
    BEST_OF_N,
    BEST_OF_N_MEAN,
    GREEDY,
    MAJORITY,
    METHOD_LABELS,
    ORACLE,
    SAMPLING,
    MethodResult,
    lift_percent,
    paired_difference,
)
from benchmarks.quality.summary import TaskReport

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = {
    GREEDY: "#555555",
    SAMPLING: "#aaaaaa",
    BEST_OF_N: "#1f77b4",
    BEST_OF_N_MEAN: "#ff7f0e",
    MAJORITY: "#2ca02c",
    ORACLE: "#9467bd",
}
SELECTORS = (BEST_OF_N, BEST_OF_N_MEAN, MAJORITY)
DPI = 130


def task_axes(reports: Sequence[TaskReport], title: str, height: float = 4.2) -> tuple[Figure, list[Axes]]:
    """A row of subplots, one per task, under a common title."""
    figure, axes = plt.subplots(1, len(reports), figsize=(5.2 * len(reports), height), squeeze=False)
    figure.suptitle(title, fontsize=13)
    for ax, report in zip(axes[0], reports, strict=True):
        ax.set_title(f"{report.task.name} ({report.items} items)", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
    return figure, list(axes[0])


def save(figure: Figure, axes: Sequence[Axes], path: Path) -> None:
    """Add one legend below the subplots (every label once), then lay out, write and close."""
    entries: dict[str, Artist] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="lower center", ncol=len(entries),
                      fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.07 if entries else 0, 1, 1))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def accuracy_bars(reports: Sequence[TaskReport], path: Path) -> None:
    """Accuracy with 95% Wilson intervals: greedy, one sample, and each rule at the largest N."""
    figure, axes = task_axes(reports, "Accuracy with 95% Wilson intervals")
    for ax, report in zip(axes, reports, strict=True):
        n = report.largest
        rows = [report.greedy, report.result(SAMPLING)]
        rows += [report.result(m, n) for m in (*SELECTORS, ORACLE)]
        labels = ["greedy", "sample\nN=1", f"BoN lp0\nN={n}", f"BoN lp1\nN={n}",
                  f"majority\nN={n}", f"pass@{n}\n(oracle)"]
        heights = [100 * r.accuracy for r in rows]
        errors = [[100 * (r.accuracy - r.ci_low) for r in rows],
                  [100 * (r.ci_high - r.accuracy) for r in rows]]
        colors = [COLORS[r.method] for r in rows]
        bars = ax.bar(range(len(rows)), heights, yerr=errors, capsize=4, color=colors)
        bars[-1].set_hatch("//")
        bars[-1].set_alpha(0.5)
        ax.axhline(heights[0], color=COLORS[GREEDY], linestyle="--", linewidth=1)
        for x, row in enumerate(rows):
            ax.text(x, 100 * row.ci_high + 1, f"{100 * row.accuracy:.1f}", ha="center", va="bottom",
                    fontsize=8)
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, min(100, max(100 * r.ci_high for r in rows)) * 1.1 + 2)
    save(figure, axes, path)


def lift_bars(reports: Sequence[TaskReport], path: Path) -> None:
    """The paper's % lift over greedy for each rule at each N > 1."""
    figure, axes = task_axes(reports, "Lift over greedy, % of greedy accuracy (the paper's metric)")
    for ax, report in zip(axes, reports, strict=True):
        sizes = [n for n in report.sizes if n > 1]
        width = 0.8 / len(SELECTORS)
        for k, method in enumerate(SELECTORS):
            lifts = [lift_percent(report.result(method, n).accuracy, report.greedy.accuracy) for n in sizes]
            xs = [i + (k - 1) * width for i in range(len(sizes))]
            ax.bar(xs, [lift or 0.0 for lift in lifts], width, color=COLORS[method],
                   label=METHOD_LABELS[method])
        sample = lift_percent(report.result(SAMPLING).accuracy, report.greedy.accuracy)
        if sample is not None:
            ax.axhline(sample, color=COLORS[SAMPLING], linestyle=":", linewidth=2, label="one sample (N=1)")
        ax.axhline(0, color="black", linewidth=0.8)
        greedy_correct = round(report.greedy.accuracy * report.items)
        ax.set_title(f"{report.task.name}: greedy {100 * report.greedy.accuracy:.1f}% "
                     f"({greedy_correct} of {report.items})", fontsize=11)
        ax.set_xticks(range(len(sizes)), [f"N={n}" for n in sizes])
        ax.set_ylabel("lift over greedy (%)")
        if report.greedy.accuracy == 0:
            ax.text(0.5, 0.5, "greedy accuracy is 0:\nlift undefined", transform=ax.transAxes, ha="center")
    save(figure, axes, path)


def versus_n(
    reports: Sequence[TaskReport],
    path: Path,
    title: str,
    ylabel: str,
    value: Callable[[TaskReport, MethodResult], float],
    methods: Sequence[str],
    band: Callable[[TaskReport, MethodResult], tuple[float, float]] | None = None,
) -> None:
    """One line per method over N (log2 axis), greedy dashed; `band` shades best-of-N lp 0's interval."""
    figure, axes = task_axes(reports, title)
    for ax, report in zip(axes, reports, strict=True):
        if band is not None:
            lows, highs = zip(*(band(report, report.result(BEST_OF_N, n)) for n in report.sizes), strict=True)
            ax.fill_between(report.sizes, lows, highs, color=COLORS[BEST_OF_N], alpha=0.12, linewidth=0,
                            label=f"95% paired interval, {METHOD_LABELS[BEST_OF_N]}")
        for method in methods:
            results = [report.result(method, n) for n in report.sizes]
            ax.plot(report.sizes, [value(report, r) for r in results], marker="o", markersize=4,
                    color=COLORS[method], label=METHOD_LABELS[method])
        ax.axhline(value(report, report.greedy), color=COLORS[GREEDY], linestyle="--", label="greedy")
        ax.set_xscale("log", base=2)
        ax.set_xticks(report.sizes, [str(n) for n in report.sizes])
        ax.set_xlabel("N (candidates)")
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", alpha=0.3)
    save(figure, axes, path)


def points_over_greedy(report: TaskReport, result: MethodResult) -> float:
    """Accuracy minus greedy accuracy, in percentage points."""
    return 100 * (result.accuracy - report.greedy.accuracy)


def points_interval(report: TaskReport, result: MethodResult) -> tuple[float, float]:
    """The paired 95% interval of accuracy minus greedy accuracy, in percentage points."""
    _, low, high = paired_difference(result, report.greedy)
    return 100 * low, 100 * high


def write_plots(reports: Sequence[TaskReport], out: Path) -> None:
    """Write the five PNGs the report links to."""
    accuracy_bars(reports, out / "quality_accuracy.png")
    lift_bars(reports, out / "quality_lift.png")
    versus_n(reports, out / "quality_lift_vs_n.png",
             "Accuracy minus greedy (percentage points) as N grows; 0 = greedy",
             "points over greedy", points_over_greedy, SELECTORS, band=points_interval)
    versus_n(reports, out / "quality_loglik_vs_n.png",
             "Mean log-likelihood (sum over tokens) of the chosen answer",
             "log-likelihood (nats)", lambda _, r: r.mean_logprob, SELECTORS)
    versus_n(reports, out / "quality_length.png", "Mean length of the chosen answer",
             "tokens", lambda _, r: r.mean_tokens, SELECTORS)
