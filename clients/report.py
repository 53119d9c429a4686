"""Write an A/B run to a directory: items.jsonl, summary.json, PNG plots and report.md."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clients import plots
from clients.comparison import Output, judge
from clients.items import Item
from clients.options import write_json

EXAMPLES = 5
SNIPPET = 240


def output_json(output: Output) -> dict[str, Any]:
    """An output as JSON, its log-likelihood included."""
    return dataclasses.asdict(output) | {"log_likelihood": output.log_likelihood}


def item_rows(
    items: Sequence[Item], outputs: Mapping[str, Sequence[Output]], baseline: str
) -> list[dict[str, Any]]:
    """One JSON row per item: its input, every side's output and each verdict against A."""
    rows = []
    for i, item in enumerate(items):
        row: dict[str, Any] = {"index": i, **item.as_json()}
        row["outputs"] = {name: output_json(side[i]) for name, side in outputs.items()}
        row["verdicts"] = {name: judge(outputs[baseline][i], side[i])
                           for name, side in outputs.items() if name != baseline}
        rows.append(row)
    return rows


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _results_table(sides: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| side | accuracy | 95% CI | mean log-likelihood | mean length (tokens) | "
             "generated tokens / item | mean latency (s) | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in sides.items():
        interval = "-" if s["ci_low"] is None else f"{s['ci_low']:.3f} - {s['ci_high']:.3f}"
        accuracy = "-"
        if s["accuracy"] is not None:
            accuracy = f"{s['accuracy']:.3f} ({s['correct']}/{s['checked']})"
        estimated = f" ({s['lengths_estimated']} estimated)" if s["lengths_estimated"] else ""
        lines.append(
            f"| {name} | {accuracy} | {interval} | {_number(s['mean_log_likelihood'])} | "
            f"{_number(s['mean_length'], 1)}{estimated} | "
            f"{_number(s['mean_generated_tokens'], 1)} | {_number(s['mean_latency'])} | "
            f"{s['errors']} |"
        )
    return lines


def _versus_table(versus: Mapping[str, Mapping[str, int]], baseline: str) -> list[str]:
    lines = [f"| side | wins over {baseline} | ties | losses | undecided | "
             "decided by correctness | decided by log-likelihood |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, v in versus.items():
        lines.append(f"| {name} | {v['b_wins']} | {v['ties']} | {v['a_wins']} | "
                     f"{v['undecided']} | {v['by_correctness']} | {v['by_log_likelihood']} |")
    return lines


def _sweep_table(summary: Mapping[str, Any]) -> list[str]:
    lines = ["| N | accuracy | 95% CI | mean log-likelihood | generated tokens / item |",
             "| --- | --- | --- | --- | --- |"]
    for point in summary["sweep"]:
        s = summary["sides"][point["side"]]
        interval = "-" if s["ci_low"] is None else f"{s['ci_low']:.3f} - {s['ci_high']:.3f}"
        lines.append(f"| {point['n']} | {_number(s['accuracy'])} | {interval} | "
                     f"{_number(s['mean_log_likelihood'])} | "
                     f"{_number(s['mean_generated_tokens'], 1)} |")
    return lines


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    flat = flat if len(flat) <= SNIPPET else flat[:SNIPPET] + "..."
    return flat.replace("|", "\\|") or "(empty)"


def _examples(rows: Sequence[Mapping[str, Any]], baseline: str, other: str) -> list[str]:
    shown = [r for r in rows if r["verdicts"].get(other) in ("a", "b")][:EXAMPLES]
    lines = []
    for row in shown:
        prompt = row.get("prompt") or row["messages"][-1].get("content", "")
        lines += [f"**Item {row['index']}** ({row['verdicts'][other]} better"
                  f"{', answer ' + row['answer'] if row.get('answer') is not None else ''}): "
                  f"{_snippet(str(prompt))}", ""]
        for name in (baseline, other):
            out = row["outputs"][name]
            lines.append(f"- {name} (log-likelihood {_number(out['log_likelihood'])}): "
                         f"{_snippet(out['error'] or out['text'])}")
        lines.append("")
    return lines


def draw_plots(
    out: Path, outputs: Mapping[str, Sequence[Output]], summary: Mapping[str, Any]
) -> list[Path]:
    """Every plot that has data to show; returns their paths."""
    made = [plots.score_distributions(out / "scores.png", outputs),
            plots.length_vs_score(out / "length_vs_score.png", outputs)]
    if any(s["accuracy"] is not None for s in summary["sides"].values()):
        made.append(plots.accuracy_bars(out / "accuracy.png", summary["sides"]))
    if summary.get("sweep"):
        points = [summary["sides"][p["side"]] for p in summary["sweep"]]
        baseline = summary["baseline"]
        made.append(plots.sweep(out / "sweep.png", [p["n"] for p in summary["sweep"]], points,
                                summary["sides"][baseline], baseline))
    return made


def markdown(
    summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], images: Sequence[Path]
) -> str:
    """The report's Markdown text."""
    meta = summary["run"]
    baseline = summary["baseline"]
    lines = [
        "# whetstone A/B report", "",
        f"{meta['items']} items from {meta['source']}, checker `{meta['checker']}`, "
        f"server {meta['url']} ({meta['endpoint']} endpoint), {meta['seconds']:.1f} s.", "",
        "Log-likelihood is the chosen answer's raw sequence log-probability under the model "
        "(sharpening.candidates[selected].logprob_sum, else sharpening.selected_score). "
        "Items are judged by correctness when they have an answer, else by log-likelihood. "
        "Failed requests count only under errors.", "",
        "## Configurations", "", "| side | request fields |", "| --- | --- |",
        *[f"| {name} | `{json.dumps(fields)}` |" for name, fields in summary["configs"].items()], "",
        "## Results", "", *_results_table(summary["sides"]), "",
        "## Head to head", "", *_versus_table(summary["versus_baseline"], baseline), "",
    ]
    if summary.get("sweep"):
        lines += ["## Sweep over N", "", *_sweep_table(summary), ""]
    lines += ["## Plots", "", *[f"![{p.stem}]({p.name})" for p in images], ""]
    others = list(summary["versus_baseline"])
    if len(others) == 1 and (examples := _examples(rows, baseline, others[0])):
        lines += ["## Examples where the sides disagree", "", *examples]
    return "\n".join(lines)


def write_report(
    out: Path,
    items: Sequence[Item],
    outputs: Mapping[str, Sequence[Output]],
    summary: Mapping[str, Any],
) -> Path:
    """Write items.jsonl, summary.json, the plots and report.md into `out`; returns report.md.

    `summary` is comparison.summarize's result plus `configs` (side -> request fields), `run`
    (items, source, checker, url, endpoint, seconds) and, for a sweep, `sweep` ([{n, side}]).
    """
    out.mkdir(parents=True, exist_ok=True)
    rows = item_rows(items, outputs, summary["baseline"])
    with (out / "items.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    write_json(out / "summary.json", summary)
    images = draw_plots(out, outputs, summary)
    report = out / "report.md"
    report.write_text(markdown(summary, rows, images), encoding="utf-8")
    return report
