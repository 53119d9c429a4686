"""The adaptive benchmark's Pareto plot: accuracy (95 % Wilson intervals) against generated tokens.

Colour is the strategy (and certainty), marker shape the cap, a filled marker the full drawing and a
hollow one the adaptive drawing; an arrow leads from each full way to its adaptive one, so the
saving reads as the arrow's length to the left. A legend, not per-point labels, names them.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from benchmarks.quality.plots import DPI
from benchmarks.quality.stats import MethodResult

COLORS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"]
CAP_MARKERS = ["o", "s", "^", "D", "v"]
WAY = re.compile(r"^(?P<strategy>[a-z_]+)-(?P<cap>\d+)(?P<adaptive> adaptive)?(?: c(?P<certainty>[\d.]+))?$")


def family(way: str) -> tuple[str, int, bool]:
    """(colour group, cap, adaptive) of a way name such as `majority-16 adaptive c0.8`."""
    found = WAY.match(way)
    if found is None:
        return way, 0, False
    group = found["strategy"] + (f" c{found['certainty']}" if found["certainty"] else "")
    return group, int(found["cap"]), bool(found["adaptive"])


def pareto_plot(task: str, points: dict[str, tuple[float, MethodResult]], path: Path) -> None:
    """Accuracy against mean generated tokens per way, full to adaptive drawn as arrows."""
    groups = list(dict.fromkeys(family(w)[0] for w in points if family(w)[1]))
    caps = sorted({family(w)[1] for w in points if family(w)[1]})
    color = {g: COLORS[i % len(COLORS)] for i, g in enumerate(groups)}
    marker = {c: CAP_MARKERS[i % len(CAP_MARKERS)] for i, c in enumerate(caps)}
    figure, ax = plt.subplots(figsize=(8.0, 5.0))
    for way, (tokens, result) in points.items():
        group, cap, adaptive = family(way)
        accuracy = 100 * result.accuracy
        low, high = accuracy - 100 * result.ci_low, 100 * result.ci_high - accuracy
        shade, shape = (color[group], marker[cap]) if cap else ("black", "*")
        ax.errorbar([tokens], [accuracy], yerr=[[low], [high]], color=shade, alpha=0.35, capsize=2,
                    linestyle="none")
        ax.plot([tokens], [accuracy], marker=shape, markersize=9, color=shade, linestyle="none",
                markerfacecolor="white" if adaptive else shade, markeredgewidth=1.5, zorder=3)
        full = way.split(" adaptive")[0]
        if adaptive and full in points:
            start = (points[full][0], 100 * points[full][1].accuracy)
            arrow = {"arrowstyle": "->", "color": shade, "alpha": 0.6, "shrinkA": 5, "shrinkB": 5}
            ax.annotate("", xy=(tokens, accuracy), xytext=start, zorder=2, arrowprops=arrow)
    handles = [Line2D([], [], color=color[g], marker="o", linestyle="none", label=g) for g in groups]
    handles += [Line2D([], [], color="grey", marker=marker[c], linestyle="none", label=f"cap n={c}")
                for c in caps]
    handles += [Line2D([], [], color="grey", marker="o", linestyle="none", label="full drawing"),
                Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="none",
                       label="adaptive"),
                Line2D([], [], color="black", marker="*", linestyle="none", label="greedy")]
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("mean generated tokens per question (log scale)")
    ax.set_ylabel("accuracy (%), 95% Wilson interval")
    ax.set_title(f"{task}: full drawing (filled) -> adaptive stopping (hollow)")
    ax.grid(alpha=0.3, which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
