"""Graded answers to quality-task items, one request each, cached as JSON lines so a run resumes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common.datasets import TASKS, Item
from benchmarks.quality.collect import item_seed
from benchmarks.quality.stats import MethodResult, Sample, paired_difference, summarize
from clients import WhetstoneClient
from server.sharpening.patterns import extract_answer

Answers = dict[tuple[str, str, str], dict[str, Any]]  # by (task, item id, way)
Step = tuple[str, Item, str, dict[str, Any]]  # task, item, way, request fields


def cached_answers(path: Path) -> Answers:
    """Answers already collected, by (task, item id, way)."""
    if not path.exists():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["task"], r["id"], r["way"]): r for r in records}


def collect_answers(url: str, steps: Sequence[Step], path: Path) -> Answers:
    """Ask every step not cached yet (one request at a time, item seeded by its id), appending to `path`."""
    found = cached_answers(path)
    todo = [step for step in steps if (step[0], step[1].id, step[2]) not in found]
    with WhetstoneClient(url, timeout=1800) as client, path.open("a") as sink:
        for name, item, way, fields in tqdm(todo, desc="answers", unit="req"):
            task = TASKS[name]
            started = time.perf_counter()
            reply = client.chat(item.messages, max_tokens=task.max_tokens, seed=item_seed(item), **fields)
            summary = reply.sharpening
            assert summary is not None and reply.usage is not None
            record = {
                "task": name, "id": item.id, "way": way, "text": reply.text, "answer": item.answer,
                "correct": task.check(reply.text, item.answer),
                "extracted": extract_answer(reply.text, task.answer_pattern),
                "logprob_sum": summary.selected_logprob_sum, "num_tokens": summary.selected_num_tokens,
                "finish_reason": reply.finish_reason, "generated_tokens": reply.usage.completion_tokens,
                "candidates_drawn": summary.candidates_drawn, "stopped_by": summary.stopped_by,
                "latency": round(time.perf_counter() - started, 3),
            }
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            found[(name, item.id, way)] = record
    return found


def graded_sample(record: dict[str, Any]) -> Sample:
    """A graded answer as the quality statistics take it."""
    return Sample(record["logprob_sum"] or 0.0, record["num_tokens"] or 0, record["finish_reason"] == "stop",
                  record["extracted"], record["correct"])


def graded_ways(
    task: str, items: Sequence[Item], found: Answers, ways: Sequence[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, MethodResult]]:
    """Each way's answers to `items` (in item order) and its accuracy over them."""
    answers = {way: [found[(task, item.id, way)] for item in items] for way in ways}
    results = {way: summarize(way, 1, [[graded_sample(r)] for r in rs]) for way, rs in answers.items()}
    return answers, results


def paired_interval(result: MethodResult, base: MethodResult) -> str:
    """A paired accuracy difference in percentage points with its 95 % interval."""
    mean, low, high = paired_difference(result, base)
    return f"{100 * mean:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"
