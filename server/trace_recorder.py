"""Request traces (--trace-dir): each sharpened answer appended to rotating JSONL files off the event loop."""

from __future__ import annotations

import datetime
import json
import logging
import queue
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.jobs import GenerationJob, SharpenedResult

logger = logging.getLogger(__name__)

TRACE_GLOB = "traces-*.jsonl"
QUEUE_SIZE = 1024
_STOP = object()


def utc_now() -> str:
    """The current UTC time in ISO 8601, seconds precision."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class TraceWriter:
    """Appends trace records to `DIR/traces-<start>-<k>.jsonl`, opening a new file past `max_bytes`.

    `record()` never blocks: it puts the record on a bounded queue (dropping it with a warning
    when the queue is full); a background thread serialises and writes. Write failures are
    logged and the record dropped; they never reach a request.
    """

    def __init__(self, directory: Path, max_bytes: int, queue_size: int = QUEUE_SIZE) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._stem = "traces-" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        self._part = 0
        self._file: Any = None

    def start(self) -> None:
        """Create the directory and start the writer thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._write_loop, name="trace-writer", daemon=True)
        self._thread.start()

    def record(self, record: dict[str, Any]) -> None:
        """Queue one record for writing; never blocks the caller."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            logger.warning("trace queue full: dropped a trace record (%d so far)", self.dropped)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread and close the file."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def current_path(self) -> Path:
        """The file records are appended to now."""
        return self.directory / f"{self._stem}-{self._part:04d}.jsonl"

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._write(json.dumps(item, ensure_ascii=False) + "\n")
            except (OSError, TypeError, ValueError):
                logger.exception("could not write a trace record to %s", self.directory)
        if self._file is not None:
            self._file.close()

    def _write(self, line: str) -> None:
        data = line.encode("utf-8")
        size = self._file.tell() if self._file is not None else 0
        if size > 0 and size + len(data) > self.max_bytes:
            self._file.close()
            self._file = None
            self._part += 1
        if self._file is None:
            self._file = self.current_path().open("ab")
        self._file.write(data)
        self._file.flush()


def trace_record(job: GenerationJob, result: SharpenedResult, model: str, request_id: str) -> dict[str, Any]:
    """The trace of one answered request: prompt, chosen candidate, strategy and settings."""
    selected = result.selected
    assert selected is not None, "only requests that chose a candidate are traced"
    return {
        "time": utc_now(),
        "request_id": request_id,
        "model": model,
        "strategy": job.sharpening.strategy,
        "prompt": job.prompt_source,
        "prompt_token_ids": job.prompt_token_ids,
        "selected": {
            "text": selected.text,
            "token_ids": selected.token_ids,
            "logprob_sum": selected.logprob_sum,
            "score": result.scores.get(selected.index),
            "num_tokens": selected.num_tokens,
            "finish_reason": selected.finish_reason,
            "status": selected.status.value,
        },
        "generated_tokens": result.generated_tokens,
        "settings": {"sampling": asdict(job.sampling), "sharpening": asdict(job.sharpening)},
    }
