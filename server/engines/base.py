"""The engine seam: what the service needs from an inference engine, engine-independent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from server.errors import EngineUnavailable, InvalidRequest
from server.sharpening import TokenLogprob

ConstraintKind = Literal["json", "json_object", "regex", "choice", "grammar"]


@dataclass(frozen=True)
class OutputConstraint:
    """The generated text must match this: a JSON schema, any JSON object, a regex, a choice or a grammar."""

    kind: ConstraintKind
    spec: Any = None  # the schema (dict), pattern, list of choices or grammar text; None for json_object


@dataclass(frozen=True)
class SamplingSpec:
    """How one candidate is drawn (the request's own sampling parameters).

    Constraints, biases and penalties change which tokens are drawn; the reported
    log-probabilities stay the engine's raw ones.
    """

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = 0
    adapter: str | None = None  # a LoRA adapter's served name; None = the base model
    constraint: OutputConstraint | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    min_tokens: int = 0
    repetition_penalty: float = 1.0
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    skip_special_tokens: bool = True  # False keeps markers such as <tool_call> in the text for a parser

    @property
    def draws_from_model(self) -> bool:
        """True when candidates are samples of the model itself: temperature 1, nothing filtered or biased."""
        return (
            self.temperature == 1.0
            and self.top_p == 1.0
            and self.top_k in (0, -1)
            and self.presence_penalty == self.frequency_penalty == 0.0
            and self.repetition_penalty == 1.0
            and self.constraint is None
            and not self.logit_bias
            and self.min_tokens == 0
            and not self.ignore_eos
        )


@dataclass
class CandidateUpdate:
    """Newly generated tokens of one candidate, with their raw log-probabilities."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    finished: bool = False
    cached_prompt_tokens: int = 0  # prompt tokens served by the prefix cache (first update only)


class EngineError(EngineUnavailable):
    """The engine failed or is not serving (503)."""


class EngineInputError(InvalidRequest):
    """The engine rejected a request's input: a client mistake (400).

    `field` names the SamplingSpec field at fault when the engine knows it (e.g. "constraint").
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ParsedToolCalls:
    """Tool calls a tool-call parser found in generated text, and the text around them."""

    content: str | None
    calls: list[tuple[str, str]]  # (function name, arguments as a JSON string)


class Engine(Protocol):
    """What the service needs from an inference engine."""

    model_name: str
    max_model_len: int

    async def start(self) -> None:
        """Load the model and start serving."""

    async def shutdown(self) -> None:
        """Stop the engine and release its resources."""

    def is_healthy(self) -> bool:
        """True while the engine can serve requests."""

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Token ids of a chat conversation (tools rendered by the template), ready for the
        assistant's reply unless told otherwise (off the event loop)."""

    async def check_sampling(self, sampling: SamplingSpec) -> None:
        """Raise EngineInputError if the engine cannot honour these sampling parameters."""

    async def load_adapter(self, name: str, path: str) -> None:
        """Start serving the LoRA adapter at `path` as `name` (EngineInputError when it cannot)."""

    async def unload_adapter(self, name: str) -> None:
        """Stop serving the adapter `name`, loaded by load_adapter (EngineInputError when it cannot)."""

    def parse_tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedToolCalls:
        """Tool calls in free generated text, by the configured tool-call parser."""

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a plain-text prompt (off the event loop)."""

    async def decode(self, token_ids: Sequence[int]) -> str:
        """The text of some token ids (off the event loop)."""

    async def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        """Each token id's own vocabulary string, not decoded text (off the event loop)."""

    async def score_prompt(
        self, prompt_token_ids: list[int], top_logprobs: int, request_id: str
    ) -> list[TokenLogprob | None]:
        """Raw log-probability of every prompt token given the ones before it (None for the first)."""

    def stream_candidate(
        self, prompt_token_ids: list[int], sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[CandidateUpdate]:
        """Generate one candidate, yielding new tokens as they come; the last update is final."""

    async def abort(self, request_ids: Sequence[str]) -> None:
        """Stop generating the given candidates at once."""


@dataclass(frozen=True)
class UpstreamStatus:
    """How one upstream server of an engine is doing, for /health and /metrics."""

    url: str
    healthy: bool
    inflight_candidates: int
    failures: int  # times it was taken out or failed a retry, since the start


@runtime_checkable
class ReportsUpstreams(Protocol):
    """An engine that serves through upstream servers and reports on each."""

    def upstream_status(self) -> list[UpstreamStatus]:
        """The state of every configured upstream."""


@runtime_checkable
class ReportsLoad(Protocol):
    """An engine that can say how many sequences it runs or queues for every client (upstream mode)."""

    def busy_sequences(self) -> int:
        """Sequences running or waiting, as of the engine's last look."""
