"""A scripted stand-in for the vLLM engine, for unit and route tests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.engines import CandidateUpdate, EngineError, EngineInputError, ParsedToolCalls, SamplingSpec
from server.sharpening import TokenLogprob

EOS = 2


@dataclass
class Script:
    """What one fake candidate generates: its tokens' log-probabilities and whether it stops."""

    logprobs: list[float]
    stops: bool = True
    words: tuple[str, ...] = ()  # the text of token i is words[i], else "t<i> "


@dataclass
class FakeEngine:
    """Generates scripted candidates; candidate i of any request follows `scripts[i % len]`.

    Tokens are `10 + position`; a stopping script ends with EOS (its last log-probability).
    Each update carries one token and yields to the event loop, so siblings interleave and
    aborts take effect the way they do in vLLM (the stream ends with finish_reason 'abort'),
    after `abort_lag` more tokens (the engine steps already under way when an abort arrives).
    A prompt seen before is served from a pretend prefix cache, all but its last token.
    A constrained candidate's first token carries `constrained_texts[i % len]` as its text;
    `check_sampling` refuses a constraint that is not valid JSON schema / Python regex.
    """

    scripts: list[Script] = field(default_factory=lambda: [Script([-0.5, -0.5, -0.1])])
    model_name: str = "fake-model"
    max_model_len: int = 512
    step_seconds: float = 0.0
    healthy: bool = True
    fail_with: Exception | None = None
    self_aborted_candidates: set[int] = field(default_factory=set)  # the engine stops these by itself
    abort_lag: int = 0
    started: bool = False
    requests: list[tuple[str, SamplingSpec]] = field(default_factory=list)
    aborted: set[str] = field(default_factory=set)
    generated: dict[str, int] = field(default_factory=dict)
    generated_before_abort: dict[str, int] = field(default_factory=dict)
    cached_prompts: set[tuple[int, ...]] = field(default_factory=set)
    scored: list[tuple[str, list[int]]] = field(default_factory=list)
    constrained_texts: list[str] = field(default_factory=lambda: ['{"answer": 1}'])
    chats: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = field(default_factory=list)
    loaded_adapters: dict[str, str] = field(default_factory=dict)  # name -> path, loaded while serving

    async def start(self) -> None:
        self.started = True

    async def shutdown(self) -> None:
        self.started = False

    def is_healthy(self) -> bool:
        return self.healthy

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        self.chats.append((list(messages), list(tools) if tools else None))
        ids = [1] + [len(m["content"]) % 50 + 100 for m in messages]
        return ids if add_generation_prompt else ids[:-1]  # the last id stands for the generation prompt

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [1] * add_special_tokens + [ord(ch) % 50 + 100 for ch in text]

    async def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(await self.token_strings(token_ids))

    async def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        return [f"<{t}>" for t in token_ids]

    async def score_prompt(
        self, prompt_token_ids: list[int], top_logprobs: int, request_id: str
    ) -> list[TokenLogprob | None]:
        """Prompt token i (i >= 1) scores -i/10; the alternative 'alt' scores 0.1 less."""
        self.scored.append((request_id, list(prompt_token_ids)))
        await asyncio.sleep(self.step_seconds)
        scores: list[TokenLogprob | None] = [None]
        for i, token in enumerate(prompt_token_ids[1:], start=1):
            text, logprob = f"<{token}>", -i / 10
            top = ((text, logprob), ("alt", logprob - 0.1))[:top_logprobs]
            scores.append(TokenLogprob(text, logprob, top))
        return scores

    async def check_sampling(self, sampling: SamplingSpec) -> None:
        if sampling.max_tokens < 1:  # like vLLM's SamplingParams
            raise EngineInputError(f"max_tokens must be at least 1, got {sampling.max_tokens}", "max_tokens")
        constraint = sampling.constraint
        if constraint is None:
            return
        if constraint.kind == "json" and not isinstance(constraint.spec, dict):
            raise EngineInputError("the schema is not a JSON object", field="constraint")
        if constraint.kind == "regex":
            try:
                re.compile(constraint.spec)
            except re.error as exc:
                raise EngineInputError(f"bad regex: {exc}", field="constraint") from exc

    async def load_adapter(self, name: str, path: str) -> None:
        """Loads any adapter, as long as the one slot of a fake engine is free."""
        if self.loaded_adapters:
            raise EngineInputError("all 1 adapter slots are in use; unload one first")
        self.loaded_adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        del self.loaded_adapters[name]

    def parse_tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedToolCalls:
        """Hermes-style: <tool_call>{"name": ..., "arguments": {...}}</tool_call>."""
        found = [json.loads(m) for m in re.findall(r"<tool_call>(.*?)</tool_call>", text, re.DOTALL)]
        calls = [(c["name"], json.dumps(c["arguments"])) for c in found]
        return ParsedToolCalls(content=text.split("<tool_call>")[0] or None if calls else text, calls=calls)


    async def stream_candidate(
        self, prompt_token_ids: list[int], sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[CandidateUpdate]:
        self.requests.append((request_id, sampling))
        index = int(request_id.rsplit("-", 1)[1])
        script = self.scripts[index % len(self.scripts)]
        self.generated[request_id] = 0
        cached = len(prompt_token_ids) - 1 if tuple(prompt_token_ids) in self.cached_prompts else 0
        self.cached_prompts.add(tuple(prompt_token_ids))
        for position, logprob in enumerate(script.logprobs):
            await asyncio.sleep(self.step_seconds)
            if self.fail_with is not None:
                raise self.fail_with
            late = self.generated[request_id] - self.generated_before_abort.get(request_id, 0)
            stopped = request_id in self.aborted and late >= self.abort_lag
            if stopped or (position and index in self.self_aborted_candidates):
                yield CandidateUpdate(finish_reason="abort", finished=True)
                return
            last = position == len(script.logprobs) - 1
            at_limit = position + 1 >= sampling.max_tokens
            ends = (last and script.stops) or at_limit
            token = EOS if last and script.stops else 10 + position
            self.generated[request_id] += 1
            word = script.words[position] if position < len(script.words) else f"t{position} "
            text = "" if token == EOS else word
            if sampling.constraint is not None:
                text = self.constrained_texts[index % len(self.constrained_texts)] if position == 0 else ""
            top = ((text, logprob), ("alt", logprob - 1.0))[: sampling.top_logprobs]
            yield CandidateUpdate(
                token_ids=[token],
                logprobs=[logprob],
                text=text,
                tokens=[TokenLogprob(text, logprob, top)],
                finish_reason=("stop" if last and script.stops else "length") if ends else None,
                finished=ends,
                cached_prompt_tokens=cached if position == 0 else 0,
            )
            if ends:
                return
        yield CandidateUpdate(finish_reason="length", finished=True)

    async def abort(self, request_ids: Sequence[str]) -> None:
        for request_id in request_ids:
            if request_id not in self.aborted:
                self.generated_before_abort[request_id] = self.generated.get(request_id, 0)
        self.aborted.update(request_ids)


class DeadEngine(FakeEngine):
    """An engine whose core has died."""

    def __init__(self) -> None:
        super().__init__(healthy=False, fail_with=EngineError("engine core died"))
