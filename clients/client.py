"""WhetstoneClient and AsyncWhetstoneClient: typed, retrying httpx clients for the whetstone API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx

from clients.errors import (
    InvalidResponse,
    ServiceUnavailableError,
    status_error,
    transport_error,
)
from clients.results import Completion, Model, parse_completion, parse_models
from clients.retry import RetryPolicy
from clients.sse import CandidateEvent, StreamCollector

NO_RETRY = RetryPolicy(max_retries=0)  # health checks answer at once

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
Message = dict[str, Any]


def generation_body(
    *,
    max_tokens: int | None,
    temperature: float | None,
    sharpening: dict[str, Any] | None,
    stream: bool,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """A request body: the given fields, None ones left out; streams ask for usage."""
    body: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "sharpening": sharpening,
    }
    body = {k: v for k, v in body.items() if v is not None} | extra
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    return body


def watched(sharpening: dict[str, Any] | None) -> dict[str, Any]:
    """A sharpening object that asks for candidate events."""
    return (sharpening or {}) | {"stream_candidates": True}


def last_completion(item: CandidateEvent | Completion) -> Completion:
    """The stream's last item, which is always its Completion."""
    if not isinstance(item, Completion):
        raise InvalidResponse("the stream ended without a completion")
    return item


def json_body(response: httpx.Response) -> Any:
    """The response's JSON body, or InvalidResponse."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        snippet = response.text[:200]
        raise InvalidResponse(f"{response.url}: the body is not JSON: {snippet!r}") from exc


class _ClientBase:
    """What both clients share: base URL (a trailing /v1 is dropped), auth header, retries."""

    def __init__(
        self, base_url: str, api_key: str | None, max_retries: int, backoff: float
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix("/v1")  # accept OpenAI-style base URLs too
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)


class WhetstoneClient(_ClientBase):
    """A blocking client; use it as a context manager or call close().

    `timeout` is per request in seconds; `max_retries` retries 429, 503 and connection
    errors after `backoff * 2**attempt` seconds (or the server's Retry-After); `transport`
    replaces the network, e.g. with httpx.MockTransport in tests.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, max_retries, backoff)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> WhetstoneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        stream: bool = False,
        **extra: Any,
    ) -> Completion:
        """POST /v1/chat/completions; with `stream` the SSE stream is read and timed."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=sharpening, stream=stream, extra=extra)
        return self._generate(CHAT_PATH, {"messages": list(messages)} | body, stream)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        stream: bool = False,
        **extra: Any,
    ) -> Completion:
        """POST /v1/completions (legacy text completion)."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=sharpening, stream=stream, extra=extra)
        return self._generate(COMPLETIONS_PATH, {"prompt": prompt} | body, stream)

    def watch_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Iterator[CandidateEvent | Completion]:
        """Stream a chat completion: each CandidateEvent as it arrives, then the Completion."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=watched(sharpening), stream=True, extra=extra)
        return self._events(CHAT_PATH, {"messages": list(messages)} | body, True)

    def models(self) -> list[Model]:
        """GET /v1/models."""
        response = self._send(self._http.build_request("GET", "/v1/models"))
        response.read()
        return parse_models(json_body(response))

    def health(self) -> bool:
        """GET /health: True when the engine serves, False while it is not ready (503)."""
        try:
            self._send(self._http.build_request("GET", "/health"), NO_RETRY).close()
        except ServiceUnavailableError:
            return False
        return True

    def _generate(self, path: str, body: dict[str, Any], stream: bool) -> Completion:
        *_, last = self._events(path, body, stream)
        return last_completion(last)

    def _events(self, path: str, body: dict[str, Any], stream: bool) -> Iterator[CandidateEvent | Completion]:
        started = time.perf_counter()
        response = self._send(self._http.build_request("POST", path, json=body))
        try:
            if not stream:
                response.read()
                yield parse_completion(json_body(response), time.perf_counter() - started)
                return
            collector = StreamCollector(started)
            for line in response.iter_lines():
                done = collector.feed(line)
                yield from collector.take_candidates()
                if done:
                    break
            yield collector.result()
        except httpx.TransportError as exc:
            raise transport_error(exc, response.url) from exc
        finally:
            response.close()

    def _send(self, request: httpx.Request, retry: RetryPolicy | None = None) -> httpx.Response:
        """Send with retries (this client's policy unless given); return an unread 2xx response or raise."""
        retry = retry or self.retry
        attempt = 0
        while True:
            delay: float | None
            try:
                response = self._http.send(request, stream=True)
                if response.is_success:
                    return response
                delay = retry.delay_after_status(attempt, response)
                response.read()
                if delay is None:
                    raise status_error(response)
            except httpx.TransportError as exc:
                delay = retry.delay_after_error(attempt, exc)
                if delay is None:
                    raise transport_error(exc, request.url) from exc
            time.sleep(delay)
            attempt += 1


class AsyncWhetstoneClient(_ClientBase):
    """An asyncio client; use it as an async context manager or call aclose().

    Arguments as for WhetstoneClient; `transport` may be httpx.ASGITransport(app) to talk to
    an app in-process, and `max_connections` caps the connection pool.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(base_url, api_key, max_retries, backoff)
        limits = httpx.Limits(max_connections=max_connections)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                       timeout=timeout, transport=transport, limits=limits)

    async def __aenter__(self) -> AsyncWhetstoneClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._http.aclose()

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        stream: bool = False,
        **extra: Any,
    ) -> Completion:
        """POST /v1/chat/completions; with `stream` the SSE stream is read and timed."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=sharpening, stream=stream, extra=extra)
        return await self._generate(CHAT_PATH, {"messages": list(messages)} | body, stream)

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        stream: bool = False,
        **extra: Any,
    ) -> Completion:
        """POST /v1/completions (legacy text completion)."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=sharpening, stream=stream, extra=extra)
        return await self._generate(COMPLETIONS_PATH, {"prompt": prompt} | body, stream)

    async def watch_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sharpening: dict[str, Any] | None = None,
        **extra: Any,
    ) -> AsyncIterator[CandidateEvent | Completion]:
        """Stream a chat completion: each CandidateEvent as it arrives, then the Completion."""
        body = generation_body(max_tokens=max_tokens, temperature=temperature,
                               sharpening=watched(sharpening), stream=True, extra=extra)
        async for item in self._events(CHAT_PATH, {"messages": list(messages)} | body, True):
            yield item

    async def models(self) -> list[Model]:
        """GET /v1/models."""
        response = await self._send(self._http.build_request("GET", "/v1/models"))
        await response.aread()
        return parse_models(json_body(response))

    async def health(self) -> bool:
        """GET /health: True when the engine serves, False while it is not ready (503)."""
        try:
            response = await self._send(self._http.build_request("GET", "/health"), NO_RETRY)
            await response.aclose()
        except ServiceUnavailableError:
            return False
        return True

    async def _generate(self, path: str, body: dict[str, Any], stream: bool) -> Completion:
        items = [item async for item in self._events(path, body, stream)]
        return last_completion(items[-1])

    async def _events(
        self, path: str, body: dict[str, Any], stream: bool
    ) -> AsyncIterator[CandidateEvent | Completion]:
        started = time.perf_counter()
        response = await self._send(self._http.build_request("POST", path, json=body))
        try:
            if not stream:
                await response.aread()
                yield parse_completion(json_body(response), time.perf_counter() - started)
                return
            collector = StreamCollector(started)
            async for line in response.aiter_lines():
                done = collector.feed(line)
                for event in collector.take_candidates():
                    yield event
                if done:
                    break
            yield collector.result()
        except httpx.TransportError as exc:
            raise transport_error(exc, response.url) from exc
        finally:
            await response.aclose()

    async def _send(self, request: httpx.Request, retry: RetryPolicy | None = None) -> httpx.Response:
        """Send with retries (this client's policy unless given); return an unread 2xx response or raise."""
        retry = retry or self.retry
        attempt = 0
        while True:
            delay: float | None
            try:
                response = await self._http.send(request, stream=True)
                if response.is_success:
                    return response
                delay = retry.delay_after_status(attempt, response)
                await response.aread()
                if delay is None:
                    raise status_error(response)
            except httpx.TransportError as exc:
                delay = retry.delay_after_error(attempt, exc)
                if delay is None:
                    raise transport_error(exc, request.url) from exc
            await asyncio.sleep(delay)
            attempt += 1
