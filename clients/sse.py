"""Assemble a streamed (server-sent events) completion into one Completion; pick out candidate events."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from clients.errors import InvalidResponse, StreamError, api_error_kwargs, error_fields
from clients.results import Completion, parse_completion

DONE = "[DONE]"
CANDIDATE_EVENT = "candidate"


@dataclass(frozen=True)
class CandidateEvent:
    """One candidate's progress or status change, from a stream asked with `stream_candidates`.

    `status` is running, finished, truncated, pruned (cut at `num_tokens`) or selected (then
    `choice` is its rank among the returned choices); `text` is its new text since its previous
    event; `bound` the best score it can still reach; `cutoff` the pruning cutoff S* (None
    until a candidate finished).
    """

    index: int
    status: str
    text: str
    logprob_sum: float
    num_tokens: int
    score: float
    cutoff: float | None
    bound: float | None = None
    finish_reason: str | None = None
    choice: int | None = None


def candidate_events(chunk: dict[str, Any]) -> list[CandidateEvent]:
    """The CandidateEvents of one `event: candidate` stream event."""
    try:
        return [
            CandidateEvent(
                index=int(entry["index"]), status=str(entry["status"]), text=str(entry.get("text", "")),
                logprob_sum=float(entry["logprob_sum"]), num_tokens=int(entry["num_tokens"]),
                score=float(entry["score"]), cutoff=chunk.get("cutoff"), bound=entry.get("bound"),
                finish_reason=entry.get("finish_reason"), choice=entry.get("choice"),
            )
            for entry in chunk["candidates"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidResponse(f"malformed candidate event: {json.dumps(chunk)[:200]}") from exc


class StreamCollector:
    """Feed it the stream's lines; it keeps the text, usage, summary and first-token time.

    The time to first token is taken when the first chunk carrying generated text arrives
    (or, for an empty completion, the first chunk at all), measured from `started`.
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = False
        self.event_name: str | None = None  # the `event:` of the event being read
        self.candidates: list[CandidateEvent] = []  # candidate events not yet taken
        self.first_token_at: float | None = None
        self.first_chunk_at: float | None = None
        self.texts: dict[int, list[str]] = {}
        self.finish_reasons: dict[int, str | None] = {}
        self.fields: dict[str, Any] = {}

    def feed(self, line: str) -> bool:
        """Take one line of the stream; True once `[DONE]` has arrived."""
        if not line:
            self.event_name = None  # a blank line ends an event
        elif line.startswith("event:"):
            self.event_name = line[len("event:"):].strip()
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
        if self.event_name == CANDIDATE_EVENT:
            self.candidates += candidate_events(chunk)
        else:
            self._take(chunk)
        return False

    def take_candidates(self) -> list[CandidateEvent]:
        """The candidate events that arrived since the last call."""
        taken, self.candidates = self.candidates, []
        return taken

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
