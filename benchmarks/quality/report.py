"""The quality benchmark's report: per-task numbers, markdown tables and what they show."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common.environment import machine
from benchmarks.quality.data import read_records
from benchmarks.quality.plots import write_plots
from benchmarks.quality.stats import (
    BEST_OF_N,
    BEST_OF_N_MEAN,
    GREEDY,
    MAJORITY,
    METHOD_LABELS,
    ORACLE,
    SAMPLING,
    SELECTION_METHODS,
    MethodResult,
    lift_percent,
    paired_difference,
)
from benchmarks.quality.summary import TaskReport

FINDINGS_FILE = "quality_findings.md"


def pct(value: float) -> str:
    """A proportion as a percentage with one decimal."""
    return f"{100 * value:.1f}"


def signed(value: float | None, unit: str = "") -> str:
    """A signed number with one decimal, or n/a."""
    return "n/a" if value is None else f"{value:+.1f}{unit}"


def optional(value: float | None, digits: int = 2) -> str:
    """A number, or n/a."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def share(top: tuple[str | None, float]) -> str:
    """A most frequent answer and its share, e.g. "C" (91.3%)."""
    answer, fraction = top
    return f"{'none' if answer is None else repr(answer)} ({pct(fraction)}%)"


def accuracy_matrix(report: TaskReport) -> list[str]:
    """Accuracy (%) of each method by N, with greedy and plain sampling as the first rows."""
    header = "| method | " + " | ".join(f"N={n}" for n in report.sizes) + " |"
    lines = [header, "|---|" + "---:|" * len(report.sizes)]
    blank = " | ".join("" for _ in report.sizes[1:])
    for method in (GREEDY, SAMPLING):
        lines.append(f"| {METHOD_LABELS[method]} | {pct(report.result(method).accuracy)} | {blank} |")
    for method in SELECTION_METHODS:
        cells = " | ".join(pct(report.result(method, n).accuracy) for n in report.sizes)
        lines.append(f"| {METHOD_LABELS[method]} | {cells} |")
    return lines


def detail_row(report: TaskReport, result: MethodResult) -> str:
    """One method at one N: accuracy with CI, change over greedy, chosen answers' means."""
    greedy = report.greedy
    points, low, high = (100 * x for x in paired_difference(result, greedy))
    change, lift = "", ""
    if result is not greedy:
        change = f"{signed(points)} [{signed(low)}, {signed(high)}]"
        lift = signed(lift_percent(result.accuracy, greedy.accuracy), "%")
    return (
        f"| {METHOD_LABELS[result.method]} | {result.n} | {pct(result.accuracy)} "
        f"[{pct(result.ci_low)}, {pct(result.ci_high)}] | {change} | {lift} "
        f"| {result.mean_logprob:.2f} | {result.mean_tokens:.1f} |"
    )


DETAIL_HEADER = [
    "| method | N | accuracy % [95% CI] | vs greedy, points [paired 95% CI] | lift over greedy | "
    "mean log-likelihood | mean tokens |",
    "|---|---:|---|---:|---:|---:|---:|",
]


def headline_table(report: TaskReport) -> list[str]:
    """Greedy, plain sampling and every selection method at the largest N."""
    rows = [report.greedy, report.result(SAMPLING)]
    rows += [report.result(method, report.largest) for method in SELECTION_METHODS]
    return DETAIL_HEADER + [detail_row(report, r) for r in rows]


def full_table(report: TaskReport) -> list[str]:
    """Every method at every N."""
    rows = [report.greedy, report.result(SAMPLING)]
    rows += [report.result(m, n) for m in SELECTION_METHODS for n in report.sizes if n > 1]
    return DETAIL_HEADER + [detail_row(report, r) for r in rows]


def best_selection(report: TaskReport) -> MethodResult:
    """The most accurate non-oracle method at any N > 1."""
    candidates = [r for r in report.results if r.method in (BEST_OF_N, BEST_OF_N_MEAN, MAJORITY) and r.n > 1]
    return max(candidates, key=lambda r: r.accuracy)


def observations(report: TaskReport) -> list[str]:
    """Plain statements of the task's numbers (the interpretation is written by hand)."""
    greedy = report.greedy
    n = report.largest

    def versus(method: str) -> str:
        result = report.result(method, n)
        lift = lift_percent(result.accuracy, greedy.accuracy)
        points, low, high = (100 * x for x in paired_difference(result, greedy))
        return (f"{METHOD_LABELS[method]} at N={n}: {pct(result.accuracy)}% "
                f"({signed(points)} points [{signed(low)}, {signed(high)}], lift {signed(lift, '%')})")

    best = best_selection(report)
    chosen = report.result(BEST_OF_N, n)
    agreement = "n/a" if report.agreement is None else f"{pct(report.agreement)}%"
    return [
        f"- Greedy {pct(greedy.accuracy)}%, "
        f"one temperature-1 sample {pct(report.result(SAMPLING).accuracy)}%; "
        f"{versus(BEST_OF_N)}; {versus(BEST_OF_N_MEAN)}; {versus(MAJORITY)}.",
        f"- Best selection rule: {METHOD_LABELS[best.method]} at N={best.n}, {pct(best.accuracy)}% "
        f"[{pct(best.ci_low)}, {pct(best.ci_high)}]; a correct answer is among the {n} samples "
        f"{pct(report.result(ORACLE, n).accuracy)}% of the time (pass@{n}).",
        f"- Within an item, a correct sample out-scores a wrong one {optional(report.auc_sum)} of the time "
        f"by log-likelihood and {optional(report.auc_mean)} by mean log-likelihood per token "
        "(0.5 = no signal); the most likely of all samples gives greedy's answer in "
        f"{agreement} of the items where greedy gives one.",
        f"- Correct samples average {optional(report.tokens_right, 1)} tokens, wrong ones "
        f"{optional(report.tokens_wrong, 1)}; best-of-{n} (lp 0) picks {chosen.mean_tokens:.1f}"
        f" tokens at log-likelihood {chosen.mean_logprob:.2f}, greedy "
        f"{greedy.mean_tokens:.1f} at {greedy.mean_logprob:.2f}.",
        f"- Most frequent answer: {share(report.top_best)} of the most likely samples' answers, "
        f"{share(report.top_greedy)} of greedy's, {share(report.top_reference)} of the reference answers.",
        f"- {pct(report.answered)}% of samples state an answer the pattern finds; {pct(report.truncated)}% "
        f"of samples and {pct(report.greedy_truncated)}% of greedy completions hit max_tokens.",
    ]


