"""Reading a trace directory: broken lines skipped, the summary, a missing directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.test_trace_recorder import record
from training.traces import read_traces, summarize


def test_reader_skips_broken_lines_and_summary_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [json.dumps(record(1, score=-2.0)), "{broken", json.dumps(record(3, "majority", score=-4.0))]
    (tmp_path / "traces-x-0000.jsonl").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        summary = summarize(read_traces(tmp_path))
    assert "not a JSON line" in caplog.text
    assert summary.count == 2
    assert summary.strategies == {"best_of_n": 1, "majority": 1}
    assert summary.mean_score == -3.0
    assert (summary.prompt_tokens, summary.completion_tokens, summary.generated_tokens) == (6, 4, 20)
    assert (summary.first, summary.last) == (record(1)["time"], record(3)["time"])
    assert "records:             2" in summary.render()


def test_reading_a_missing_directory_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory of traces"):
        list(read_traces(tmp_path / "absent"))
