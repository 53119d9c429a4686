"""Request -> candidates -> prune/select -> result: the orchestration behind the routes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from server.adapter_registry import AdapterRegistry
from server.admission import Admission
from server.config import Settings
from server.conversation import chat_messages
from server.engines import Engine, EngineError, EngineInputError, SamplingSpec
from server.engines.base import ReportsLoad
from server.errors import EngineUnavailable, InvalidRequest, ModelNotFound
from server.jobs import CompletionBatch, GenerationJob, LegacyPrompt, SharpenedResult
from server.load import LoadGovernor, LoadPolicy
from server.metrics import Metrics
from server.openai_fields import CHAT_FIELDS, COMPLETION_FIELDS, refuse_unsupported
from server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingFields,
)
from server.race import CandidateRace, UpdateListener
from server.sampling_defaults import candidate_temperature
from server.sharpening import (
    Candidate,
    SharpeningConfig,
    build_strategy,
    candidate_score,
    rank,
)
from server.sharpening.config import MAXIMISING_STRATEGIES, PROPOSAL_STRATEGIES
from server.sharpening_defaults import one_decode_at_temperature_zero, resolve_sharpening
from server.structured import RequestedConstraint, output_constraint, token_biases
from server.tools import ToolPlan, tool_plan, tool_reply
from server.trace_recorder import TraceWriter, trace_record
from server.tracing import RequestTracer


class SharpeningService:
    """Turns OpenAI requests into generation jobs and runs them against the engine."""

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
        self.candidate_temperature = candidate_temperature(settings)
        reported = engine.busy_sequences if isinstance(engine, ReportsLoad) else None
        self.governor = LoadGovernor(LoadPolicy(settings.load_capacity, settings.load_deadline), reported)
        metrics.watch_load(self.governor.busy)

    # -- preparing jobs -------------------------------------------------------------------

    def check_model(self, model: str | None) -> str | None:
        """The LoRA adapter `model` names, None for the base model; 404 for a model not served."""
        if model in self.adapters:
            return model
        if model is not None and model not in (self.engine.model_name, self.settings.model):
            served = ", ".join(repr(m) for m in (self.engine.model_name, *self.adapters))
            raise ModelNotFound(
                f"model {model!r} is not served here; use {served}",
                param="model",
                code="model_not_found",
            )
        return None

    def served_name(self, job: GenerationJob) -> str:
        """The model id a response names: the job's adapter, else the base model."""
        return job.sampling.adapter or self.engine.model_name

    async def prepare_chat(self, request: ChatCompletionRequest) -> GenerationJob:
        """Tokenize a chat request and check it against the server's limits."""
        adapter = self.check_model(request.model)
        refuse_unsupported(request.model_extra, CHAT_FIELDS)
        tools = tool_plan(request, has_parser=self.settings.tool_call_parser is not None)
        rendered_tools = [t.model_dump(exclude_none=True) for t in request.tools or ()]
        messages = chat_messages(request)
        try:
            prompt = await self.engine.encode_chat(messages, tools=rendered_tools or None)
        except EngineError as exc:  # an upstream that cannot tokenize now is not the client's mistake
            raise EngineUnavailable(f"the engine failed: {exc}") from exc
        except Exception as exc:  # the model's chat template raises on conversations it refuses
            raise InvalidRequest(
                f"the model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        max_tokens = request.max_completion_tokens or request.max_tokens
        config = resolve_sharpening(self.settings, request.sharpening, temperature=request.temperature)
        top = request.top_logprobs or 0
        return await self._job(
            request, "messages", prompt, max_tokens, config, request.logprobs, top,
            tools=tools, adapter=adapter, source=messages,
        )

    async def prepare_completion(self, request: CompletionRequest) -> CompletionBatch:
        """Tokenize a legacy completion request, one job per prompt, and check the server's limits."""
        adapter = self.check_model(request.model)
        refuse_unsupported(request.model_extra, COMPLETION_FIELDS)
        if request.max_tokens == 0 and not request.echo:
            raise InvalidRequest(
                "max_tokens 0 generates nothing; it needs echo to score the prompt", param="max_tokens"
            )
        config = resolve_sharpening(
            self.settings,
            request.sharpening, legacy_best_of=request.best_of, temperature=request.temperature
        )
        wants_logprobs = request.logprobs is not None
        top = request.logprobs or 0
        scoring = top if request.echo and wants_logprobs else None
        prompts = []
        for field_name, given in prompt_list(request.prompt):
            if not given:
                raise InvalidRequest("the prompt is empty", param=field_name)
            with engine_errors():
                ids = await self.engine.encode(given) if isinstance(given, str) else given
            job = await self._job(
                request, field_name, ids, request.max_tokens, config, wants_logprobs, top,
                adapter=adapter, source=given,
            )
            job = replace(job, score_prompt=scoring)
            if not request.echo:
                prompts.append(LegacyPrompt(job))
                continue
            text = given if isinstance(given, str) else await self.engine.decode(ids)
            prompts.append(LegacyPrompt(job, text, await self.engine.decode(ids[:1])))
        cost = sum(p.job.engine_requests for p in prompts)
        if cost > self.settings.max_candidates:
            raise InvalidRequest(
                f"{len(prompts)} prompts need {cost} engine requests together, more than this server "
                f"allows per request ({self.settings.max_candidates}); send fewer prompts or candidates",
                param="prompt",
            )
        return CompletionBatch(prompts, echo=request.echo)

    async def _job(
        self,
        request: SamplingFields,
        prompt_field: str,
        prompt: list[int],
        max_tokens: int | None,
        config: SharpeningConfig,
        logprobs: bool = False,
        top_logprobs: int = 0,
        tools: ToolPlan | None = None,
        *,
        adapter: str | None = None,
        source: str | list[Any] | None = None,
    ) -> GenerationJob:
        room = self.engine.max_model_len - len(prompt)
        if room < 1:
            raise InvalidRequest(
                f"the prompt has {len(prompt)} tokens; this model's context is "
                f"{self.engine.max_model_len}. Shorten the prompt",
                param=prompt_field,
                code="context_length_exceeded",
            )
        if max_tokens is None:
            max_tokens = min(self.settings.default_max_tokens, room)
        elif max_tokens > room:
            raise InvalidRequest(
                f"prompt ({len(prompt)} tokens) + max_tokens ({max_tokens}) exceeds the "
                f"context length {self.engine.max_model_len}; lower max_tokens to at most {room}",
                param="max_tokens",
                code="context_length_exceeded",
            )
        constrained = output_constraint(request, tools)
        if request.n > config.candidate_count:
            raise InvalidRequest(
                f"n={request.n} choices need at least that many candidates, but strategy "
                f"{config.strategy!r} draws {config.candidate_count}; raise sharpening.n or lower n",
                param="n",
            )
        if config.strategy in PROPOSAL_STRATEGIES:
            check_proposal_fields(request, config.strategy)
        sampling = SamplingSpec(
            max_tokens=max_tokens,
            temperature=(
                self.default_temperature(config) if request.temperature is None else request.temperature
            ),
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=request.top_k or 0,
            seed=config.seed if config.seed is not None else request.seed,
            stop=request.stop_list(),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            top_logprobs=top_logprobs,
            adapter=adapter,
            constraint=constrained.constraint if constrained else None,
            logit_bias=token_biases(request.logit_bias),
            min_tokens=request.min_tokens,
            repetition_penalty=request.repetition_penalty,
            stop_token_ids=tuple(request.stop_token_ids or ()),
            ignore_eos=request.ignore_eos,
            skip_special_tokens=tools is None or tools.mode != "auto",
        )
        if sampling.max_tokens > 0:  # max_tokens 0 only scores the prompt: nothing is sampled
            await self._check_sampling(sampling, constrained)
        config = one_decode_at_temperature_zero(config, sampling.temperature, request.n)
        return GenerationJob(prompt, sampling, config, request.n, logprobs, source, tools=tools)

    def default_temperature(self, config: SharpeningConfig) -> float:
        """The candidates' temperature when the request sends none (1.0 where a strategy claims pi)."""
        return self.candidate_temperature if config.strategy in MAXIMISING_STRATEGIES else 1.0

    async def _check_sampling(self, sampling: SamplingSpec, constrained: RequestedConstraint | None) -> None:
        """400 naming the field when the engine cannot honour the sampling (e.g. a bad schema)."""
        try:
            await self.engine.check_sampling(sampling)
        except EngineInputError as exc:
            param = constrained.param if constrained and exc.field == "constraint" else exc.field
            raise InvalidRequest(f"{param or 'the request'} is not accepted: {exc}", param=param) from exc
        except EngineError as exc:
            raise EngineUnavailable(f"the engine is not serving: {exc}") from exc

    # -- running jobs ---------------------------------------------------------------------

    def check_ready(self, *jobs: GenerationJob) -> None:
        """503 if the engine is down, 429 if the jobs (one request) would not be admitted now."""
        if not self.engine.is_healthy():
            raise EngineUnavailable("the engine is not serving; retry once /health is 200")
        self.admission.check(sum(job.admitted_candidates for job in jobs))

    async def run(
        self, job: GenerationJob, request_id: str, on_update: UpdateListener | None = None
    ) -> SharpenedResult:
        """Draw the job's candidates (admitted against the limits) and pick the choices.

        `on_update` hears every candidate's new text and status changes (race.RaceEvent).
        """
        return (await self.run_all([job], request_id, [on_update]))[0]

    async def run_all(
        self,
        jobs: Sequence[GenerationJob],
        request_id: str,
        listeners: Sequence[UpdateListener | None] | None = None,
    ) -> list[SharpenedResult]:
        """Run the jobs of one request (a legacy request's prompts) side by side, admitted together.

        Job i reports its generated text to `listeners[i]`; when one job fails the others stop.
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
            with engine_errors():
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
        with engine_errors():
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


def check_proposal_fields(request: SamplingFields, strategy: str) -> None:
    """smc and mcmc sample the unmodified model at temperature 1/alpha: no other sampling fields."""
    changed = {
        "temperature": request.temperature is not None,
        "top_p": request.top_p not in (None, 1.0),
        "top_k": request.top_k not in (None, 0, -1),
        "presence_penalty": request.presence_penalty != 0.0,
        "frequency_penalty": request.frequency_penalty != 0.0,
    }
    for name, given in changed.items():
        if given:
            raise InvalidRequest(
                f"strategy {strategy!r} draws from the model itself at temperature 1/alpha "
                f"(its proposal); leave {name} unset",
                param=name,
            )


@contextmanager
def engine_errors() -> Iterator[None]:
    """The engine rejecting input is the client's 400; the engine failing is a 503."""
    try:
        yield
    except EngineInputError as exc:
        raise InvalidRequest(f"the engine rejected the request: {exc}") from exc
    except EngineError as exc:
        raise EngineUnavailable(f"the engine failed: {exc}") from exc


def prompt_list(prompt: str | list[int] | list[str] | list[list[int]]) -> list[tuple[str, str | list[int]]]:
    """The prompts of a legacy `prompt` field, each with the parameter name its errors carry."""
    if isinstance(prompt, str):
        return [("prompt", prompt)]
    if not prompt:
        raise InvalidRequest("prompt is an empty list; send at least one prompt", param="prompt")
    if all(isinstance(t, int) for t in prompt):
        return [("prompt", [int(t) for t in prompt])]  # type: ignore[arg-type]
    return [(f"prompt.{i}", p) for i, p in enumerate(prompt)]  # type: ignore[misc]



def top_choices(selected: Candidate, ranked: Sequence[Candidate], count: int) -> list[Candidate]:
    """The selected candidate first, then the best-ranked other candidates, `count` in all."""
    others = [c for c in ranked if c is not selected]
    return [selected, *others[: count - 1]]
