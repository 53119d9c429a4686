"""Quality-benchmark cache and command line: grading cached records, answer normalisation, limits."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks.common.datasets import TASKS
from benchmarks.quality.data import append_record, cached_ids, graded_items, normalize_answer, read_records
from benchmarks.quality.run import parse_limits, sizes_up_to


def candidate(text: str, logprob: float = -3.0, status: str = "finished") -> dict[str, object]:
    """A cached candidate."""
    return {"text": text, "logprob_sum": logprob, "num_tokens": 7, "status": status, "finish_reason": "stop"}


def record(item_id: str, texts: list[str], greedy: str = "Answer: 5") -> dict[str, object]:
    """A cached arithmetic record whose reference answer is 5."""
    return {
        "id": item_id, "answer": "5", "n": len(texts), "max_tokens": 64,
        "greedy": {"candidates": [candidate(greedy)]},
        "sampled": {"candidates": [candidate(t) for t in texts]},
    }


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("1,250", "1250"), ("1250.0", "1250"), ("-3", "-3"), ("0.50", "1/2"), ("b", "B"), (None, None)],
)
def test_answers_are_normalised_so_equal_values_vote_together(raw: str | None, canonical: str | None) -> None:
    assert normalize_answer(raw) == canonical


def test_graded_items_check_answers_and_keep_status() -> None:
    rec = record("a", ["2 + 3 = 5", "Answer: 6", "I do not know"])
    rec["sampled"]["candidates"][2]["status"] = "truncated"  # type: ignore[index]
    [item] = graded_items([rec], TASKS["arithmetic"], n=3)
    assert item.greedy.correct
    assert [s.correct for s in item.samples] == [True, False, False]
    assert [s.answer for s in item.samples] == ["5", "6", None]
    assert [s.finished for s in item.samples] == [True, True, False]


def test_graded_items_skip_short_records_and_keep_the_latest_duplicate() -> None:
    old, new = record("a", ["Answer: 6"] * 2), record("a", ["Answer: 5"] * 2)
    items = graded_items([old, new, record("b", ["Answer: 5"])], TASKS["arithmetic"], n=2)
    assert [item.id for item in items] == ["a"]
    assert all(s.correct for s in items[0].samples)


def test_cache_round_trips_and_knows_what_was_collected(tmp_path: Path) -> None:
    path = tmp_path / "raw" / "arithmetic.jsonl"
    assert read_records(path) == []
    append_record(path, record("a", ["Answer: 5"] * 2))
    append_record(path, record("b", ["Answer: 5"] * 4))
    assert [r["id"] for r in read_records(path)] == ["a", "b"]
    assert cached_ids(path, n=2, max_tokens=64) == {"a"}
    assert cached_ids(path, n=2, max_tokens=128) == set()


def test_limits_take_a_count_for_every_task_and_per_task_overrides() -> None:
    assert parse_limits(["10", "gsm8k=3"]) == {"arithmetic": 10, "arc_easy": 10, "gsm8k": 3}
    assert parse_limits(["arc_easy=7"]) == {"arc_easy": 7}
    assert parse_limits([]) == {}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_limits(["nosuch=3"])


def test_sizes_double_up_to_the_largest_n() -> None:
    assert sizes_up_to(32) == [1, 2, 4, 8, 16, 32]
    assert sizes_up_to(12) == [1, 2, 4, 8, 12]
