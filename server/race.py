"""Runs a strategy's decisions against the engine: draws, forks and aborts of candidates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from server.engines import Engine, EngineError, SamplingSpec
from server.load import LoadGovernor, LoadMode, LoadTicket
from server.metrics import Metrics
from server.sharpening import Abort, Candidate, CandidateStatus, Decision, Draw, Strategy, TokenLogprob

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaceEvent:
    """What a race listener hears: a candidate grew by `text`/`tokens`, or its status changed.

    `bound` is the best score the candidate can still reach and `cutoff` the pruning cutoff S*
    (None while nothing can be pruned on score), both as of this event.
    """

    candidate: Candidate
    text: str
    tokens: Sequence[TokenLogprob]
    bound: float
    cutoff: float | None


UpdateListener = Callable[[RaceEvent], None]


class CandidateRace:
    """Runs one request's candidates side by side, as its strategy decides.

    A `Draw` starts an engine request (a fork's prompt is the prompt plus its inherited
    tokens); an `Abort` marks candidates pruned and aborts them in the engine. The strategy
    hears every candidate's tokens and its end, and answers with more decisions. The observer
    `on_update(RaceEvent)` hears every draw, every piece of generated text and every status change.

    `budget` caps the tokens generated over all candidates (a fork's inherited prefix is not
    generated again, so it is counted once). Once `spent` reaches it the race stops: see the
    contract. Tokens the engine had already generated when the abort reaches it are counted
    too, so `spent` may pass the budget by what was in flight (docs/budgets.md).

    The first draw is the request's primary candidate; later draws are extras. With a
    `governor`, every sequence counts as the server's load, and under the
    `spare` load mode extras start only where the engine has room, are cut when a newer
    request's primary needs it, and get a deadline once the primary has ended (server/load.py).
    """

    def __init__(
        self,
        engine: Engine,
        prompt_token_ids: list[int],
        sampling: SamplingSpec,
        request_id: str,
        metrics: Metrics,
        on_update: UpdateListener | None = None,
        budget: int | None = None,
        governor: LoadGovernor | None = None,
        load_mode: LoadMode = "wait",
    ) -> None:
        self.engine = engine
        self.prompt_token_ids = prompt_token_ids
        self.sampling = sampling
        self.request_id = request_id
        self.metrics = metrics
        self.on_update = on_update
        self.budget = budget
        self.spent = 0  # tokens generated so far, all candidates together
        self.candidates: list[Candidate] = []
        self.cut: set[int] = set()  # indices of the extras the load policy stopped before their end
        self.governor = governor
        self.load_mode = load_mode
        self.ticket: LoadTicket | None = None
        self.primary: Candidate | None = None
        self._counted: set[int] = set()  # candidates counted in the server's load
        self._deadline: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._aborts: set[asyncio.Task[None]] = set()

    def engine_id(self, candidate: Candidate) -> str:
        """The engine request id of a candidate."""
        return f"{self.request_id}-{candidate.index}"

    async def run(self, strategy: Strategy) -> list[Candidate]:
        """Carry out `strategy` until no candidate runs; every candidate drawn, in order.

        If this is cancelled (the client went away) or a candidate fails, the others stop.
        """
        self.strategy = strategy
        self._started = asyncio.get_running_loop().time()
        if self.governor is not None:
            self.ticket = self.governor.ticket(self.load_mode, self.cut_extras)
        try:
            await self._execute(strategy.start())
            while self._tasks:
                done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                self._tasks -= done
                for task in done:
                    task.result()
        finally:
            for task in self._tasks:  # stops siblings after a failure or a cancellation
                task.cancel()
            if self._deadline is not None:
                self._deadline.cancel()
            if self.ticket is not None:
                self.ticket.close()
        return self.candidates

    async def _execute(self, decisions: list[Decision]) -> None:
        aborted: list[Candidate] = []
        extras: list[Draw] = []
        for decision in decisions:
            if isinstance(decision, Draw) and self.budget_spent:
                self._refuse(decision, "budget")
            elif isinstance(decision, Draw) and self.primary is None:
                self.primary = decision.candidate
                self._start(decision)
            elif isinstance(decision, Draw):
                extras.append(decision)
            elif isinstance(decision, Abort):
                aborted.extend(decision.candidates)
        self._start_extras(extras)
        await self._abort(aborted)

    def _start(self, draw: Draw) -> None:
        """Send one candidate to the engine (counted in the server's load)."""
        candidate = draw.candidate
        self.candidates.append(candidate)
        spec = self.candidate_sampling(draw)
        candidate.temperature = spec.temperature
        self._counted.add(candidate.index)
        if self.ticket is not None and candidate is self.primary:
            self.ticket.primary_started()
        self._tell(candidate)  # listeners hear each draw (a fork: its prefix so far)
        task = asyncio.create_task(self._drive(candidate, spec))
        task.add_done_callback(quietly)  # one failure is raised by `run`; siblings' are moot
        self._tasks.add(task)

    def _start_extras(self, draws: list[Draw]) -> None:
        """Start the extras the load allows now; the rest are refused (`stopped_by: "load"`)."""
        if not draws:
            return
        late = self.primary is not None and self.primary.done  # past the primary: its deadline rules
        allowed = len(draws)
        if self.ticket is not None:
            allowed = 0 if late and self.ticket.spare else self.ticket.admit_extras(len(draws))
        for draw in draws[:allowed]:
            self._start(draw)
        for draw in draws[allowed:]:
            self._refuse(draw, "deadline" if late else "load")

    def _refuse(self, draw: Draw, reason: str) -> None:
        """A draw that never reaches the engine: its candidate is marked pruned."""
        draw.candidate.prune()
        self.strategy.stop(reason)
        self.metrics.refused_candidates.labels(reason).inc()

    def candidate_sampling(self, draw: Draw) -> SamplingSpec:
        """The request's sampling as the draw adjusts it; candidate i draws with seed + i."""
        candidate, base = draw.candidate, self.sampling
        left = candidate.max_tokens - candidate.num_tokens
        return replace(
            base,
            max_tokens=min(left, draw.max_new_tokens or left),
            temperature=base.temperature if draw.temperature is None else draw.temperature,
            top_logprobs=max(base.top_logprobs, draw.top_logprobs),
            seed=None if base.seed is None else base.seed + candidate.index,
        )

    async def _drive(self, candidate: Candidate, spec: SamplingSpec) -> None:
        self.metrics.inflight_candidates.inc()
        try:
            if candidate.status is CandidateStatus.RUNNING:  # else aborted before it started
                await self._stream(candidate, spec)
            self._release(candidate)
            await self._execute(self.strategy.on_end(candidate))
        except asyncio.CancelledError:  # the client went away, or a sibling failed
            if not candidate.done:
                self.metrics.candidates.labels("aborted").inc()
                await asyncio.shield(self.engine.abort([self.engine_id(candidate)]))
            raise
        finally:
            self._release(candidate)
            self.metrics.inflight_candidates.dec()

    def _release(self, candidate: Candidate) -> None:
        """The candidate no longer loads the engine (counted out once)."""
        if candidate.index in self._counted:
            self._counted.discard(candidate.index)
            if self.ticket is not None:
                self.ticket.ended(primary=candidate is self.primary)

    async def _stream(self, candidate: Candidate, spec: SamplingSpec) -> None:
        prompt = self.prompt_token_ids + candidate.token_ids  # a fork continues its prefix
        start = candidate.num_tokens
        async for update in self.engine.stream_candidate(prompt, spec, self.engine_id(candidate)):
            stopped_before = candidate.done  # pruned or cut while the engine was still generating
            shown = self._visible(update.tokens)
            candidate.extend(update.token_ids, update.logprobs, update.text, shown)
            self._tell(candidate, update.text, shown)
            self.spent += len(update.token_ids)
            self.metrics.generated_tokens.inc(len(update.token_ids))
            if update.cached_prompt_tokens:  # the first update only
                self.metrics.prefix_cached_tokens.inc(update.cached_prompt_tokens)
            if update.finished:
                at_checkpoint = candidate.num_tokens - start >= spec.max_tokens
                self._end(candidate, update.finish_reason, at_checkpoint)
            if self.budget_spent:
                await self._stop_for_budget()
            if stopped_before and not update.finished:
                # abort again if stopped before the engine knew the request: idempotent
                await self.engine.abort([self.engine_id(candidate)])
                continue
            if update.tokens:  # the last piece is heard after the candidate's status is final
                await self._execute(self.strategy.on_tokens(candidate, update.tokens))
            if update.finished:
                return

    def _visible(self, tokens: list[TokenLogprob]) -> list[TokenLogprob]:
        """Tokens with only the alternatives the client asked for (a strategy may see more)."""
        top = self.sampling.top_logprobs
        if all(len(t.top) <= top for t in tokens):
            return tokens
        return [replace(t, top=t.top[:top]) for t in tokens]

    def _end(self, candidate: Candidate, finish_reason: str | None, at_checkpoint: bool) -> None:
        if candidate.status is not CandidateStatus.RUNNING:
            return  # pruned while the engine was still sending its last tokens
        if finish_reason == "abort":  # whetstone marks what it aborts pruned first: this was the engine
            raise EngineError(f"the engine aborted candidate {candidate.index} on its own")
        if finish_reason == "length" and at_checkpoint and candidate.num_tokens < candidate.max_tokens:
            candidate.pause()
        else:
            candidate.finish(finish_reason)
        self._status_changed(candidate)

    @property
    def budget_spent(self) -> bool:
        """True once the candidates have generated the request's whole token budget."""
        return self.budget is not None and self.spent >= self.budget

    async def _stop_for_budget(self) -> None:
        """Truncate what still runs, and paused candidates nothing continues; abort them in the engine."""
        continued = {(c.parent, c.prefix_tokens) for c in self.candidates if c.parent is not None}
        running = [c for c in self.candidates if c.status is CandidateStatus.RUNNING]
        paused = [
            c for c in self.candidates
            if c.status is CandidateStatus.PAUSED and (c.index, c.num_tokens) not in continued
        ]
        if not running and not paused:
            return
        self.strategy.stop("budget")
        for candidate in running + paused:
            candidate.finish("length")
            self._status_changed(candidate)
        if running:
            await self.engine.abort([self.engine_id(c) for c in running])

    async def _abort(self, candidates: list[Candidate]) -> None:
        """Mark running candidates pruned and abort them in the engine; their streams then end."""
        running = [c for c in candidates if c.status is CandidateStatus.RUNNING]
        for candidate in running:
            candidate.prune()
            self._status_changed(candidate)
        if running:
            await self.engine.abort([self.engine_id(c) for c in running])

    def cut_extras(self, most: int, reason: str) -> int:
        """Stop up to `most` running extras, newest first, for the load policy; how many were cut."""
        running = [c for c in reversed(self.candidates) if c.status is CandidateStatus.RUNNING]
        cut = [c for c in running if c is not self.primary][:most]
        for candidate in cut:
            candidate.prune()
            self.cut.add(candidate.index)
            self._release(candidate)
            self._status_changed(candidate)
        if cut:
            self.strategy.stop(reason)
            self.metrics.cut_candidates.labels(reason).inc(len(cut))
            task = asyncio.ensure_future(self.engine.abort([self.engine_id(c) for c in cut]))
            task.add_done_callback(quietly)
            self._aborts.add(task)
            task.add_done_callback(self._aborts.discard)
        return len(cut)

    def _primary_ended(self) -> None:
        """Under `spare`, the extras get a deadline: a fraction of the primary's time from now."""
        if self.ticket is None or not self.ticket.spare or self._deadline is not None:
            return
        loop = asyncio.get_running_loop()
        grace = self.ticket.governor.policy.grace(loop.time() - self._started)
        self._deadline = loop.call_later(grace, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self.cut_extras(len(self.candidates), "deadline")

    def _status_changed(self, candidate: Candidate) -> None:
        """The one place a candidate's new status is observed (metrics; live listeners)."""
        self.metrics.candidates.labels(candidate.status.value).inc()
        if candidate is self.primary:
            self._primary_ended()
        self._tell(candidate)

    def _tell(self, candidate: Candidate, text: str = "", tokens: Sequence[TokenLogprob] = ()) -> None:
        """Hand the listener (if any) a candidate's new text or changed status."""
        if self.on_update is not None:
            bound = self.strategy.bound(candidate)
            self.on_update(RaceEvent(candidate, text, tokens, bound, self.strategy.cutoff()))


def quietly(task: asyncio.Task[None]) -> None:
    """Take note of a finished task's exception so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
