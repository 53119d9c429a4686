"""The serving benchmark's plot: latency, throughput and compute per way, grouped by concurrency."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def plot(path: Path, table: list[dict[str, Any]], order: list[str]) -> None:
    """Median latency (p90 whisker), requests/s and generated tokens per way, grouped by concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ways = [w for w in order if any(r["way"] == w for r in table)]
    levels = sorted({r["concurrency"] for r in table})
    width = 0.8 / max(len(ways), 1)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("median_latency_s", "latency (s), whisker = p90", "Latency"),
              ("requests_per_s", "requests/s", "Throughput"),
              ("mean_generated_tokens", "generated tokens per request", "Compute per request")]
    for axis, (key, ylabel, title) in zip(axes, panels, strict=True):
        for k, way in enumerate(ways):
            rows = [next((r for r in table if (r["way"], r["concurrency"]) == (way, c)), None)
                    for c in levels]
            xs = [i + (k - (len(ways) - 1) / 2) * width for i in range(len(levels))]
            values = [r[key] if r else math.nan for r in rows]
            whiskers = None
            if key == "median_latency_s":
                upper = [(r["p90_latency_s"] - r[key]) if r else 0.0 for r in rows]
                whiskers = [[0.0] * len(rows), upper]
            axis.bar(xs, values, width, yerr=whiskers, capsize=3, label=way)
        axis.set_xticks(range(len(levels)), [f"concurrency {c}" for c in levels])
        axis.set_ylabel(ylabel)
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
