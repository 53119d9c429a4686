"""Request -> candidates -> prune/select -> result: the orchestration behind the routes."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from server.admission import Admission
from server.config import Settings
from server.engines import Engine, EngineError, EngineInputError, SamplingSpec
from server.errors import EngineUnavailable, InvalidRequest, ModelNotFound
from server.metrics import Metrics
from server.openai_fields import CHAT_FIELDS, COMPLETION_FIELDS, refuse_unsupported
from server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingFields,
    SharpeningParams,
)
from server.race import CandidateRace, UpdateListener
from server.sharpening import (
    Candidate,
    CandidateStatus,
    Pruner,
    SharpeningConfig,
    build_strategy,
    candidate_score,
    rank,
)
from server.structured import RequestedConstraint, output_constraint, token_biases
from server.tools import Reply, ToolPlan, tool_plan, tool_reply


@dataclass(frozen=True)
class GenerationJob:
    """One request, tokenized and validated: what to generate and how to choose."""

    prompt_token_ids: list[int]
    sampling: SamplingSpec
    sharpening: SharpeningConfig
    choices: int = 1
    logprobs: bool = False
    tools: ToolPlan | None = None


@dataclass
class SharpenedResult:
    """The outcome of a job: every candidate drawn and the chosen ones, best first."""

    job: GenerationJob
    candidates: list[Candidate]
    choices: list[Candidate]
    scores: dict[int, float] = field(default_factory=dict)
    replies: list[Reply] | None = None  # per choice, when the request uses tools

    @property
    def selected(self) -> Candidate:
        """The candidate returned as the first choice."""
        return self.choices[0]

    @property
    def generated_tokens(self) -> int:
        """Every token generated for this request, all candidates included."""
        return sum(c.num_tokens for c in self.candidates)

    def count(self, status: CandidateStatus) -> int:
        """How many candidates ended with `status`."""
        return sum(1 for c in self.candidates if c.status is status)


class SharpeningService:
    """Turns OpenAI requests into generation jobs and runs them against the engine."""

    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.admission = Admission(settings.max_inflight_requests, settings.max_inflight_candidates)

    # -- preparing jobs -------------------------------------------------------------------

    def check_model(self, model: str | None) -> None:
        """404 unless `model` is absent or names the served model."""
        if model is not None and model not in (self.engine.model_name, self.settings.model):
            raise ModelNotFound(
                f"model {model!r} is not served here; use {self.engine.model_name!r}",
                param="model",
                code="model_not_found",
            )

    def resolve_sharpening(
        self, params: SharpeningParams | None, legacy_best_of: int | None = None
    ) -> SharpeningConfig:
        """Fill in server defaults; legacy `best_of` > 1 means best_of_n with length_penalty 1."""
        given = params.model_dump(exclude_none=True) if params else {}
        if legacy_best_of is not None and legacy_best_of > 1:
            given = {"strategy": "best_of_n", "n": legacy_best_of, "length_penalty": 1.0} | given
        config = SharpeningConfig(
            strategy=given.pop("strategy", self.settings.default_strategy),
            n=given.pop("n", self.settings.default_n),
            **given,
        )
        if config.candidate_count > self.settings.max_candidates:
            raise InvalidRequest(
                f"sharpening.n={config.n} is more than this server allows per request "
                f"({self.settings.max_candidates}); ask for fewer candidates",
                param="sharpening.n",
            )
        return config

    async def prepare_chat(self, request: ChatCompletionRequest) -> GenerationJob:
        """Tokenize a chat request and check it against the server's limits."""
        self.check_model(request.model)
        refuse_unsupported(request.model_extra, CHAT_FIELDS)
        tools = tool_plan(request, has_parser=self.settings.tool_call_parser is not None)
        rendered_tools = [t.model_dump(exclude_none=True) for t in request.tools or ()]
        try:
            prompt = await self.engine.encode_chat(chat_messages(request), rendered_tools or None)
        except Exception as exc:  # the model's chat template raises on conversations it refuses
            raise InvalidRequest(
                f"the model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        max_tokens = request.max_completion_tokens or request.max_tokens
        config = self.resolve_sharpening(request.sharpening)
        top = request.top_logprobs or 0
        return await self._job(request, "messages", prompt, max_tokens, config, request.logprobs, top, tools)

    async def prepare_completion(self, request: CompletionRequest) -> GenerationJob:
        """Tokenize a legacy completion request and check it against the server's limits."""
        self.check_model(request.model)
        refuse_unsupported(request.model_extra, COMPLETION_FIELDS)
        if request.echo:
            raise InvalidRequest("echo is not supported; leave it false", param="echo")
        prompt = await self._prompt_tokens(request.prompt)
        config = self.resolve_sharpening(request.sharpening, legacy_best_of=request.best_of)
        wants_logprobs = request.logprobs is not None
        top = request.logprobs or 0
        return await self._job(request, "prompt", prompt, request.max_tokens, config, wants_logprobs, top)

    async def _prompt_tokens(self, prompt: str | list[int] | list[str] | list[list[int]]) -> list[int]:
        if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
            prompt = prompt[0]
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidRequest("prompt is empty", param="prompt")
            return await self.engine.encode(prompt)
        if prompt and all(isinstance(t, int) for t in prompt):
            return [int(t) for t in prompt]  # type: ignore[arg-type]
        raise InvalidRequest(
            "prompt must be one string or one list of token ids; send one prompt per request",
            param="prompt",
        )

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
        sampling = SamplingSpec(
            max_tokens=max_tokens,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=request.top_k or 0,
            seed=config.seed if config.seed is not None else request.seed,
            stop=request.stop_list(),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            top_logprobs=top_logprobs,
            constraint=constrained.constraint if constrained else None,
            logit_bias=token_biases(request.logit_bias),
            min_tokens=request.min_tokens,
            repetition_penalty=request.repetition_penalty,
            stop_token_ids=tuple(request.stop_token_ids or ()),
            ignore_eos=request.ignore_eos,
            skip_special_tokens=tools is None or tools.mode != "auto",
        )
        await self._check_sampling(sampling, constrained)
        return GenerationJob(prompt, sampling, config, choices=request.n, logprobs=logprobs, tools=tools)

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

    def check_ready(self, job: GenerationJob) -> None:
        """503 if the engine is down, 429 if the job would not be admitted now."""
        if not self.engine.is_healthy():
            raise EngineUnavailable("the engine is not serving; retry once /health is 200")
        self.admission.check(job.sharpening.candidate_count)

    async def run(
        self, job: GenerationJob, request_id: str, on_update: UpdateListener | None = None
    ) -> SharpenedResult:
        """Draw the job's candidates (admitted against the limits) and pick the choices.

        `on_update(candidate, new_text, new_tokens)` hears every piece of generated text.
        """
        self.check_ready(job)
        with self.admission.hold(job.sharpening.candidate_count):
            return await self._run(job, request_id, on_update)

    async def _run(
        self, job: GenerationJob, request_id: str, on_update: UpdateListener | None
    ) -> SharpenedResult:
        config = job.sharpening
        base_seed = job.sampling.seed
        strategy = build_strategy(config, random.Random(base_seed))
        pruner = Pruner(config.length_penalty, enabled=strategy.prunes, keep=job.choices)
        race = CandidateRace(
            self.engine, job.prompt_token_ids, request_id, pruner, self.metrics, strategy.accepts, on_update
        )
        candidates: list[Candidate] = []
        while not race.settled and (size := strategy.next_wave(candidates)) > 0:
            wave = [
                Candidate(index=len(candidates) + i, max_tokens=job.sampling.max_tokens) for i in range(size)
            ]
            candidates.extend(wave)
            try:
                await race.draw([(c, candidate_sampling(job.sampling, c.index)) for c in wave])
            except EngineInputError as exc:
                raise InvalidRequest(f"the engine rejected the request: {exc}") from exc
            except EngineError as exc:
                raise EngineUnavailable(f"the engine failed: {exc}") from exc
        selected = await asyncio.to_thread(strategy.select, candidates)  # majority runs regexes
        if selected is None:
            raise EngineUnavailable("no candidate completed (the engine aborted them all)")
        choices = top_choices(selected, rank(candidates, config.length_penalty), job.choices)
        scores = {c.index: candidate_score(c, config.length_penalty) for c in candidates}
        self.metrics.selected_score.observe(scores[selected.index])
        replies = None
        if (plan := job.tools) is not None:
            parse = self.engine.parse_tool_calls
            replies = [tool_reply(plan, c.text, c.finish_reason, parse) for c in choices]
        return SharpenedResult(job, candidates, choices, scores, replies)


def candidate_sampling(sampling: SamplingSpec, index: int) -> SamplingSpec:
    """Candidate i draws with seed + i when a seed is given."""
    if sampling.seed is None:
        return sampling
    return replace(sampling, seed=sampling.seed + index)


def top_choices(selected: Candidate, ranked: Sequence[Candidate], count: int) -> list[Candidate]:
    """The selected candidate first, then the best-ranked other candidates, `count` in all."""
    others = [c for c in ranked if c is not selected]
    return [selected, *others[: count - 1]]


def chat_messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The conversation as plain dicts for the chat template, tool calls and tool results included.

    Tool-call arguments are handed to the template as objects (templates render them as JSON).
    """
    messages = []
    for m in request.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text()}
        if m.name is not None:
            message["name"] = m.name
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        if m.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": c.type,
                 "function": {"name": c.function.name, "arguments": call_arguments(c.function.arguments)}}
                for c in m.tool_calls
            ]
        messages.append(message)
    return messages


def call_arguments(arguments: str) -> Any:
    """A tool call's arguments as an object when they are JSON, else the string as sent."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
