"""Trace writer (background thread, size rotation, failures logged) and the service hook."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from server.trace_recorder import TraceWriter
from tests.fakes import FakeEngine, Script
from training.traces import read_traces


def record(i: int, strategy: str = "best_of_n", score: float = -1.0) -> dict[str, object]:
    return {
        "time": f"2026-11-23T08:00:{i:02d}+00:00",
        "model": "m",
        "strategy": strategy,
        "prompt_token_ids": [1, 2, 3],
        "selected": {"token_ids": [4, 5], "score": score},
        "generated_tokens": 10,
    }


def test_writer_appends_every_record_and_rotates_by_size(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t", max_bytes=600)
    writer.start()
    for i in range(20):
        writer.record(record(i))
    writer.close()
    files = sorted((tmp_path / "t").glob("traces-*.jsonl"))
    assert len(files) > 2  # ~200 bytes a record, 600 bytes a file
    assert all(f.stat().st_size <= 600 for f in files)
    assert [r["time"] for r in read_traces(tmp_path / "t")] == [record(i)["time"] for i in range(20)]


def test_a_full_queue_drops_records_without_blocking(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, max_bytes=10**6, queue_size=2)  # not started: nothing drains the queue
    for i in range(5):
        writer.record(record(i))
    assert writer.dropped == 3


def test_write_failures_are_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = TraceWriter(tmp_path, max_bytes=10**6)
    writer.start()
    writer.record({"not json": object()})  # TypeError in the writer thread
    writer.record(record(1))
    writer.close()
    assert "could not write a trace record" in caplog.text
    assert [r["time"] for r in read_traces(tmp_path)] == [record(1)["time"]]


def test_records_are_written_off_the_calling_thread(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, max_bytes=10**6)
    writer.start()
    assert writer._thread is not None and writer._thread is not threading.current_thread()
    writer.close()


async def test_server_traces_sharpened_requests_only(make_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(scripts=[Script([-0.5, -0.5, -0.1]), Script([-0.2, -0.1])])
    async with make_client(engine, trace_dir=str(tmp_path)) as client:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        sharpened = await client.post("/v1/chat/completions", json=body | {"sharpening": {"n": 2}})
        plain = await client.post("/v1/chat/completions", json=body | {"sharpening": {"strategy": "none"}})
        assert sharpened.status_code == plain.status_code == 200
    (trace,) = list(read_traces(tmp_path))  # the lifespan closed the writer: everything is on disk
    assert trace["strategy"] == "best_of_n"
    assert trace["model"] == "fake-model"
    assert trace["prompt"] == [{"role": "user", "content": "hi"}]
    assert trace["prompt_token_ids"] == await engine.encode_chat(body["messages"])
    selected = trace["selected"]
    assert selected["text"] == sharpened.json()["choices"][0]["message"]["content"]
    assert selected["token_ids"] == [10, 2]  # script 1: one token then EOS
    assert selected["logprob_sum"] == pytest.approx(-0.3)
    assert selected["score"] == pytest.approx(-0.3)
    assert trace["settings"]["sharpening"]["n"] == 2
    assert trace["settings"]["sampling"]["max_tokens"] == 8
