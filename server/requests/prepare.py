"""Request -> job: a request body checked against the model and the server, tokenized, made a job.

The one way in for every generating endpoint (chat, legacy completions, responses): the rules of
the `sharpening` and sampling fields are in sharpening.py, the output constraint in constraints.py,
the field tables in fields.py; this module applies them and asks the engine what only it knows
(tokens, the context length, whether it can honour the sampling).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from server.adapter_registry import AdapterRegistry
from server.config import Settings
from server.engines import Engine, EngineInputError, SamplingSpec
from server.errors import InvalidRequest, ModelNotFound, ServerError
from server.jobs import CompletionBatch, GenerationJob, LegacyPrompt
from server.requests.constraints import RequestedConstraint, output_constraint, token_biases
from server.requests.conversation import chat_messages
from server.requests.fields import CHAT_FIELDS, COMPLETION_FIELDS, refuse_unsupported
from server.requests.openai import ChatCompletionRequest, CompletionRequest, SamplingFields
from server.requests.responses import ResponsesRequest, renamed
from server.requests.sharpening import (
    candidate_temperature,
    check_against_sampling,
    one_decode_at_temperature_zero,
    resolve_sharpening,
    sampling_temperature,
)
from server.sharpening import SharpeningConfig
from server.tools import ToolPlan, tool_plan


class JobPreparer:
    """Turns request bodies into generation jobs for one engine, under one server's settings."""

    def __init__(self, engine: Engine, settings: Settings, adapters: AdapterRegistry) -> None:
        self.engine = engine
        self.settings = settings
        self.adapters = adapters
        self.candidate_temperature = candidate_temperature(settings)

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

    async def chat(self, request: ChatCompletionRequest) -> GenerationJob:
        """A chat request's job: the conversation rendered by the chat template and tokenized."""
        adapter = self.check_model(request.model)
        refuse_unsupported(request.model_extra, CHAT_FIELDS)
        tools = tool_plan(request, has_parser=self.settings.tool_call_parser is not None)
        rendered_tools = [t.model_dump(exclude_none=True) for t in request.tools or ()]
        messages = chat_messages(request)
        try:
            prompt = await self.engine.encode_chat(messages, tools=rendered_tools or None)
        except ServerError:  # the engine failing (503) or refusing the input (400) says so itself
            raise
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

    async def response(self, request: ResponsesRequest) -> GenerationJob:
        """A Responses request's job: the chat job it amounts to, errors named as the Responses API
        names its fields."""
        for refusal in request.refusals():
            raise refusal
        try:
            return await self.chat(request.as_chat())
        except InvalidRequest as exc:
            raise renamed(exc) from None

    async def completion(self, request: CompletionRequest) -> CompletionBatch:
        """A legacy completion request's jobs, one per prompt, within the server's per-request cap."""
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
        check_against_sampling(config, request)
        sampling = SamplingSpec(
            max_tokens=max_tokens,
            temperature=sampling_temperature(config, request.temperature, self.candidate_temperature),
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

    async def _check_sampling(self, sampling: SamplingSpec, constrained: RequestedConstraint | None) -> None:
        """400 naming the field when the engine cannot honour the sampling (e.g. a bad schema)."""
        try:
            await self.engine.check_sampling(sampling)
        except EngineInputError as exc:
            param = constrained.param if constrained and exc.field == "constraint" else exc.field
            raise InvalidRequest(f"{param or 'the request'} is not accepted: {exc}", param=param) from exc


def prompt_list(prompt: str | list[int] | list[str] | list[list[int]]) -> list[tuple[str, str | list[int]]]:
    """The prompts of a legacy `prompt` field, each with the parameter name its errors carry."""
    if isinstance(prompt, str):
        return [("prompt", prompt)]
    if not prompt:
        raise InvalidRequest("prompt is an empty list; send at least one prompt", param="prompt")
    if all(isinstance(t, int) for t in prompt):
        return [("prompt", [int(t) for t in prompt])]  # type: ignore[arg-type]
    return [(f"prompt.{i}", p) for i, p in enumerate(prompt)]  # type: ignore[misc]
