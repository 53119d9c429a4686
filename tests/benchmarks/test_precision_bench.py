"""The precision benchmark's summaries: gaps between scores of the same tokens, and the report."""

from __future__ import annotations

from benchmarks.precision import gaps, report

ROWS = [
    {"token_ids": [1, 2], "in_batch_of_8": -3.0, "alone": -3.5, "among_others": -3.5},
    {"token_ids": [1, 2, 3, 4], "in_batch_of_8": -8.0, "alone": -8.0, "among_others": -7.9},
]


def test_gaps_are_absolute_total_and_per_token() -> None:
    assert gaps(ROWS, "in_batch_of_8") == {"max": 0.5, "median": 0.25, "max_per_token": 0.25}
    assert gaps(ROWS, "among_others")["max"] == 0.1


def test_report_lists_speed_alone_when_drift_was_not_measured() -> None:
    speed = {"greedy": 20.0, "default_8": 150.0, "best_of_8_t1": 120.0}
    text = report([{"dtype": "float32", "tokens_per_s": speed}], "a host, native bf16")
    assert "| float32 | 20.0 | 150.0 | 120.0 | - | - | - |" in text
    assert "Machine: a host, native bf16" in text
