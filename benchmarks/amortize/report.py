"""The amortization report: accuracy and base log-likelihood per method with 95 % intervals, paired
differences, serving cost per answer, plots. Pure over the cached rows (benchmarks/amortize/run.py)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.environment import machine
from clients.stats import mean_or_none, wilson_interval

Z95 = 1.96


@dataclass(frozen=True)
class MethodStats:
    """One method's numbers on one task."""

    method: str
    items: int
    correct: int
    interval: tuple[float, float]
    loglik: float | None
    loglik_half_width: float | None
    loglik_median: float | None
    generated_tokens: float | None
    latency: float | None

    @property
    def accuracy(self) -> float:
        """Share of items answered correctly."""
        return self.correct / self.items if self.items else 0.0


def mean_interval(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The mean and the half-width of its normal 95 % interval."""
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], None
    return statistics.fmean(values), Z95 * statistics.stdev(values) / math.sqrt(len(values))


def method_stats(method: str, rows: list[dict[str, Any]]) -> MethodStats:
    """Accuracy (Wilson interval), mean base log-likelihood and cost per answer of one method."""
    correct = sum(1 for r in rows if r["correct"])
    logliks = [r["base_logprob_sum"] for r in rows if r.get("base_logprob_sum") is not None]
    loglik, half = mean_interval(logliks)
    return MethodStats(
        method, len(rows), correct, wilson_interval(correct, len(rows)), loglik, half,
        statistics.median(logliks) if logliks else None,
        mean_or_none([r["generated_tokens"] for r in rows if r.get("generated_tokens") is not None]),
        mean_or_none([r["latency"] for r in rows]),
    )


def paired_difference(rows: list[dict[str, Any]], a: str, b: str) -> tuple[float, float, float] | None:
    """Accuracy of `a` minus `b` over the items both answered, with its paired 95 % interval (points)."""
    by_item = {(r["method"], r["item"]): bool(r["correct"]) for r in rows}
    items = sorted({item for method, item in by_item if method == a} & {item for method, item in by_item
                                                                         if method == b})
    if len(items) < 2:
        return None
    diffs = [float(by_item[(a, i)]) - float(by_item[(b, i)]) for i in items]
    mean, half = mean_interval(diffs)
    assert mean is not None and half is not None
    return 100 * mean, 100 * (mean - half), 100 * (mean + half)


def comparisons(ns: Sequence[int], alphas: Sequence[float] = ()) -> list[tuple[str, str]]:
    """The pairs the report compares: each adapter's one sample against base best-of-N (its own N and
    the smallest, the goal's yardstick), an RL adapter against the strategies that sample its target,
    and more."""
    pairs = []
    for n in ns:
        pairs += [(f"sft-{n} sample", f"base best-of-{n}"), (f"sft-{n} sample", "base sample"),
                  (f"sft-{n} greedy", "base greedy"), (f"sft-{n} sample", "base greedy")]
        if n != min(ns):
            pairs.append((f"sft-{n} sample", f"base best-of-{min(ns)}"))
    for alpha in alphas:
        rl = f"rl-a{alpha:g} sample"
        pairs += [(rl, f"base best-of-{min(ns)}"), (rl, "base sample"), (rl, f"base power a{alpha:g}"),
                  (rl, f"base smc a{alpha:g}"), (rl, f"sft-{min(ns)} sample")]
    return pairs


def task_section(
    task: str, rows: list[dict[str, Any]], meta: dict[str, Any]
) -> tuple[list[str], list[MethodStats]]:
    """The Markdown of one task and its per-method numbers."""
    order = list(dict.fromkeys(r["method"] for r in rows))
    stats = [method_stats(m, [r for r in rows if r["method"] == m]) for m in order]
    lines = [
        f"## {task} ({meta['label'] + ' run: ' if meta['label'] else ''}{meta['eval']} evaluation items, "
        f"{meta['train']} training prompts)",
        "",
        "| method | accuracy | 95% interval | base log-likelihood of the answer (mean ± 95%) "
        "| its median | generated tokens / answer | latency / answer |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        loglik = "-" if s.loglik is None else f"{s.loglik:.2f} ± {s.loglik_half_width or 0:.2f}"
        tokens = "-" if s.generated_tokens is None else f"{s.generated_tokens:.1f}"
        latency = "-" if s.latency is None else f"{s.latency:.2f} s"
        interval = f"{100 * s.interval[0]:.1f}-{100 * s.interval[1]:.1f}%"
        median = "-" if s.loglik_median is None else f"{s.loglik_median:.2f}"
        lines.append(f"| {s.method} | {100 * s.accuracy:.1f}% ({s.correct}/{s.items}) | {interval} | "
                     f"{loglik} | {median} | {tokens} | {latency} |")
    lines += ["", "Paired differences in accuracy (percentage points, 95% interval over the same items):", ""]
    for a, b in comparisons(meta["n"], meta.get("alphas", ())):
        diff = paired_difference(rows, a, b)
        if diff is not None:
            lines.append(f"- {a} vs {b}: {diff[0]:+.1f} points ({diff[1]:+.1f} to {diff[2]:+.1f})")
    lines += ["", "Adapters:", ""]
    for n, card in meta["cards"].items():
        hp = card["hyperparameters"]
        lines.append(f"- sft-{n}: {card['examples']} examples ({card['dropped_unfinished']} dropped as "
                     f"unfinished), rank {hp['rank']}, lr {hp['learning_rate']}, batch {hp['batch_size']}, "
                     f"{card['steps']} steps; loss {card['first_loss']:.3f} -> {card['final_loss']:.3f}")
    for alpha, card in meta.get("rl_cards", {}).items():
        hp = card["hyperparameters"]
        lines.append(f"- rl-a{alpha}: beta {card['beta']:.3g}, {card['prompts']} prompts x "
                     f"{card['num_generations']} samples, rank {hp['rank']}, lr {hp['learning_rate']}, "
                     f"{card['steps']} steps")
    lines += ["", f"Run time {meta['seconds']} s.", ""]
    return lines, stats


def plot(results: dict[str, list[MethodStats]], path: Path) -> None:
    """Accuracy (Wilson intervals) and base log-likelihood per method as horizontal bars, one row per
    task; a dashed line marks base best-of-8, the accuracy an amortized sample should reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tallest = max(len(stats) for stats in results.values())
    figure, axes = plt.subplots(len(results), 2, figsize=(12, (1.2 + 0.3 * tallest) * len(results)),
                                squeeze=False)
    for row, (task, stats) in enumerate(results.items()):
        names = [s.method for s in stats]
        colours = ["tab:orange" if name.startswith("sft") else "tab:green" if name.startswith("rl")
                   else "tab:blue" for name in names]
        acc = [100 * s.accuracy for s in stats]
        errors = [[a - 100 * s.interval[0] for a, s in zip(acc, stats, strict=True)],
                  [100 * s.interval[1] - a for a, s in zip(acc, stats, strict=True)]]
        axes[row][0].barh(names, acc, xerr=errors, color=colours, capsize=3)
        reference = next((100 * s.accuracy for s in stats if s.method == "base best-of-8"), None)
        if reference is not None:
            axes[row][0].axvline(reference, color="black", linestyle="--", linewidth=1,
                                 label=f"base best-of-8 ({reference:.1f} %)")
            axes[row][0].legend(fontsize=8, loc="lower right")
        axes[row][0].set_xlabel("accuracy (%)")
        axes[row][0].set_title(f"{task}: accuracy, 95% Wilson intervals")
        logliks = [s.loglik or 0.0 for s in stats]
        axes[row][1].barh(names, logliks, xerr=[s.loglik_half_width or 0.0 for s in stats], color=colours,
                          capsize=3)
        axes[row][1].set_xlabel("base log-likelihood of the answer (higher is likelier)")
        axes[row][1].set_title(f"{task}: base model log-likelihood (mean, 95%)")
        for axis in axes[row]:
            axis.invert_yaxis()  # the table's order, top to bottom
            axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(out: Path) -> Path:
    """OUT/amortize.md and OUT/amortize.png from the cached rows under OUT/amortize_raw."""
    raw = out / "amortize_raw"
    lines = ["# Amortization: sharpened adapters vs the base model's best-of-N", "",
             f"Machine: {machine()}. Made by `python -m benchmarks.amortize` (`make bench-amortize`).", ""]
    findings = out / "amortize_findings.md"
    if findings.is_file():
        lines += [findings.read_text(encoding="utf-8"), ""]
    results: dict[str, list[MethodStats]] = {}
    for meta_path in sorted(raw.glob("*.meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        task = meta["task"]
        rows = [json.loads(line) for line in (raw / f"{task}.jsonl").read_text().splitlines() if line.strip()]
        section, results[task] = task_section(task, rows, meta)
        lines += section
    if results:
        plot(results, out / "amortize.png")
        lines += ["![accuracy and base log-likelihood per method](amortize.png)", ""]
    path = out / "amortize.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
