"""Assemble a streamed (server-sent events) completion into one Completion."""

from __future__ import annotations

import json
import time
from typing import Any

from clients.errors import InvalidResponse, StreamError, api_error_kwargs, error_fields
from clients.results import Completion, parse_completion

DONE = "[DONE]"


class StreamCollector:
    """Feed it the stream's lines; it keeps the text, usage, summary and first-token time.

    The time to first token is taken when the first chunk carrying generated text arrives
    (or, for an empty completion, the first chunk at all), measured from `started`.
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = False
        self.first_token_at: float | None = None
        self.first_chunk_at: float | None = None
        self.texts: dict[int, list[str]] = {}
        self.finish_reasons: dict[int, str | None] = {}
        self.fields: dict[str, Any] = {}

    def feed(self, line: str) -> bool:
        """Take one line of the stream; True once `[DONE]` has arrived."""
        if not line.startswith("data:"):
            return False  # blank separators, comments, `event:` and `id:` lines
        data = line[len("data:"):].strip()
        if data == DONE:
            self.done = True
            return True
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidResponse(f"stream event is not JSON: {data[:200]!r}") from exc
        error = error_fields(chunk)
        if error is not None:
            raise StreamError(str(error.get("message", "stream failed")),
                              **api_error_kwargs(error, chunk))
        self._take(chunk)
        return False

    def _take(self, chunk: dict[str, Any]) -> None:
        now = time.perf_counter()
        if self.first_chunk_at is None:
            self.first_chunk_at = now
        for key in ("id", "model", "usage", "sharpening"):
            if chunk.get(key) is not None:
                self.fields[key] = chunk[key]
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index", 0))
            delta = choice.get("delta")
            text = (delta or {}).get("content") if isinstance(delta, dict) else choice.get("text")
            if text:
                self.texts.setdefault(index, []).append(text)
                if self.first_token_at is None:
                    self.first_token_at = now
            else:
                self.texts.setdefault(index, [])
            if choice.get("finish_reason") is not None:
                self.finish_reasons[index] = choice["finish_reason"]

    def result(self) -> Completion:
        """The assembled completion; raises if the stream ended before `[DONE]`."""
        if not self.done:
            raise InvalidResponse("the stream ended before data: [DONE]")
        if not self.texts:
            raise InvalidResponse("the stream carried no choices")
        first = self.first_token_at or self.first_chunk_at or time.perf_counter()
        body = self.fields | {
            "choices": [
                {"index": i, "text": "".join(parts), "finish_reason": self.finish_reasons.get(i)}
                for i, parts in sorted(self.texts.items())
            ]
        }
        return parse_completion(
            body, time.perf_counter() - self.started, time_to_first_token=first - self.started
        )
