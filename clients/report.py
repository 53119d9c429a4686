"""Write an A/B run to a directory: items.jsonl, summary.json, PNG plots, report.md (and report.html)."""

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
from clients.rendering import (
    Block,
    Bullets,
    Cell,
    Code,
    Heading,
    Images,
    Paragraph,
    Strong,
    Table,
    to_html,
    to_markdown,
    with_code_spans,
)

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


def _results_table(sides: Mapping[str, Mapping[str, Any]]) -> Table:
    header = ["side", "accuracy", "95% CI", "mean log-likelihood", "mean length (tokens)",
              "generated tokens / item", "mean latency (s)", "errors"]
    rows: list[list[Cell]] = []
    for name, s in sides.items():
        interval = "-" if s["ci_low"] is None else f"{s['ci_low']:.3f} - {s['ci_high']:.3f}"
        accuracy = "-"
        if s["accuracy"] is not None:
            accuracy = f"{s['accuracy']:.3f} ({s['correct']}/{s['checked']})"
        estimated = f" ({s['lengths_estimated']} estimated)" if s["lengths_estimated"] else ""
        rows.append([name, accuracy, interval, _number(s["mean_log_likelihood"]),
                     f"{_number(s['mean_length'], 1)}{estimated}",
                     _number(s["mean_generated_tokens"], 1), _number(s["mean_latency"]),
                     str(s["errors"])])
    return Table(header, rows)


def _versus_table(versus: Mapping[str, Mapping[str, int]], baseline: str) -> Table:
    header = ["side", f"wins over {baseline}", "ties", "losses", "undecided",
              "decided by correctness", "decided by log-likelihood"]
    keys = ("b_wins", "ties", "a_wins", "undecided", "by_correctness", "by_log_likelihood")
    return Table(header, [[name, *(str(v[k]) for k in keys)] for name, v in versus.items()])


def _sweep_table(summary: Mapping[str, Any]) -> Table:
    header = ["N", "accuracy", "95% CI", "mean log-likelihood", "generated tokens / item"]
    rows: list[list[Cell]] = []
    for point in summary["sweep"]:
        s = summary["sides"][point["side"]]
        interval = "-" if s["ci_low"] is None else f"{s['ci_low']:.3f} - {s['ci_high']:.3f}"
        rows.append([str(point["n"]), _number(s["accuracy"]), interval,
                     _number(s["mean_log_likelihood"]), _number(s["mean_generated_tokens"], 1)])
    return Table(header, rows)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return (flat if len(flat) <= SNIPPET else flat[:SNIPPET] + "...") or "(empty)"


def _examples(rows: Sequence[Mapping[str, Any]], baseline: str, other: str) -> list[Block]:
    shown = [r for r in rows if r["verdicts"].get(other) in ("a", "b")][:EXAMPLES]
    blocks: list[Block] = []
    for row in shown:
        prompt = row.get("prompt") or row["messages"][-1].get("content", "")
        answer = f", answer {row['answer']}" if row.get("answer") is not None else ""
        blocks.append(Paragraph([Strong(f"Item {row['index']}"),
                                 f" ({row['verdicts'][other]} better{answer}): {_snippet(str(prompt))}"]))
        outputs = [row["outputs"][name] for name in (baseline, other)]
        blocks.append(Bullets([f"{name} (log-likelihood {_number(out['log_likelihood'])}): "
                               f"{_snippet(out['error'] or out['text'])}"
                               for name, out in zip((baseline, other), outputs, strict=True)]))
    return blocks


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


def report_blocks(
    summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], images: Sequence[Path]
) -> list[Block]:
    """The report's content, for either renderer (Markdown or HTML)."""
    meta = summary["run"]
    baseline = summary["baseline"]
    configs = Table(["side", "request fields"],
                    [[name, Code(json.dumps(fields))] for name, fields in summary["configs"].items()])
    blocks: list[Block] = [
        Heading(1, "whetstone A/B report"),
        Paragraph([f"{meta['items']} items from ", *with_code_spans(meta["source"]), ", checker ",
                   Code(meta["checker"]),
                   f", server {meta['url']} ({meta['endpoint']} endpoint), {meta['seconds']:.1f} s."]),
        Paragraph(["Log-likelihood is the chosen answer's raw sequence log-probability under the model "
                   "(sharpening.candidates[selected].logprob_sum, else sharpening.selected_score). "
                   "Items are judged by correctness when they have an answer, else by log-likelihood. "
                   "Failed requests count only under errors."]),
        Heading(2, "Configurations"), configs,
        Heading(2, "Results"), _results_table(summary["sides"]),
        Heading(2, "Head to head"), _versus_table(summary["versus_baseline"], baseline),
    ]
    if summary.get("sweep"):
        blocks += [Heading(2, "Sweep over N"), _sweep_table(summary)]
    blocks += [Heading(2, "Plots"), Images(list(images))]
    others = list(summary["versus_baseline"])
    if len(others) == 1 and (examples := _examples(rows, baseline, others[0])):
        blocks += [Heading(2, "Examples where the sides disagree"), *examples]
    return blocks


def write_report(
    out: Path,
    items: Sequence[Item],
    outputs: Mapping[str, Sequence[Output]],
    summary: Mapping[str, Any],
    html: bool = False,
) -> Path:
    """Write items.jsonl, summary.json, the plots and report.md (and report.html) into `out`.

    Returns report.md's path; report.html, with `html`, is one self-contained file (plots inline).

    `summary` is comparison.summarize's result plus `configs` (side -> request fields), `run`
    (items, source, checker, url, endpoint, seconds) and, for a sweep, `sweep` ([{n, side}]).
    """
    out.mkdir(parents=True, exist_ok=True)
    rows = item_rows(items, outputs, summary["baseline"])
    with (out / "items.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    write_json(out / "summary.json", summary)
    blocks = report_blocks(summary, rows, draw_plots(out, outputs, summary))
    report = out / "report.md"
    report.write_text(to_markdown(blocks), encoding="utf-8")
    if html:
        (out / "report.html").write_text(to_html(blocks, "whetstone A/B report"), encoding="utf-8")
    return report
