"""Frontier tables and plots: median selected log-likelihood against tokens and latency."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.frontier.anchor import AnchorAnswer
from benchmarks.frontier.ways import Record

TIE = 0.1  # nats: bf16 scores of the same tokens differ by a few hundredths between batch shapes
RESAMPLES = 2000  # bootstrap draws for the latency ratio's interval


@dataclass(frozen=True)
class Row:
    """One way on one prompt set, summarised."""

    way: str
    prompts: int
    median_logprob: float
    median_logprob_per_token: float
    at_least_greedy: int | None  # prompts where the answer is at least as likely as greedy's
    generated_tokens: int
    median_latency: float
    latency_vs_greedy: float | None
    median_answer_tokens: float
    latency_ratio_interval: tuple[float, float] | None = None  # 95 %, prompts resampled in pairs


def rows(records: Sequence[Record], greedy: str = "greedy") -> list[Row]:
    """Per way (in first-seen order): medians, totals and the comparison with greedy on each prompt."""
    by_way: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_way[r.way].append(r)
    floor = {(r.prompt_set, r.prompt): r.logprob_sum for r in by_way.get(greedy, [])}
    greedy_latencies = {(r.prompt_set, r.prompt): r.latency for r in by_way.get(greedy, [])}
    greedy_latency = statistics.median(r.latency for r in by_way[greedy]) if greedy in by_way else None
    table = []
    for way, mine in by_way.items():
        latency = statistics.median(r.latency for r in mine)
        beats = None if way == greedy or not floor else sum(
            r.logprob_sum >= floor[key] - TIE for r in mine if (key := (r.prompt_set, r.prompt)) in floor
        )
        table.append(Row(
            way, len(mine), statistics.median(r.logprob_sum for r in mine),
            statistics.median(r.logprob_sum / max(r.num_tokens, 1) for r in mine), beats,
            sum(r.generated_tokens for r in mine), latency,
            None if greedy_latency is None else latency / greedy_latency,
            statistics.median(r.num_tokens for r in mine),
            None if way == greedy else latency_ratio_interval(mine, greedy_latencies),
        ))
    return table


def latency_ratio_interval(
    mine: Sequence[Record], greedy_latencies: dict[tuple[str, int], float], seed: int = 0
) -> tuple[float, float] | None:
    """A 95 % bootstrap interval of median latency / greedy's median latency, resampling prompts
    (each prompt's two latencies stay together). None without at least two shared prompts."""
    pairs = [(r.latency, greedy_latencies[key]) for r in mine
             if (key := (r.prompt_set, r.prompt)) in greedy_latencies]
    if len(pairs) < 2:
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(RESAMPLES):
        drawn = rng.choices(pairs, k=len(pairs))
        ratios.append(statistics.median(a for a, _ in drawn) / statistics.median(b for _, b in drawn))
    ratios.sort()
    return ratios[int(0.025 * RESAMPLES)], ratios[int(0.975 * RESAMPLES) - 1]


def markdown(table: Sequence[Row]) -> str:
    """A markdown table of `rows`."""
    lines = [
        "| way | median log-likelihood | median per token | >= greedy on | generated tokens | "
        "median latency | vs greedy (95 % interval) | median answer tokens |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        beats = "-" if r.at_least_greedy is None else f"{r.at_least_greedy} of {r.prompts}"
        ratio = "-" if r.latency_vs_greedy is None else f"{r.latency_vs_greedy:.2f}x"
        if r.latency_ratio_interval is not None:
            ratio += " ({:.2f}-{:.2f})".format(*r.latency_ratio_interval)
        lines.append(
            f"| {r.way} | {r.median_logprob:.1f} | {r.median_logprob_per_token:.3f} | {beats} | "
            f"{r.generated_tokens} | {r.median_latency:.2f} s | {ratio} | {r.median_answer_tokens:.0f} |"
        )
    return "\n".join(lines)


def anchor_comparison(records: Sequence[Record], anchors: Sequence[AnchorAnswer]) -> str:
    """Each way's median log-likelihood and latency on the anchor's prompts, beside vLLM beam search."""
    prompts = {(a.prompt_set, a.prompt) for a in anchors}
    beam_ll = statistics.median(a.logprob_sum for a in anchors)
    beam_latency = statistics.median(a.latency for a in anchors)
    lines = [
        f"vLLM beam search on {len(prompts)} prompts: median log-likelihood {beam_ll:.2f}, "
        f"median latency {beam_latency:.1f} s.",
        "",
        "| way | median log-likelihood | gap to vLLM beam (nats) | median latency | share of beam latency |",
        "|---|---:|---:|---:|---:|",
        f"| vLLM beam search | {beam_ll:.2f} | 0 | {beam_latency:.1f} s | 1 |",
    ]
    by_way: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if (r.prompt_set, r.prompt) in prompts:
            by_way[r.way].append(r)
    for way, mine in by_way.items():
        if len(mine) != len(prompts):
            continue
        ll = statistics.median(r.logprob_sum for r in mine)
        latency = statistics.median(r.latency for r in mine)
        lines.append(f"| {way} | {ll:.2f} | {beam_ll - ll:+.2f} | {latency:.2f} s | "
                     f"1/{beam_latency / latency:.0f} |")
    return "\n".join(lines)


def plot(tables: dict[str, list[Row]], anchors: Sequence[AnchorAnswer], path: Path) -> None:
    """Median log-likelihood against generated tokens and against latency, one row per prompt set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tables), 2, figsize=(13, 4.6 * len(tables)), squeeze=False)
    for (name, table), (by_tokens, by_time) in zip(tables.items(), axes, strict=True):
        for r in table:
            style = {"marker": "s", "color": "black"} if r.way == "greedy" else {"marker": "o"}
            by_tokens.scatter(r.generated_tokens / r.prompts, r.median_logprob, **style)
            by_time.scatter(r.median_latency, r.median_logprob, **style)
            for ax, x in ((by_tokens, r.generated_tokens / r.prompts), (by_time, r.median_latency)):
                ax.annotate(r.way, (x, r.median_logprob), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        mine = [a for a in anchors if a.prompt_set == name]
        if mine:
            beam_ll = statistics.median(a.logprob_sum for a in mine)
            by_time.scatter(statistics.median(a.latency for a in mine), beam_ll, marker="*", s=160,
                            color="crimson", label=f"vLLM beam search ({len(mine)} prompts)")
            by_time.set_xscale("log")
            by_time.legend(fontsize=8, loc="lower right")
        by_tokens.set(xlabel="generated tokens per request (all candidates)",
                      ylabel="median selected log-likelihood", title=f"{name}: likelihood per token spent")
        by_time.set(xlabel="median latency (s)", ylabel="median selected log-likelihood",
                    title=f"{name}: likelihood per second")
        for ax in (by_tokens, by_time):
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def paired_plot(records: Sequence[Record], way: str, path: Path, greedy: str = "greedy") -> None:
    """Each prompt's latency and log-likelihood under `way` against greedy's, coloured by prompt set;
    points under the diagonal of the left panel are faster than greedy, above it on the right likelier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    base = {(r.prompt_set, r.prompt): r for r in records if r.way == greedy}
    pairs = [(base[key], r) for r in records if r.way == way and (key := (r.prompt_set, r.prompt)) in base]
    fig, (by_time, by_ll) = plt.subplots(1, 2, figsize=(13, 5.6))
    for name in dict.fromkeys(g.prompt_set for g, _ in pairs):
        mine = [(g, r) for g, r in pairs if g.prompt_set == name]
        for ax, field in ((by_time, "latency"), (by_ll, "logprob_sum")):
            ax.scatter([getattr(g, field) for g, _ in mine], [getattr(r, field) for _, r in mine],
                       label=name, alpha=0.8)
    latencies = values_of(pairs, "latency")
    for ax, values in ((by_time, latencies), (by_ll, values_of(pairs, "logprob_sum"))):
        low, high = min(values), max(values)
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="same as greedy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    faster = sum(r.latency < g.latency for g, r in pairs)
    likelier = sum(r.logprob_sum >= g.logprob_sum - TIE for g, r in pairs)
    by_time.set(xscale="log", yscale="log", xlabel=f"{greedy} latency (s)", ylabel=f"{way} latency (s)",
                title=f"latency per prompt: {way} faster on {faster} of {len(pairs)}")
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if min(latencies) / 2 <= t <= 2 * max(latencies)]
    for axis in (by_time.xaxis, by_time.yaxis):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
        axis.set_minor_formatter(NullFormatter())
    by_ll.set(xlabel=f"{greedy} log-likelihood", ylabel=f"{way} log-likelihood",
              title=f"log-likelihood per prompt: {way} at least {greedy}'s on {likelier} of {len(pairs)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def values_of(pairs: Sequence[tuple[Record, Record]], field: str) -> list[float]:
    """One field of both records of every pair."""
    return [getattr(r, field) for pair in pairs for r in pair]
