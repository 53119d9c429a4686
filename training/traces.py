"""Reading the traces a server wrote with --trace-dir: the records, their summary, `whetstone traces`."""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from server.trace_recorder import TRACE_GLOB

logger = logging.getLogger(__name__)


def add_traces_command(commands: Any) -> None:
    """Register `traces`; it sets `run(args) -> exit code`."""
    traces = commands.add_parser(
        "traces", help="summarise a trace directory",
        description="Count, strategies, models, mean selected score, token totals and time range "
        "of the traces a server wrote with --trace-dir.",
    )
    traces.add_argument("directory", type=Path, help="the trace directory")
    traces.add_argument("--json", action="store_true", help="print the summary as JSON")
    traces.set_defaults(run=run_traces)


def run_traces(args: argparse.Namespace) -> int | str:
    """Print the summary of a trace directory."""
    try:
        summary = summarize(read_traces(args.directory))
    except FileNotFoundError as exc:
        return f"whetstone traces: {exc}"
    print(json.dumps(asdict(summary), indent=2) if args.json else summary.render())
    return 0


def read_traces(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record in the trace files of `directory`, oldest file first; broken lines are skipped."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory of traces")
    for path in sorted(directory.glob(TRACE_GLOB)):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("%s:%d is not a JSON line; skipped", path, number)


@dataclass(frozen=True)
class TraceSummary:
    """What a trace directory holds."""

    count: int
    strategies: dict[str, int]
    models: dict[str, int]
    mean_score: float | None
    prompt_tokens: int
    completion_tokens: int
    generated_tokens: int
    first: str | None
    last: str | None

    def render(self) -> str:
        """A human-readable summary, one fact a line."""
        def counts(table: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(table.items())) or "-"

        mean = "-" if self.mean_score is None else f"{self.mean_score:.3f}"
        facts = [
            ("records", str(self.count)),
            ("strategies", counts(self.strategies)),
            ("models", counts(self.models)),
            ("mean selected score", mean),
            ("prompt tokens", str(self.prompt_tokens)),
            ("answer tokens", str(self.completion_tokens)),
            ("generated tokens", f"{self.generated_tokens} (all candidates)"),
            ("from", self.first or "-"),
            ("to", self.last or "-"),
        ]
        return "\n".join(f"{name + ':':<21}{value}" for name, value in facts)


def summarize(records: Iterator[dict[str, Any]]) -> TraceSummary:
    """Count, strategies, models, mean selected score, token totals and time range of trace records."""
    strategies: Counter[str] = Counter()
    models: Counter[str] = Counter()
    scores: list[float] = []
    prompt = completion = generated = 0
    times: list[str] = []
    for record in records:
        strategies[str(record.get("strategy"))] += 1
        models[str(record.get("model"))] += 1
        selected = record.get("selected") or {}
        if isinstance(selected.get("score"), int | float):
            scores.append(float(selected["score"]))
        prompt += len(record.get("prompt_token_ids") or ())
        completion += len(selected.get("token_ids") or ())
        generated += int(record.get("generated_tokens") or 0)
        if record.get("time"):
            times.append(str(record["time"]))
    return TraceSummary(
        count=sum(strategies.values()),
        strategies=dict(strategies),
        models=dict(models),
        mean_score=statistics.fmean(scores) if scores else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        generated_tokens=generated,
        first=min(times) if times else None,
        last=max(times) if times else None,
    )
