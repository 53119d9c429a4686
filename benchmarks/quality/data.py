"""The quality benchmark's raw cache: one JSONL line per item, read back and graded offline.

A line holds an item's reference answer, its greedy completion and the 32 candidates of one
`best_of_n` request (text, raw log-likelihood, length, status), so every statistic can be
rebuilt with `--report-only` and a changed checker applies without re-running the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from benchmarks.common.datasets import Task
from benchmarks.quality.stats import ItemSamples, Sample
from clients import Candidate, Completion
from clients.checkers import extract_answer

Record = dict[str, Any]


def raw_path(out_dir: Path, task: str) -> Path:
    """Where a task's raw responses are cached."""
    return out_dir / "quality_raw" / f"{task}.jsonl"


def runs_path(out_dir: Path) -> Path:
    """The log of collection runs (one JSON line per task per run: items, seconds, server)."""
    return out_dir / "quality_raw" / "runs.jsonl"


def candidate_record(candidate: Candidate) -> Record:
    """The fields of a candidate the report needs (token ids are left out to keep files small)."""
    return {
        "text": candidate.text,
        "logprob_sum": candidate.logprob_sum,
        "num_tokens": candidate.num_tokens,
        "status": candidate.status,
        "finish_reason": candidate.finish_reason,
    }


def completion_record(completion: Completion) -> Record:
    """A response's latency, generated tokens and returned candidates."""
    sharpening = completion.sharpening
    candidates = sharpening.candidates if sharpening is not None else None
    if not candidates:
        raise ValueError(f"response {completion.id} returned no candidates")
    return {
        "latency": round(completion.latency, 3),
        "completion_tokens": completion.usage.completion_tokens if completion.usage else None,
        "selected_index": sharpening.selected_index if sharpening else None,
        "candidates": [candidate_record(c) for c in sorted(candidates, key=lambda c: c.index)],
    }


def read_records(path: Path) -> list[Record]:
    """Every record of a JSONL cache (none when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def append_record(path: Path, record: Record) -> None:
    """Append one record as a JSON line, flushed at once so an interrupted run keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def cached_ids(path: Path, n: int, max_tokens: int) -> set[str]:
    """Ids of items already collected with the same number of candidates and token limit."""
    return {
        r["id"] for r in read_records(path) if r.get("n") == n and r.get("max_tokens") == max_tokens
    }


def normalize_answer(answer: str | None) -> str | None:
    """An answer in canonical form, so "1,250", "1250" and "1250.0" vote together."""
    if answer is None:
        return None
    try:
        return str(Fraction(answer.replace(",", "")))
    except (ValueError, ZeroDivisionError):
        return answer.strip().upper()


def grade(candidate: Record, reference: str, task: Task) -> Sample:
    """A cached candidate as a Sample: the task's checker decides whether it is correct."""
    text = str(candidate["text"])
    return Sample(
        logprob_sum=float(candidate["logprob_sum"]),
        num_tokens=int(candidate["num_tokens"]),
        finished=candidate["status"] == "finished",
        answer=normalize_answer(extract_answer(text, task.answer_pattern)),
        correct=task.check(text, reference),
    )


def graded_items(records: Iterable[Record], task: Task, n: int) -> list[ItemSamples]:
    """Records with at least `n` candidates, graded, in id order (later duplicates win)."""
    by_id = {r["id"]: r for r in records if len(r["sampled"]["candidates"]) >= n}
    return [
        ItemSamples(
            id=item_id,
            greedy=grade(r["greedy"]["candidates"][0], r["answer"], task),
            samples=tuple(grade(c, r["answer"], task) for c in r["sampled"]["candidates"]),
        )
        for item_id, r in sorted(by_id.items())
    ]
