"""Accuracy versus generated tokens: the offline selection rules and the live strategies, per task.

Every way is measured on the same items (the first --strategy-items of a task that every live
strategy answered). Cost is the mean number of tokens generated per question: for greedy its
completion, for best-of-N and majority vote the sum over the N sub-sampled candidates (no
pruning), for a live strategy the response's `usage.completion_tokens` (every candidate,
particle, fork and MH proposal).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common.datasets import Task, load_task
from benchmarks.quality.data import Record, grade, graded_items, raw_path, read_records
from benchmarks.quality.pareto_plot import write_pareto_plot
from benchmarks.quality.pareto_points import Point, TaskPareto
from benchmarks.quality.report import pct
from benchmarks.quality.stats import (
    BEST_OF_N,
    BEST_OF_N_MEAN,
    GREEDY,
    MAJORITY,
    ItemSamples,
    MethodResult,
    Sample,
    item_choices,
    item_subsets,
    paired_difference,
    summarize,
)
from benchmarks.quality.strategies import (
    ALPHA,
    STRATEGY_N,
    strategy_path,
    strategy_request,
    strategy_runs_path,
)
from benchmarks.quality.summary import TaskReport

OFFLINE = (BEST_OF_N, BEST_OF_N_MEAN, MAJORITY)


def live_records(out: Path, task: Task, strategy: str) -> dict[str, Record]:
    """A strategy's cached answers for a task made with today's request fields (later ones win)."""
    request = strategy_request(strategy, task)
    return {
        r["id"]: r for r in read_records(strategy_path(out, task.name, strategy))
        if r.get("request") == request and r.get("max_tokens") == task.max_tokens
    }


def live_sample(record: Record, task: Task) -> Sample:
    """A live answer graded by the task's checker, like a cached candidate."""
    candidate = {
        "text": record["text"],
        "logprob_sum": record.get("selected_logprob_sum") or 0.0,
        "num_tokens": record.get("selected_num_tokens") or 0,
        "status": "finished" if record.get("finish_reason") == "stop" else "truncated",
    }
    return grade(candidate, record["answer"], task)


def offline_points(
    items: Sequence[ItemSamples], greedy: MethodResult, sizes: Sequence[int], count: int, seed: int
) -> list[Point]:
    """Best-of-N (lp 0, lp 1) and majority vote at every N, costing the N candidates' tokens."""
    points = []
    for n in sizes:
        chosen: dict[str, list[list[Sample]]] = {m: [] for m in OFFLINE}
        spent = []
        for item in items:
            for method, picks in item_choices(item, n, count, seed).items():
                if method in chosen:
                    chosen[method].append(picks)
            lengths = [s.num_tokens for s in item.samples]
            spent.append(statistics.fmean(
                sum(lengths[i] for i in subset) for subset in item_subsets(item, n, count, seed)
            ))
        for method in OFFLINE:
            result = summarize(method, n, chosen[method])
            points.append(Point(method, n, False, result, statistics.fmean(spent),
                                paired_difference(result, greedy)))
    return points