def run_times(runs_file: Path) -> dict[str, float]:
    """Seconds spent collecting each task, summed over the runs logged in runs.jsonl."""
    seconds: dict[str, float] = {}
    for run in read_records(runs_file):
        seconds[run["task"]] = seconds.get(run["task"], 0.0) + float(run["seconds"])
    return seconds


def setup_section(reports: Sequence[TaskReport], runs_file: Path) -> list[str]:
    """Machine, model, item counts, token limits and run times."""
    seconds = run_times(runs_file)
    total = sum(seconds.get(r.task.name, 0.0) for r in reports)
    lines = [
        "## Setup",
        "",
        f"- Machine: {machine()}; vLLM CPU backend; "
        "the machine was shared with other work, so times are indicative.",
        f"- Model: `{reports[0].model}` (the embedded default), bfloat16.",
        f"- Per item: one request for {reports[0].largest} candidates at temperature 1 with a fixed seed "
        "(`best_of_n`, `prune: false`, `return_candidates: true`) and one greedy request "
        "(temperature 0, strategy `none`). Smaller N are simulated by sub-sampling the candidates "
        f"(up to {reports[0].subsets} random subsets per item and N, the same subsets for every method).",
        "- Accuracy intervals are 95% Wilson intervals over items. 'Points' is the absolute difference "
        "from greedy, with a paired 95% interval over the same items (normal approximation); lift over "
        "greedy is the paper's (acc - acc_greedy) / acc_greedy x 100.",
        "- best-of-N, lp 0 keeps the candidate with the highest raw log-likelihood (finished before "
        "truncated), lp 1 the highest log-likelihood per token; majority vote counts the answers the "
        "task's pattern extracts (numbers compared by value), ties broken by log-likelihood.",
        f"- Collection time: {total / 60:.1f} min in all, plus the server's start. Request latencies "
        "below are means under the benchmark's own load (several items in flight at once).",
        "",
        "| task | items | max_tokens | collection time | greedy request (s) "
        f"| {reports[0].largest}-candidate request (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        spent = seconds.get(r.task.name)
        shown = "n/a" if spent is None else f"{spent / 60:.1f} min"
        lines.append(f"| {r.task.name} | {r.items} | {r.task.max_tokens} | {shown} "
                     f"| {r.greedy_latency:.1f} | {r.sampled_latency:.1f} |")
    return [*lines, ""]


PLOTS = [
    ("quality_accuracy.png", "Accuracy with 95% intervals, per task and method"),
    ("quality_lift.png", "% lift over greedy, per task, method and N"),
    ("quality_lift_vs_n.png", "Accuracy minus greedy (points) as N grows"),
    ("quality_loglik_vs_n.png", "Log-likelihood of the chosen answer as N grows"),
    ("quality_length.png", "Length of the chosen answer as N grows"),
]


def render(
    reports: Sequence[TaskReport], runs_file: Path, findings: str | None, extra: Sequence[str] = ()
) -> str:
    """The whole markdown report; `extra` lines (the strategies' section) come before the plots."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Quality benchmark: greedy vs sharpening on {reports[0].model}", ""]
    if findings:
        lines += [findings.strip(), "", f"*(The section above is written by hand in `{FINDINGS_FILE}`; "
                  "everything below is generated by `python -m benchmarks.quality`.)*", ""]
    lines += [f"Generated {stamp}.", "", *setup_section(reports, runs_file)]
    for r in reports:
        lines += [f"## {r.task.name}: {r.task.description} ({r.items} items)", "",
                  "Accuracy (%) by N:", "", *accuracy_matrix(r), "",
                  f"Greedy, one sample and N={r.largest}:", "", *headline_table(r), "",
                  "Observed:", "", *observations(r), ""]
    lines += [*extra, "## Plots", ""]
    lines += [f"![{title}]({name})\n" for name, title in PLOTS]
    lines += ["## Every method at every N", ""]
    for r in reports:
        lines += [f"### {r.task.name}", "", *full_table(r), ""]
    return "\n".join(lines)


def write_report(
    reports: Sequence[TaskReport], out: Path, runs_file: Path, extra: Sequence[str] = ()
) -> Path:
    """Write OUT/quality.md and its plots (`extra`: more markdown lines); return the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    write_plots(reports, out)
    findings_path = out / FINDINGS_FILE
    findings = findings_path.read_text(encoding="utf-8") if findings_path.exists() else None
    path = out / "quality.md"
    path.write_text(render(reports, runs_file, findings, extra), encoding="utf-8")
    return path
