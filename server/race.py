"""Draws a request's candidates concurrently from the engine and aborts the ones that cannot win."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.engines import Engine, SamplingSpec
from server.metrics import Metrics
from server.sharpening import Candidate, CandidateStatus, Pruner, TokenLogprob

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaceEvent:
    """What a race listener hears: a candidate grew by `text`/`tokens`, or its status changed.

    `bound` is the best score the candidate can still reach and `cutoff` the pruning cutoff S*
    (None until enough candidates finished), both as of this event.
    """

    candidate: Candidate
    text: str
    tokens: Sequence[TokenLogprob]
    bound: float
    cutoff: float | None


UpdateListener = Callable[[RaceEvent], None]


class CandidateRace:
    """Runs candidate streams side by side for one request.

    After every update the pruner is asked which running candidates can no longer be
    selected; those are aborted in the engine at once. When `accepts` says a just-ended
    candidate settles the request, every other running candidate is aborted too.
    """

    def __init__(
        self,
        engine: Engine,
        prompt_token_ids: list[int],
        request_id: str,
        pruner: Pruner,
        metrics: Metrics,
        accepts: Callable[[Candidate], bool],
        on_update: UpdateListener | None = None,
    ) -> None:
        self.engine = engine
        self.prompt_token_ids = prompt_token_ids
        self.request_id = request_id
        self.pruner = pruner
        self.metrics = metrics
        self.accepts = accepts
        self.on_update = on_update
        self.settled = False
        self._running: dict[int, Candidate] = {}

    def engine_id(self, candidate: Candidate) -> str:
        """The engine request id of a candidate."""
        return f"{self.request_id}-{candidate.index}"

    async def draw(self, wave: list[tuple[Candidate, SamplingSpec]]) -> None:
        """Generate a wave of candidates to their end (or until pruned); abort all if cancelled."""
        tasks = [asyncio.create_task(self._drive(c, spec)) for c, spec in wave]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # a no-op for finished tasks; stops siblings after a failure
                task.cancel()

    async def _drive(self, candidate: Candidate, spec: SamplingSpec) -> None:
        self._running[candidate.index] = candidate
        self.metrics.inflight_candidates.inc()
        try:
            stream = self.engine.stream_candidate(self.prompt_token_ids, spec, self.engine_id(candidate))
            async for update in stream:
                candidate.extend(update.token_ids, update.logprobs, update.text, update.tokens)
                self._tell(candidate, update.text, update.tokens)
                self.metrics.generated_tokens.inc(len(update.token_ids))
                if update.cached_prompt_tokens:  # the first update only
                    self.metrics.prefix_cached_tokens.inc(update.cached_prompt_tokens)
                if update.finished:
                    await self._end(candidate, update.finish_reason)
                    break
                if candidate.status is CandidateStatus.PRUNED or self.pruner.cannot_win(candidate):
                    # abort again if pruned before the engine knew the request: idempotent
                    await self._prune([candidate])
        except asyncio.CancelledError:  # the client went away, or a sibling failed
            if not candidate.done:
                self.metrics.candidates.labels("aborted").inc()
                await asyncio.shield(self.engine.abort([self.engine_id(candidate)]))
            raise
        finally:
            self._running.pop(candidate.index, None)
            self.metrics.inflight_candidates.dec()

    async def _end(self, candidate: Candidate, finish_reason: str | None) -> None:
        if candidate.status is not CandidateStatus.RUNNING:
            return  # pruned while the engine was still sending its last tokens
        if finish_reason == "abort":
            candidate.prune()
            self.metrics.candidates.labels(candidate.status.value).inc()
            self._tell(candidate)
            return
        candidate.finish(finish_reason)
        self.metrics.candidates.labels(candidate.status.value).inc()
        self.pruner.record(candidate)
        self._tell(candidate)
        if self.accepts(candidate):
            self.settled = True
            others = [c for c in self._running.values() if c is not candidate]
        else:
            others = self.pruner.losers(list(self._running.values()))
        await self._prune(others)

    async def _prune(self, candidates: list[Candidate]) -> None:
        """Mark candidates pruned and abort them in the engine; their streams then end."""
        for candidate in candidates:
            if candidate.status is CandidateStatus.RUNNING:
                candidate.prune()
                self.metrics.candidates.labels(candidate.status.value).inc()
                self._tell(candidate)
        if candidates:
            await self.engine.abort([self.engine_id(c) for c in candidates])

    def _tell(self, candidate: Candidate, text: str = "", tokens: Sequence[TokenLogprob] = ()) -> None:
        """Hand the listener (if any) a candidate's new text or changed status."""
        if self.on_update is not None:
            bound = self.pruner.bound(candidate)
            self.on_update(RaceEvent(candidate, text, tokens, bound, self.pruner.cutoff))