def task_pareto(
    report: TaskReport, out: Path, strategies: Sequence[str], item_count: int, seed: int
) -> TaskPareto | None:
    """The task's points on the items every live strategy answered; None when none did."""
    task = report.task
    answers = {s: live_records(out, task, s) for s in strategies}
    answers = {s: records for s, records in answers.items() if records}
    if not answers:
        return None
    wanted = {item.id for item in load_task(task.name, item_count)}
    for records in answers.values():
        wanted &= set(records)
    items = [i for i in graded_items(read_records(raw_path(out, task.name)), task, report.largest)
             if i.id in wanted]
    if not items:
        return None
    greedy = summarize(GREEDY, 1, [[item.greedy] for item in items])
    points = [Point(GREEDY, 1, False, greedy, statistics.fmean(i.greedy.num_tokens for i in items),
                    (0.0, 0.0, 0.0))]
    points += offline_points(items, greedy, report.sizes, report.subsets, seed)
    for strategy, records in answers.items():
        samples = [live_sample(records[i.id], task) for i in items]
        result = summarize(strategy, STRATEGY_N, [[s] for s in samples])
        tokens = statistics.fmean(float(records[i.id]["completion_tokens"] or 0) for i in items)
        same = statistics.fmean(s.answer == i.greedy.answer for s, i in zip(samples, items, strict=True))
        versus = paired_difference(result, greedy)
        points.append(Point(strategy, STRATEGY_N, True, result, tokens, versus, same))
    return TaskPareto(task, len(items), tuple(points))


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no other point dominates (as accurate for no more tokens, better in one), by tokens."""
    def dominated(p: Point) -> bool:
        return any(
            q.result.accuracy >= p.result.accuracy and q.tokens <= p.tokens
            and (q.result.accuracy > p.result.accuracy or q.tokens < p.tokens)
            for q in points
        )
    return sorted((p for p in points if not dominated(p)), key=lambda p: p.tokens)


def row(point: Point, greedy_tokens: float) -> str:
    """One table row: accuracy [CI], paired difference from greedy, tokens and their multiple."""
    r = point.result
    diff = "" if point.method == GREEDY else "{:+.1f} [{:+.1f}, {:+.1f}]".format(
        *(100 * x for x in point.versus_greedy))
    return (f"| {point.label} | {pct(r.accuracy)} [{pct(r.ci_low)}, {pct(r.ci_high)}] | {diff} "
            f"| {point.tokens:.1f} | {point.tokens / greedy_tokens:.1f}x |")


def table(pareto: TaskPareto, sizes: Sequence[int]) -> list[str]:
    """Greedy, the offline rules at N = 8 and the largest N, and the live strategies."""
    shown = {STRATEGY_N, max(sizes)}
    rows = [pareto.greedy] + [p for m in OFFLINE for p in pareto.offline(m) if p.n in shown] + pareto.live
    return [
        "| way | accuracy % [95% Wilson CI] | vs greedy, points [paired 95% CI] "
        "| mean generated tokens per question | x greedy's tokens |",
        "|---|---|---:|---:|---:|",
        *(row(p, pareto.greedy.tokens) for p in rows),
    ]


def observations(pareto: TaskPareto) -> list[str]:
    """Plain statements of what the points show, gains and the absence of gains alike."""
    greedy = pareto.greedy
    bon = next((p for p in pareto.offline(BEST_OF_N) if p.n == STRATEGY_N), None)
    lines = []
    for point in pareto.live:
        diff, low, high = (100 * x for x in point.versus_greedy)
        verdict = ("better than greedy" if low > 0 else "worse than greedy" if high < 0
                   else "not distinguishable from greedy")
        compare = ""
        if bon is not None:
            compare = (f"; best-of-{STRATEGY_N} (lp 0) reaches {pct(bon.result.accuracy)}% "
                       f"with {bon.tokens:.0f} tokens")
        lines.append(f"- {point.label}: {pct(point.result.accuracy)}% ({diff:+.1f} points [{low:+.1f}, "
                     f"{high:+.1f}], {verdict}) for {point.tokens:.0f} generated tokens per question, "
                     f"{point.tokens / greedy.tokens:.1f}x greedy's {greedy.tokens:.0f}{compare}; "
                     f"it gives greedy's answer on {pct(point.same_as_greedy or 0.0)}% of the items.")
    gains = [p.label for p in pareto.points if p.method != GREEDY and p.versus_greedy[1] > 0]
    lines.append(
        f"- Paired intervals above 0 on these {pareto.items} items: {', '.join(gains)} ({len(gains)} of "
        f"{len(pareto.points) - 1} comparisons with greedy; unadjusted for multiplicity)." if gains else
        f"- No way beats greedy significantly on these {pareto.items} items: every paired interval "
        "includes 0 or lies below it, and every other way spends more tokens than greedy."
    )
    front = pareto_front(pareto.points)
    lines.append("- Pareto front (no other way is as accurate for as few tokens): "
                 + ", ".join(f"{p.label} ({pct(p.result.accuracy)}%, {p.tokens:.0f} tokens)" for p in front)
                 + ".")
    return lines


def run_summary(out: Path, task: str) -> str:
    """How the task's live answers were collected (server mode, minutes), from the runs log."""
    runs = [r for r in read_records(strategy_runs_path(out)) if r["task"] == task]
    if not runs:
        return "no runs logged"
    minutes = sum(float(r["seconds"]) for r in runs) / 60
    servers = sorted({str(r.get("server")) for r in runs})
    return f"{minutes:.1f} min of requests; server: {', '.join(servers)}"


