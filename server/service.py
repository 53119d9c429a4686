"""Running jobs: admitted against the limits, candidates raced on the engine, the choices selected."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from server.adapter_registry import AdapterRegistry
from server.admission import Admission
from server.config import Settings
from server.engines import Engine
from server.engines.base import ReportsLoad
from server.errors import EngineUnavailable
from server.jobs import GenerationJob, SharpenedResult
from server.load import LoadGovernor, LoadPolicy
from server.metrics import Metrics
from server.race import CandidateRace, UpdateListener
from server.sharpening import Candidate, build_strategy, candidate_score, rank
from server.tools import tool_reply
from server.trace_recorder import TraceWriter, trace_record
from server.tracing import RequestTracer


class SharpeningService:
    """Runs generation jobs (requests/prepare.py makes them) against the engine, one request at a time
    admitted against the server's limits, and says what is served."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        metrics: Metrics,
        traces: TraceWriter | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.traces = traces
        self.tracer = tracer
        self.adapters = AdapterRegistry(engine, settings)
        self.admission = Admission(settings.max_inflight_requests, settings.max_inflight_candidates)
        reported = engine.busy_sequences if isinstance(engine, ReportsLoad) else None
        self.governor = LoadGovernor(LoadPolicy(settings.load_capacity, settings.load_deadline), reported)
        metrics.watch_load(self.governor.busy)

    # -- what is served ------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The base model's served name."""
        return self.engine.model_name

    @property
    def max_model_len(self) -> int:
        """The context length, prompt and completion together."""
        return self.engine.max_model_len

    def served_models(self) -> list[tuple[str, str | None]]:
        """Each served model id with its parent: the base model (None), then each LoRA adapter."""
        return [(self.model_name, None), *((name, self.model_name) for name in self.adapters)]

    def served_name(self, job: GenerationJob) -> str:
        """The model id a response names: the job's adapter, else the base model."""
        return job.sampling.adapter or self.model_name

    # -- running jobs ---------------------------------------------------------------------

    def check_ready(self, *jobs: GenerationJob) -> None:
        """503 if the engine is down, 429 if the jobs (one request) would not be admitted now."""
        if not self.engine.is_healthy():
            raise EngineUnavailable("the engine is not serving; retry once /health is 200")
        self.admission.check(sum(job.admitted_candidates for job in jobs))

    async def run_all(
        self,
        jobs: Sequence[GenerationJob],
        request_id: str,
        listeners: Sequence[UpdateListener | None] | None = None,
    ) -> list[SharpenedResult]:
        """Run the jobs of one request (a legacy request's prompts) side by side, admitted together:
        draw each job's candidates and pick its choices.

        Job i reports every candidate's new text and status changes (race.RaceEvent) to
        `listeners[i]`; when one job fails the others stop.
        """
        self.check_ready(*jobs)
        listeners = listeners or [None] * len(jobs)
        if self.tracer is None:
            return await self._run_admitted(jobs, request_id, listeners)
        with self.tracer.request(request_id, jobs, self.served_name(jobs[0])) as trace:
            results = await self._run_admitted(jobs, request_id, trace.listeners(listeners))
            trace.finished(results)
            return results

    async def _run_admitted(
        self, jobs: Sequence[GenerationJob], request_id: str, listeners: Sequence[UpdateListener | None]
    ) -> list[SharpenedResult]:
        with self.admission.hold(sum(job.admitted_candidates for job in jobs)):
            if len(jobs) == 1:
                return [await self._run_job(jobs[0], request_id, listeners[0])]
            tasks = [
                asyncio.ensure_future(self._run_job(job, f"{request_id}-p{i}", listeners[i]))
                for i, job in enumerate(jobs)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            finally:
                for task in tasks:  # a no-op for finished tasks; stops siblings after a failure
                    task.cancel()

    async def _run_job(
        self, job: GenerationJob, request_id: str, on_update: UpdateListener | None
    ) -> SharpenedResult:
        """Score the prompt when asked, then draw the candidates (none for max_tokens 0)."""
        prompt_tokens = None
        if job.score_prompt is not None:
            prompt_tokens = await self.engine.score_prompt(
                job.prompt_token_ids, job.score_prompt, f"{request_id}-prompt"
            )
        if job.sampling.max_tokens == 0:
            result = SharpenedResult(job, [], [])
        else:
            result = await self._run(job, request_id, on_update)
        result.prompt_tokens = prompt_tokens
        if self.traces is not None and result.selected is not None and job.sharpening.strategy != "none":
            self.traces.record(trace_record(job, result, self.served_name(job), request_id))
        return result

    async def _run(
        self, job: GenerationJob, request_id: str, on_update: UpdateListener | None
    ) -> SharpenedResult:
        config = job.sharpening
        strategy = build_strategy(
            config, job.sampling.max_tokens, job.choices, random.Random(job.sampling.seed),
            from_model=job.sampling.draws_from_model and not config.greedy_candidate,
        )
        race = CandidateRace(
            self.engine, job.prompt_token_ids, job.sampling, request_id, self.metrics, on_update,
            budget=config.max_total_tokens, governor=self.governor, load_mode=config.load,
        )
        candidates = await race.run(strategy)
        self.metrics.load_requests.labels(config.load, load_extent(config.candidate_count, race)).inc()
        selected = await asyncio.to_thread(strategy.select, candidates)  # majority runs regexes
        if selected is None:
            raise EngineUnavailable("no candidate completed")
        ranked = rank(candidates, config.length_penalty, config.tie_tolerance)
        choices = top_choices(selected, ranked, job.choices)
        scores = {c.index: candidate_score(c, config.length_penalty) for c in candidates}
        self.metrics.selected_score.observe(scores[selected.index])
        if strategy.stopped_by is not None:
            self.metrics.stopped_early.labels(strategy.stopped_by).inc()
        replies = None
        if (plan := job.tools) is not None:
            parse = self.engine.parse_tool_calls
            replies = [tool_reply(plan, c.text, c.finish_reason, parse) for c in choices]
        return SharpenedResult(
            job, candidates, choices, scores, strategy.spend, replies=replies,
            stopped_by=strategy.stopped_by, cut=len(race.cut),
        )


def load_extent(asked: int, race: CandidateRace) -> str:
    """How far load let a job sharpen: full, reduced (candidates refused or cut) or primary_only."""
    ran = len(race.candidates) - len(race.cut)
    if ran >= asked:
        return "full"
    return "primary_only" if ran <= 1 else "reduced"


def top_choices(selected: Candidate, ranked: Sequence[Candidate], count: int) -> list[Candidate]:
    """The selected candidate first, then the best-ranked other candidates, `count` in all."""
    others = [c for c in ranked if c is not selected]
    return [selected, *others[: count - 1]]
