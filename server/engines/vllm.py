"""The in-process vLLM engine (AsyncLLM): the only module that imports vllm."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from server.engines.base import (
    CandidateUpdate,
    EngineError,
    EngineInputError,
    OutputConstraint,
    ParsedToolCalls,
    SamplingSpec,
)
from server.engines.tokenizer import Tokenizer
from server.sharpening import TokenLogprob

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """Arguments for building a vLLM engine."""

    model: str
    served_model_name: str
    dtype: str = "auto"
    enforce_eager: bool = False
    max_model_len: int | None = None
    kv_cache_gib: float | None = None
    memory_fraction: float = 0.9
    seed: int = 0
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None
    tool_call_parser: str | None = None
    chat_template: str | None = None  # Jinja text replacing the model's own template
    extra: dict[str, Any] = field(default_factory=dict)
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> LoRA adapter directory
    max_lora_rank: int = 8
    adapter_slots: int = 0  # adapters that can be loaded while serving, beside `adapters`


class VllmEngine:
    """The real engine: vLLM's AsyncLLM, one engine request per candidate."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.model_name = options.served_model_name
        self.max_model_len = 0
        self._llm: Any = None
        self._tokenizer: Any = None
        self._streaming: set[asyncio.Task[Any]] = set()  # tasks reading an engine request now
        self._failed: set[asyncio.Task[Any]] = set()  # of those, the ones told the engine is gone
        self._loras: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}  # adapters loaded while serving (kept across restarts)
        self._next_lora_id = len(options.adapters) + 1  # never reused: vLLM caches weights by id
        self._tool_parser: Any = None

    async def start(self) -> None:
        """Build the AsyncLLM (loads weights, allocates the KV cache)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        opts = self.options
        if opts.tool_call_parser:
            self._tool_parser = tool_parser_class(opts.tool_call_parser)
        kwargs: dict[str, Any] = {
            "model": opts.model,
            "served_model_name": opts.served_model_name,
            "dtype": opts.dtype,
            "enforce_eager": opts.enforce_eager,
            "max_model_len": opts.max_model_len,
            "gpu_memory_utilization": opts.memory_fraction,
            "seed": opts.seed,
            "tensor_parallel_size": opts.tensor_parallel_size,
            "pipeline_parallel_size": opts.pipeline_parallel_size,
            "distributed_executor_backend": opts.distributed_executor_backend,
            "enable_prefix_caching": True,
            "logprobs_mode": "raw_logprobs",  # scores are the raw model log-likelihood
        }
        if opts.kv_cache_gib:
            kwargs["kv_cache_memory_bytes"] = int(opts.kv_cache_gib * 1024**3)
        if opts.adapters or opts.adapter_slots:
            kwargs.update(enable_lora=True, max_loras=len(opts.adapters) + opts.adapter_slots,
                          max_lora_rank=opts.max_lora_rank)
            self._loras = lora_requests(opts.adapters) | self._loaded
        kwargs.update(opts.extra)
        # building the engine blocks for tens of seconds: keep the event loop serving meanwhile
        # (a restart happens while the server answers /health and 503s)
        args = await asyncio.to_thread(for_cpu, AsyncEngineArgs(**kwargs), set(opts.extra))
        if use_every_core(args.tensor_parallel_size * args.pipeline_parallel_size):
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        self._llm = await asyncio.to_thread(AsyncLLM.from_engine_args, args)
        self._tokenizer = Tokenizer(self._llm.get_tokenizer())
        self.max_model_len = int(self._llm.model_config.max_model_len)
        logger.info("engine ready: %s (max_model_len %d)", opts.model, self.max_model_len)

    async def shutdown(self) -> None:
        """Stop the engine core process and reap it (a dead engine's processes must not linger).

        Candidate streams still waiting on this engine fail with EngineError: when the engine
        core dies while a request is being added, vLLM can leave that request waiting for ever.
        """
        for task in self._streaming:
            self._failed.add(task)
            task.cancel()
        if self._llm is not None:
            llm, self._llm = self._llm, None
            await asyncio.to_thread(llm.shutdown)
            del llm
            multiprocessing.active_children()  # joins exited children: no zombie engine cores
            gc.collect()

    def is_healthy(self) -> bool:
        """True while the engine core is alive."""
        return self._llm is not None and not self._llm.errored

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Apply the chat template (the configured one, else the model's) and tokenize, off the loop."""
        return await self._tokenizer.encode_chat(
            messages, add_generation_prompt, tools, self.options.chat_template
        )

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Tokenize a plain prompt (special prefix tokens unless told not to), off the event loop."""
        return await self._tokenizer.encode(text, add_special_tokens)

    async def decode(self, token_ids: Sequence[int]) -> str:
        """Detokenize, special tokens included (as vLLM's /detokenize does), off the event loop."""
        return await self._tokenizer.decode(token_ids)

    async def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        """The vocabulary strings of some token ids, off the event loop."""
        return await self._tokenizer.token_strings(token_ids)

    async def score_prompt(
        self, prompt_token_ids: list[int], top_logprobs: int, request_id: str
    ) -> list[TokenLogprob | None]:
        """vLLM's prompt_logprobs on a one-token request: raw, since prompt tokens skip sampling."""
        from vllm.inputs.engine import tokens_input
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        params = SamplingParams(
            max_tokens=1,
            temperature=0.0,
            prompt_logprobs=top_logprobs,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        prompt = tokens_input(prompt_token_ids)
        steps: list[Any] = []
        with self._engine_request():
            async for output in self._llm.generate(prompt, params, request_id):
                steps = list(output.prompt_logprobs or [])
        if len(steps) != len(prompt_token_ids):
            raise EngineError(f"the engine scored {len(steps)} of {len(prompt_token_ids)} prompt tokens")
        return [
            None if step is None else token_logprob(step, token, top_logprobs)
            for token, step in zip(prompt_token_ids, steps, strict=True)
        ]

    async def check_sampling(self, sampling: SamplingSpec) -> None:
        """Run vLLM's own request checks now (in a worker thread: grammars take time to build),
        so a bad grammar is a 400 before any streaming."""
        await asyncio.to_thread(self._verify, sampling)

    def _verify(self, sampling: SamplingSpec) -> None:
        from vllm.exceptions import VLLMValidationError

        llm = self._llm
        if llm is None:
            raise EngineError("the engine is not running")
        if sampling.constraint is not None:
            alone = SamplingSpec(max_tokens=1, constraint=sampling.constraint)
            config = llm.vllm_config.structured_outputs_config
            try:
                to_vllm(alone).verify(llm.model_config, None, config, self._tokenizer.raw)
            except (VLLMValidationError, ValueError) as exc:
                raise EngineInputError(str(exc), field="constraint") from exc
        try:
            unconstrained = to_vllm(replace(sampling, constraint=None))
            unconstrained.verify(llm.model_config, None, None, self._tokenizer.raw)
        except (VLLMValidationError, ValueError) as exc:
            raise EngineInputError(str(exc), field=getattr(exc, "parameter", None)) from exc

    def parse_tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedToolCalls:
        """Tool calls in free text, by the vLLM tool-call parser named at start-up."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        if self._tool_parser is None:
            raise EngineInputError("no tool-call parser is configured")
        request = ChatCompletionRequest.model_validate(
            {"messages": [{"role": "user", "content": ""}], "tools": list(tools), "tool_choice": "auto"}
        )
        parser = self._tool_parser(self._tokenizer.raw, request.tools)
        found = parser.extract_tool_calls(text, request)
        if not found.tools_called:
            return ParsedToolCalls(content=text, calls=[])
        calls = [(call.function.name, call.function.arguments) for call in found.tool_calls]
        return ParsedToolCalls(content=found.content, calls=calls)


    async def load_adapter(self, name: str, path: str) -> None:
        """Load a LoRA adapter into the running engine (one of the --adapter-slots)."""
        from vllm.lora.request import LoRARequest

        if len(self._loaded) >= self.options.adapter_slots:
            raise EngineInputError(
                f"all {self.options.adapter_slots} adapter slots are in use; unload one first, or start "
                "the server with more --adapter-slots"
            )
        request = LoRARequest(lora_name=name, lora_int_id=self._next_lora_id, lora_path=path)
        self._next_lora_id += 1
        try:
            await self._llm.add_lora(request)
        except (ValueError, RuntimeError) as exc:  # vLLM refuses e.g. a rank above max_lora_rank
            raise EngineInputError(f"the engine could not load adapter {name!r}: {exc}") from exc
        self._loaded[name] = self._loras[name] = request

    async def unload_adapter(self, name: str) -> None:
        """Remove an adapter loaded while serving; requests already running with it finish first."""
        request = self._loaded.pop(name, None)
        if request is None:
            raise EngineInputError(f"{name!r} was not loaded at run time; only those can be unloaded")
        del self._loras[name]
        await self._llm.remove_lora(request.lora_int_id)

    async def stream_candidate(
        self, prompt_token_ids: list[int], sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[CandidateUpdate]:
        """Generate one candidate; log-probabilities are raw (vLLM's `raw_logprobs` mode).

        The prompt goes in already rendered (token ids): vLLM then adds the request at once, where
        a raw prompt would take a trip through a worker thread per candidate.
        """
        from vllm.inputs.engine import tokens_input

        params = to_vllm(sampling)
        prompt = tokens_input(prompt_token_ids)
        lora = self._loras.get(sampling.adapter) if sampling.adapter else None
        if sampling.adapter and lora is None:
            raise EngineInputError(f"no LoRA adapter named {sampling.adapter!r} is loaded")
        first = True
        with self._engine_request():
            async for output in self._llm.generate(prompt, params, request_id, lora_request=lora):
                completion = output.outputs[0]
                steps = zip(completion.token_ids, completion.logprobs or [], strict=True)
                tokens = [token_logprob(step, token, sampling.top_logprobs) for token, step in steps]
                yield CandidateUpdate(
                    token_ids=list(completion.token_ids),
                    logprobs=[t.logprob for t in tokens],
                    text=completion.text,
                    tokens=tokens,
                    finish_reason=completion.finish_reason,
                    finished=output.finished,
                    cached_prompt_tokens=(output.num_cached_tokens or 0) if first else 0,
                )
                first = False

    @contextmanager
    def _engine_request(self) -> Iterator[None]:
        """Around one engine request read by the current task: vLLM's client errors become
        EngineInputError, its server errors EngineError, and a request still waiting when the
        engine shuts down fails with EngineError (vLLM can leave a request that was being added
        when the core died waiting for ever).
        """
        from vllm.exceptions import VLLMClientError, VLLMServerError

        if self._llm is None:
            raise EngineError("the engine is not running")
        task = asyncio.current_task()
        assert task is not None
        self._streaming.add(task)
        try:
            yield
        except VLLMClientError as exc:
            raise EngineInputError(str(exc)) from exc
        except VLLMServerError as exc:
            raise EngineError(str(exc) or type(exc).__name__) from exc
        except asyncio.CancelledError:
            if task not in self._failed:
                raise  # the request was cancelled (its client went away)
            task.uncancel()
            raise EngineError("the engine stopped while this request was running") from None
        finally:
            self._streaming.discard(task)
            self._failed.discard(task)

    async def abort(self, request_ids: Sequence[str]) -> None:
        """Abort candidates in the engine (frees their KV cache at once)."""
        if self._llm is not None and request_ids:
            await self._llm.abort(list(request_ids))


def lora_requests(adapters: dict[str, str]) -> dict[str, Any]:
    """One vLLM LoRARequest per served adapter name (ids from 1, as vLLM requires)."""
    from vllm.lora.request import LoRARequest

    return {
        name: LoRARequest(lora_name=name, lora_int_id=number, lora_path=path)
        for number, (name, path) in enumerate(adapters.items(), 1)
    }


def to_vllm(sampling: SamplingSpec) -> Any:
    """vLLM SamplingParams for one candidate (streamed as deltas, sampled token's logprob always)."""
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    return SamplingParams(
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k or -1,
        seed=sampling.seed,
        stop=list(sampling.stop) or None,
        stop_token_ids=list(sampling.stop_token_ids) or None,
        ignore_eos=sampling.ignore_eos,
        skip_special_tokens=sampling.skip_special_tokens,
        min_tokens=sampling.min_tokens,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        repetition_penalty=sampling.repetition_penalty,
        logit_bias=dict(sampling.logit_bias) or None,
        logprobs=sampling.top_logprobs,
        structured_outputs=structured_outputs(sampling.constraint),
        output_kind=RequestOutputKind.DELTA,
    )


def structured_outputs(constraint: OutputConstraint | None) -> Any:
    """vLLM's StructuredOutputsParams for a constraint (None when there is none)."""
    from vllm.sampling_params import StructuredOutputsParams

    if constraint is None:
        return None
    if constraint.kind == "json_object":
        return StructuredOutputsParams(json_object=True)
    return StructuredOutputsParams(**{constraint.kind: constraint.spec})


def tool_parser_class(name: str) -> Any:
    """vLLM's tool-call parser class registered under `name`; ValueError listing them otherwise."""
    from vllm.tool_parsers import ToolParserManager

    try:
        return ToolParserManager.get_tool_parser(name)
    except KeyError:
        known = ", ".join(sorted(ToolParserManager.list_registered()))
        raise ValueError(f"unknown tool-call parser {name!r}; vLLM has: {known}") from None


def token_logprob(step: dict[int, Any], token: int, top: int) -> TokenLogprob:
    """Our view of vLLM's per-position logprob dict: the sampled token and the top `top`."""
    sampled = step[token]
    alternatives: tuple[tuple[str, float], ...] = ()
    if top:
        ranked = sorted(step.values(), key=lambda lp: lp.rank or 0)[:top]
        alternatives = tuple((lp.decoded_token or "", lp.logprob) for lp in ranked)
    return TokenLogprob(sampled.decoded_token or "", sampled.logprob, alternatives)


CPU_BLOCK_TOKENS = 32
SMALL_MACHINE_CPUS = 4


def use_every_core(workers: int) -> bool:
    """True when the model should compute on every core: one worker on a small CPU machine.

    vLLM reserves a core per worker for a separate scheduler process. With a single worker the
    scheduler runs in the worker's own thread, so on a machine of a few cores that reserved core
    would mostly idle beside whetstone's HTTP frontend (under a tenth of a core at concurrency 8,
    measured). On 2 cores, using it raised best-of-8 throughput by a quarter.
    VLLM_CPU_NUM_OF_RESERVED_CPU still decides when it is set.
    """
    from vllm.platforms import current_platform

    return current_platform.is_cpu() and workers == 1 and len(os.sched_getaffinity(0)) <= SMALL_MACHINE_CPUS


def for_cpu(args: Any, chosen: set[str]) -> Any:
    """The engine arguments with two CPU-specific changes, each unless the user chose that argument.

    Whole-prompt prefills: vLLM rewinds a seeded request's random generator after a partial
    prefill, and CPU generators cannot rewind: the engine dies ("CPU Generator does not use
    offset"). Every candidate carries a seed when the request has one, so this is easy to hit.

    32-token KV blocks: the prefix cache shares whole blocks only, and vLLM's CPU default block
    of 128 tokens means a prompt shorter than that is prefilled again by every candidate.
    With 32 (the CPU kernels want multiples of 32) siblings recompute only the last partial block.
    """
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return args
    changes: dict[str, Any] = {}
    if not {"enable_chunked_prefill", "max_num_batched_tokens"} & chosen:
        max_model_len = args.create_engine_config().model_config.max_model_len
        changes.update(enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 2048))
    if "block_size" not in chosen:
        changes["block_size"] = CPU_BLOCK_TOKENS
    return replace(args, **changes)
