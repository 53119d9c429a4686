"""Candidate events: every candidate's progress and status, coalesced, as named SSE events.

A stream asked with `sharpening.stream_candidates` interleaves `event: candidate` events with
its chunks. Each event's data is a chunk with no choices (so OpenAI SDKs, which read it as a
chunk, see an empty one) plus `cutoff` (S*, the pruning cutoff) and `candidates`: one entry
per candidate that changed since the previous event. Events are sent at most every
`interval` seconds; what happens in between is merged into one entry per candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from server.race import RaceEvent
from server.sharpening import Candidate, candidate_score

CANDIDATE_EVENT = "candidate"
EVENT_INTERVAL_S = 0.05


def candidate_entry(candidate: Candidate, length_penalty: float) -> dict[str, Any]:
    """A candidate's numbers as they stand: status, running log-likelihood, tokens, score."""
    entry: dict[str, Any] = {
        "index": candidate.index,
        "status": candidate.status.value,
        "text": "",
        "logprob_sum": candidate.logprob_sum,
        "num_tokens": candidate.num_tokens,
        "score": candidate_score(candidate, length_penalty),
    }
    if candidate.done:
        entry["finish_reason"] = candidate.finish_reason
    return entry


class CandidateBatcher:
    """Merges race events per candidate until the stream takes them; `notify` announces a new batch.

    `notify` is called when the first change after a `take` arrives, so the stream wakes once
    per batch, not once per token.
    """

    def __init__(
        self, length_penalty: float, notify: Callable[[], None], interval: float = EVENT_INTERVAL_S
    ) -> None:
        self.length_penalty = length_penalty
        self.notify = notify
        self.interval = interval
        self.cutoff: float | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self._last_sent = float("-inf")

    def hear(self, event: RaceEvent) -> None:
        """Take a race event (the race listener)."""
        if not self._pending:
            self.notify()
        earlier = self._pending.get(event.candidate.index)
        entry = candidate_entry(event.candidate, self.length_penalty)
        entry["text"] = (earlier["text"] if earlier else "") + event.text
        entry["bound"] = event.bound
        self._pending[event.candidate.index] = entry
        self.cutoff = event.cutoff

    def wait_seconds(self) -> float:
        """How long to hold the pending batch so events stay `interval` apart (0: send now)."""
        return max(0.0, self._last_sent + self.interval - time.monotonic())

    def take(self) -> dict[str, Any] | None:
        """The pending batch as event fields (None when nothing changed); starts a new batch."""
        if not self._pending:
            return None
        batch = [self._pending[i] for i in sorted(self._pending)]
        self._pending = {}
        self._last_sent = time.monotonic()
        return {"cutoff": self.cutoff, "candidates": batch}

    def selection(self, choices: list[Candidate], scores: dict[int, float]) -> dict[str, Any]:
        """The closing event fields: the returned candidates, status `selected`, best first."""
        entries = []
        for rank, candidate in enumerate(choices):
            entry = candidate_entry(candidate, self.length_penalty)
            entries.append(entry | {"status": "selected", "choice": rank, "score": scores[candidate.index]})
        return {"cutoff": self.cutoff, "candidates": entries}
