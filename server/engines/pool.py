"""The upstream engine: whetstone in front of one or more vLLM OpenAI servers, no local model.

All candidates of one request go to one upstream (its prefix cache shares their prompt); a new
request goes to the healthy upstream with the fewest candidates in flight. Upstreams are
health-checked; a failed one is taken out and tried again with growing back-off, and it must
pass the raw log-probability probe again before it serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from server.engines.base import (
    CandidateUpdate,
    EngineError,
    EngineInputError,
    ParsedToolCalls,
    SamplingSpec,
    UpstreamStatus,
)
from server.engines.tokenizer import Tokenizer
from server.engines.upstream import StreamDropped, Upstream, UpstreamRefused, UpstreamUnreachable
from server.sharpening import TokenLogprob

logger = logging.getLogger(__name__)
Answer = TypeVar("Answer")

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
AFFINITY_ENTRIES = 4096  # recent requests remembered, so a request's later waves find its upstream
CONNECT_TIMEOUT_SECONDS = 5.0
UPSTREAM_ADAPTERS = "upstream mode cannot load or unload adapters: the upstream servers load their own"
HEALTH_STRIKES = 2  # failed /health checks in a row that take a serving upstream out (a busy one may be slow)


@dataclass
class Member:
    """One upstream of the pool and what the pool knows about it."""

    upstream: Upstream
    healthy: bool = False
    inflight: int = 0
    failures: int = 0  # in a row: sets the back-off
    failures_total: int = 0
    strikes: int = 0
    retry_at: float = 0.0
    reported: int | None = None  # requests it ran or queued at the last check (its /metrics)

    def status(self) -> UpstreamStatus:
        """A snapshot for /health and /metrics."""
        return UpstreamStatus(self.upstream.url, self.healthy, self.inflight, self.failures_total)


def affinity_key(request_id: str) -> str:
    """The request a candidate belongs to: its engine id without the candidate index."""
    return request_id.rpartition("-")[0] or request_id


class UpstreamPool:
    """An Engine whose candidates are drawn by vLLM OpenAI servers over HTTP."""

    def __init__(
        self,
        urls: Sequence[str],
        served_model_name: str | None = None,
        tokenizer_path: str | None = None,
        health_seconds: float = 5.0,
        stream_interval: int = 1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ValueError("an upstream pool needs at least one upstream URL")
        self.model_name = served_model_name or ""
        self.max_model_len = 0
        self.tokenizer_path = tokenizer_path
        self.tokenizer: Tokenizer | None = None
        self.health_seconds = health_seconds
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_SECONDS)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)
        self.members = [Member(Upstream(url, self.http, stream_interval)) for url in urls]
        self._affinity: OrderedDict[str, Member] = OrderedDict()
        self._active: set[str] = set()
        self._aborted: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._upstream_model = ""

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Admit every reachable upstream (model read, raw log-probabilities verified); need one."""
        if self.tokenizer_path:
            self.tokenizer = await Tokenizer.load(self.tokenizer_path)
        outcomes = await asyncio.gather(*(self._admit(m) for m in self.members), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, UpstreamRefused)]
        if refused:
            logger.error("whetstone cannot start: %s", refused[0])
            raise refused[0]
        if not any(m.healthy for m in self.members):
            reasons = "; ".join(str(o) for o in outcomes if isinstance(o, BaseException))
            raise EngineError(f"no upstream could be reached: {reasons}")
        self._watcher = asyncio.create_task(self._watch())
        up = sum(m.healthy for m in self.members)
        logger.info("upstream mode: %d of %d upstreams serve %s", up, len(self.members), self._upstream_model)

    async def shutdown(self) -> None:
        """Stop health checks and close every connection (which aborts open candidates upstream)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        await self.http.aclose()

    async def _admit(self, member: Member) -> None:
        """Check an upstream from scratch; it serves only when it passes."""
        info = await member.upstream.describe()
        if self._upstream_model and info.name != self._upstream_model:
            raise UpstreamRefused(
                f"upstream {member.upstream.url} serves {info.name!r}, the others {self._upstream_model!r}"
            )
        self._upstream_model = self._upstream_model or info.name
        self.model_name = self.model_name or info.name
        self.max_model_len = min(filter(None, (self.max_model_len, info.max_model_len)), default=0)
        await member.upstream.check_raw_logprobs()
        member.healthy, member.failures, member.strikes = True, 0, 0

    def _fail(self, member: Member, reason: object) -> None:
        """Take an upstream out; the watcher tries it again after a back-off that doubles."""
        if member.healthy:
            logger.warning("upstream %s taken out: %s", member.upstream.url, reason)
        member.healthy = False
        member.failures += 1
        member.failures_total += 1
        backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (member.failures - 1))
        member.retry_at = time.monotonic() + backoff

    async def _watch(self) -> None:
        """Every `health_seconds`: check healthy upstreams, try failed ones whose back-off is over."""
        while True:
            await asyncio.sleep(self.health_seconds)
            await asyncio.gather(*(self._check(m) for m in self.members))

    async def _check(self, member: Member) -> None:
        if member.healthy:
            member.strikes = 0 if await member.upstream.healthy() else member.strikes + 1
            member.reported = await member.upstream.sequences()
            if member.strikes >= HEALTH_STRIKES:
                self._fail(member, f"GET /health failed {member.strikes} times in a row")
            return
        if time.monotonic() < member.retry_at:
            return
        try:
            await self._admit(member)
            logger.info("upstream %s is back", member.upstream.url)
        except UpstreamRefused as exc:
            logger.error("upstream %s refused: %s", member.upstream.url, exc)
            self._fail(member, exc)
        except Exception as exc:  # unreachable, or an answer that makes no sense: try again later
            self._fail(member, exc)

    # -- the Engine interface ------------------------------------------------------------

    def is_healthy(self) -> bool:
        """True while some upstream serves."""
        return any(m.healthy for m in self.members)

    def busy_sequences(self) -> int:
        """Requests the healthy upstreams ran or queued at their last check, all clients' together."""
        return sum(m.reported or 0 for m in self.members if m.healthy)

    def upstream_status(self) -> list[UpstreamStatus]:
        """The state of every configured upstream."""
        return [m.status() for m in self.members]

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Token ids of a conversation: the local tokenizer's, or the upstream's /tokenize."""
        if self.tokenizer is not None:
            return await self.tokenizer.encode_chat(messages, add_generation_prompt, tools)
        return await self._ask(lambda upstream: upstream.encode_chat(messages, add_generation_prompt, tools))

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a plain prompt: the local tokenizer's, or the upstream's /tokenize."""
        if self.tokenizer is not None:
            return await self.tokenizer.encode(text, add_special_tokens)
        return await self._ask(lambda upstream: upstream.encode(text, add_special_tokens))

    async def decode(self, token_ids: Sequence[int]) -> str:
        """The text of some token ids: the local tokenizer's, or the upstream's /detokenize."""
        if self.tokenizer is not None:
            return await self.tokenizer.decode(token_ids)
        return await self._ask(lambda upstream: upstream.decode(token_ids))

    async def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        """Each token id's vocabulary string (needs the local --tokenizer in upstream mode)."""
        return await self._local_tokenizer("token strings").token_strings(token_ids)

    async def check_sampling(self, sampling: SamplingSpec) -> None:
        """Nothing to check here: each upstream validates its candidates' parameters, and its 400
        (a bad schema, say) reaches the client as this server's 400."""

    async def load_adapter(self, name: str, path: str) -> None:
        """Refused: the upstream servers load their own adapters."""
        raise EngineInputError(UPSTREAM_ADAPTERS)

    async def unload_adapter(self, name: str) -> None:
        """Refused: the upstream servers load their own adapters."""
        raise EngineInputError(UPSTREAM_ADAPTERS)

    def parse_tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedToolCalls:
        """Upstream mode runs no tool-call parser (tool_choice auto is refused before generation)."""
        raise EngineInputError("tool_choice auto needs a tool-call parser, which upstream mode does not run")

    async def score_prompt(
        self, prompt_token_ids: list[int], top_logprobs: int, request_id: str
    ) -> list[TokenLogprob | None]:
        """Every prompt token's raw log-probability, from the request's upstream (vLLM's
        `prompt_logprobs`, which the same engine computes as it scores candidates)."""
        return await self._ask(
            lambda upstream: upstream.score_prompt(prompt_token_ids, top_logprobs), affinity_key(request_id)
        )

    async def _ask(self, call: Callable[[Upstream], Awaitable[Answer]], key: str | None = None) -> Answer:
        """`call` on the upstream of `key` (else the least-loaded healthy one); an upstream that
        cannot be reached is taken out."""
        member = self._pick(key)
        try:
            return await call(member.upstream)
        except UpstreamUnreachable as exc:
            self._fail(member, exc)
            raise

    def _local_tokenizer(self, what: str) -> Tokenizer:
        if self.tokenizer is None:
            raise EngineInputError(f"{what} needs a local tokenizer in upstream mode: start with --tokenizer")
        return self.tokenizer

    async def stream_candidate(
        self, prompt_token_ids: list[int], sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[CandidateUpdate]:
        """Stream one candidate from the request's upstream; retried on another one if that upstream
        fails before sending anything for it."""
        key = affinity_key(request_id)
        self._active.add(request_id)
        dropped_before = False
        try:
            attempt = 0
            while True:
                member = self._pick(key)
                member.inflight += 1
                try:
                    stream = member.upstream.stream_candidate(
                        prompt_token_ids, sampling, lambda: request_id in self._aborted
                    )
                    async for update in stream:
                        yield update
                    return
                except UpstreamUnreachable as exc:  # a mid-stream failure is left to the health checks
                    if isinstance(exc, StreamDropped) and not dropped_before:
                        dropped_before = True  # maybe a stale kept-alive connection: send it again once
                        logger.info("candidate %s sent again: its stream closed before any token", request_id)
                        continue
                    self._fail(member, exc)
                    attempt += 1
                    if attempt == len(self.members) or not self.is_healthy():
                        raise
                    logger.info("candidate %s retried on another upstream", request_id)
                finally:
                    member.inflight -= 1
        finally:
            self._active.discard(request_id)
            self._aborted.discard(request_id)

    async def abort(self, request_ids: Sequence[str]) -> None:
        """Close the given candidates' streams; vLLM aborts a request whose client went away."""
        self._aborted.update(r for r in request_ids if r in self._active)

    def _pick(self, key: str | None) -> Member:
        """The request's upstream if it still serves, else the least-loaded healthy one."""
        if key is not None:
            member = self._affinity.get(key)
            if member is not None and member.healthy:
                self._affinity.move_to_end(key)
                return member
        healthy = [m for m in self.members if m.healthy]
        if not healthy:
            raise UpstreamUnreachable("no upstream is serving")
        member = min(healthy, key=lambda m: m.inflight)
        if key is not None:
            self._affinity[key] = member
            if len(self._affinity) > AFFINITY_ENTRIES:
                self._affinity.popitem(last=False)
        return member
