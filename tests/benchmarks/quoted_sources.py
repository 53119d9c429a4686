"""Read figures back from committed results, for the quotes that pages make of them."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks.frontier.report import Row, rows
from benchmarks.frontier.ways import Record

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@cache
def result_json(name: str) -> Any:
    """benchmarks/results/NAME, parsed."""
    return json.loads((RESULTS / name).read_text())


@cache
def frontier_records(name: str) -> tuple[Record, ...]:
    """Every record of a frontier result folder's frontier.json (or of frontier.json itself for '')."""
    path = f"{name}/frontier.json" if name else "frontier.json"
    return tuple(Record(**r) for r in result_json(path)["records"])


@cache
def frontier(name: str, *prompt_sets: str) -> dict[str, Row]:
    """The frontier report's row of each way, over the given prompt sets (all when none)."""
    chosen = [r for r in frontier_records(name) if not prompt_sets or r.prompt_set in prompt_sets]
    return {row.way: row for row in rows(chosen)}


def strictly_at_least_greedy(name: str, way: str, *prompt_sets: str) -> int:
    """Prompts where `way`'s answer is at least greedy's, with no tie tolerance."""
    chosen = [r for r in frontier_records(name) if not prompt_sets or r.prompt_set in prompt_sets]
    greedy = {(r.prompt_set, r.prompt): r.logprob_sum for r in chosen if r.way == "greedy"}
    return sum(r.logprob_sum >= greedy[(r.prompt_set, r.prompt)] for r in chosen if r.way == way)


def table(name: str, heading: str | None = None, within: str | None = None) -> list[dict[str, str]]:
    """The rows of a markdown table in benchmarks/results/NAME, each as {column: cell}: the first
    table after the first line that starts with `heading` (the file's first table when None),
    looked for after the first line that starts with `within` when given."""
    lines = (RESULTS / name).read_text().splitlines()
    start = 0
    for prefix in (within, heading):
        if prefix is not None:
            start = next(i for i in range(start, len(lines)) if lines[i].startswith(prefix))
    cells = []
    for line in lines[start:]:
        if line.startswith("|"):
            cells.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif cells:
            break
    if not cells:
        raise LookupError(f"no table after {heading!r} in {name}")
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def plain(cell: str) -> str:
    """A cell without bold or backticks."""
    return cell.replace("**", "").replace("`", "")


def table_cell(name: str, heading: str | None, row: str, column: str, within: str | None = None) -> str:
    """A cell of `table(name, heading, within)`: the row whose first cell is `row` (bold and
    backticks ignored), the column headed `column`."""
    for cells in table(name, heading, within):
        if plain(next(iter(cells.values()))) == row:
            return cells[column]
    raise LookupError(f"no row {row!r} under {heading!r} in {name}")


def line_after(name: str, heading: str, prefix: str) -> str:
    """The first line of benchmarks/results/NAME that starts with `prefix` after the first line
    that starts with `heading`."""
    lines = (RESULTS / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    return next(line for line in lines[start:] if line.startswith(prefix))


@cache
def jsonl(name: str) -> tuple[dict[str, Any], ...]:
    """benchmarks/results/NAME, a JSON object a line."""
    return tuple(json.loads(line) for line in (RESULTS / name).read_text().splitlines() if line.strip())


def number(text: str, which: int = 0) -> str:
    """The `which`-th number written in `text`, as written."""
    return NUMBER.findall(text)[which]


def started_in(log: str) -> float:
    """Seconds from a committed server log's first timestamped line to 'Application startup complete'."""
    stamps = []
    for line in (RESULTS / log).read_text().splitlines():
        found = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", line)
        if found:
            stamps.append(datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S"))
        if "Application startup complete" in line:
            return (stamps[-1] - stamps[0]).total_seconds()
    raise LookupError(f"{log} never finished starting")


def f1(value: float) -> str:
    """One decimal."""
    return f"{value:.1f}"


def f2(value: float) -> str:
    """Two decimals."""
    return f"{value:.2f}"


def found_in(name: str, pattern: str) -> tuple[str, ...]:
    """The groups of `pattern`'s first match in benchmarks/results/NAME (its text as one line)."""
    found = re.search(pattern, " ".join((RESULTS / name).read_text().split()))
    if found is None:
        raise LookupError(f"{pattern!r} is not in {name}")
    return found.groups()


def compiled_in(log: str) -> float:
    """Seconds between vLLM's 'Compiling model' and 'saved AOT compiled function' in a server log."""
    stamps = {}
    for line in (RESULTS / log).read_text().splitlines():
        for key, marker in (("start", "Compiling model"), ("end", "saved AOT compiled function")):
            found = re.search(r" (\d\d-\d\d \d\d:\d\d:\d\d) ", line)
            if marker in line and found and key not in stamps:
                stamps[key] = datetime.strptime(found.group(1), "%m-%d %H:%M:%S")
    return (stamps["end"] - stamps["start"]).total_seconds()