def section(paretos: Sequence[TaskPareto], out: Path, sizes: Sequence[int]) -> list[str]:
    """The report's section: setup, then per task a table, the plot and the observations."""
    lines = [
        "## Accuracy versus generated tokens: live strategies",
        "",
        f"- `power`, `smc`, `mcmc` and `confidence` are asked of the server once per item (n={STRATEGY_N}, "
        f"alpha={ALPHA} for the power strategies, otherwise the server's defaults: smc reweights every "
        "32 tokens and resamples below ESS 0.5 x n; mcmc runs one chain of 4 blocks x 2 MH steps "
        "(not the paper's 16 x 10); confidence warms up on 4 traces, top-5 log-probs, window 32, keeps "
        "the 90th percentile, votes with the task's answer pattern). power and confidence sample at "
        "temperature 1, smc and mcmc at 1/alpha; the item's fixed seed is passed.",
        "- Greedy, best-of-N and majority vote come from the cached candidates above, restricted to the "
        "same items. Their cost counts every candidate in full (no pruning; the server's default "
        "pruned best_of_n generates fewer tokens for the same choice).",
        "- Generated tokens per question: `usage.completion_tokens` for a live strategy (every candidate, "
        "particle, fork and MH proposal); the N candidates' lengths summed for the offline rules.",
        "- One answer per item and strategy, so one seed's luck: the intervals are wide. Paired "
        "intervals compare with greedy on the same items (normal approximation, not adjusted for "
        "the many comparisons). Requests ran several items at a time on the shared machine, so "
        "latency is not compared here (`benchmarks/stepwise.py` measures it).",
        "",
    ]
    for pareto in paretos:
        name = pareto.task.name
        lines += [f"### {name}: accuracy versus tokens ({pareto.items} items; {run_summary(out, name)})", "",
                  *table(pareto, sizes), "", f"![accuracy versus generated tokens, {name}]"
                  f"({pareto_plot_name(name)})", "", "Observed:", "", *observations(pareto), ""]
    return lines


def pareto_plot_name(task: str) -> str:
    """The file name of a task's Pareto plot."""
    return f"quality_pareto_{task}.png"


def pareto_sections(
    reports: Sequence[TaskReport], out: Path, strategies: Sequence[str], item_count: int, seed: int = 0
) -> list[str]:
    """The strategies' markdown section (empty when none was asked or cached); writes its plots and
    OUT/quality_pareto.json."""
    if not strategies:
        return []
    paretos = [p for r in reports if (p := task_pareto(r, out, strategies, item_count, seed)) is not None]
    if not paretos:
        return []
    for pareto in paretos:
        write_pareto_plot(pareto, out / pareto_plot_name(pareto.task.name))
    summary = {p.task.name: [point_summary(point, p.items) for point in p.points] for p in paretos}
    (out / "quality_pareto.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return section(paretos, out, reports[0].sizes)


def point_summary(point: Point, items: int) -> dict[str, object]:
    """A point as JSON: accuracy with its intervals, tokens, and for a live strategy its agreement."""
    r = point.result
    return {
        "way": point.label, "method": point.method, "n": point.n, "live": point.live, "items": items,
        "accuracy": round(r.accuracy, 4), "wilson_95": [round(r.ci_low, 4), round(r.ci_high, 4)],
        "vs_greedy_points": [round(100 * x, 2) for x in point.versus_greedy],
        "mean_generated_tokens": round(point.tokens, 2), "same_answer_as_greedy": point.same_as_greedy,
    }
