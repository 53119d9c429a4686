"""The adaptive benchmark's Pareto plot: accuracy (95 % Wilson intervals) against generated tokens."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.quality.plots import DPI
from benchmarks.quality.stats import MethodResult

STYLE = {"best_of_n": "#1f77b4", "majority": "#2ca02c"}


def pareto_plot(task: str, points: dict[str, tuple[float, MethodResult]], path: Path) -> None:
    """One marker per way at (mean generated tokens, accuracy %): full ways filled, adaptive ones hollow."""
    figure, ax = plt.subplots(figsize=(7.5, 5.0))
    for way, (tokens, result) in points.items():
        strategy = way.split("-")[0]
        color = STYLE.get(strategy, "black")
        adaptive = " adaptive" in way
        low, high = 100 * (result.accuracy - result.ci_low), 100 * (result.ci_high - result.accuracy)
        ax.errorbar([tokens], [100 * result.accuracy], yerr=[[low], [high]],
                    color=color, marker="*" if strategy == "greedy" else "o", markersize=8, capsize=3,
                    markerfacecolor="white" if adaptive else color, linestyle="none")
        ax.annotate(way, (tokens, 100 * result.accuracy), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per question (log scale)")
    ax.set_ylabel("accuracy (%), 95% Wilson interval")
    ax.set_title(f"{task}: adaptive (hollow) against full drawing (filled)")
    ax.grid(alpha=0.3, which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
