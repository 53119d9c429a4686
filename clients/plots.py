"""PNG plots of an A/B run, drawn with matplotlib's Agg backend (no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from clients.comparison import Output

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def _figure(columns: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(6.4 * columns, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path


def score_distributions(path: Path, outputs: Mapping[str, Sequence[Output]]) -> Path:
    """Overlaid histograms of each side's chosen-answer log-likelihood."""
    figure, (ax,) = _figure()
    for colour, (name, side) in zip(COLOURS, outputs.items(), strict=False):
        values = [o.log_likelihood for o in side if o.log_likelihood is not None]
        if values:
            ax.hist(values, bins=20, alpha=0.5, color=colour, label=f"{name} ({len(values)})")
    ax.set_xlabel("log-likelihood of the chosen answer (higher is more likely)")
    ax.set_ylabel("items")
    ax.set_title("Score distributions")
    _legend(ax)
    return _save(figure, path)


def accuracy_bars(path: Path, sides: Mapping[str, Mapping[str, Any]]) -> Path:
    """Each side's accuracy with its 95% Wilson interval as error bars."""
    figure, (ax,) = _figure()
    names = [name for name, s in sides.items() if s["accuracy"] is not None]
    accuracy = [sides[n]["accuracy"] for n in names]
    below = [max(0.0, sides[n]["accuracy"] - sides[n]["ci_low"]) for n in names]
    above = [max(0.0, sides[n]["ci_high"] - sides[n]["accuracy"]) for n in names]
    ax.bar(names, accuracy, yerr=[below, above], capsize=6,
           color=[COLOURS[i % len(COLOURS)] for i in range(len(names))])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.set_title("Accuracy")
    return _save(figure, path)


def length_vs_score(path: Path, outputs: Mapping[str, Sequence[Output]]) -> Path:
    """Scatter of answer length (tokens) against log-likelihood, one colour per side."""
    figure, (ax,) = _figure()
    for colour, (name, side) in zip(COLOURS, outputs.items(), strict=False):
        points = [(o.num_tokens, o.log_likelihood) for o in side
                  if o.num_tokens is not None and o.log_likelihood is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, s=14, alpha=0.6, color=colour, label=name)
    ax.set_xlabel("length of the chosen answer (tokens)")
    ax.set_ylabel("log-likelihood")
    ax.set_title("Length vs score")
    _legend(ax)
    return _save(figure, path)


def sweep(
    path: Path, ns: Sequence[int], points: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any], baseline_name: str,
) -> Path:
    """Accuracy (with intervals) and mean log-likelihood of side B against its N."""
    figure, (left, right) = _figure(columns=2)
    if any(p["accuracy"] is not None for p in points):
        shown = [(n, p) for n, p in zip(ns, points, strict=True) if p["accuracy"] is not None]
        xs = [n for n, _ in shown]
        left.plot(xs, [p["accuracy"] for _, p in shown], marker="o", label="B")
        left.fill_between(xs, [p["ci_low"] for _, p in shown], [p["ci_high"] for _, p in shown],
                          alpha=0.2)
        if baseline["accuracy"] is not None:
            left.axhline(baseline["accuracy"], linestyle="--", color="gray", label=baseline_name)
        left.set_ylim(0, 1)
        _legend(left)
    left.set_ylabel("accuracy (95% Wilson interval)")
    right.plot(ns, [p["mean_log_likelihood"] for p in points], marker="o", label="B")
    if baseline["mean_log_likelihood"] is not None:
        right.axhline(baseline["mean_log_likelihood"], linestyle="--", color="gray",
                      label=baseline_name)
    right.set_ylabel("mean log-likelihood of the chosen answer")
    _legend(right)
    for ax, title in ((left, "Accuracy vs N"), (right, "Log-likelihood vs N")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(ns), [str(n) for n in ns])
        ax.set_xlabel("N (candidates of side B)")
        ax.set_title(title)
    return _save(figure, path)
