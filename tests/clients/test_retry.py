"""Retries with backoff on 429 (Retry-After), 503 and connection errors, via MockTransport."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from clients.client import AsyncWhetstoneClient, WhetstoneClient
from clients.errors import (
    BadRequestError,
    ConnectionFailed,
    InternalServerError,
    InvalidResponse,
    RateLimitError,
    RequestTimeout,
    ServiceUnavailableError,
)
from clients.retry import RetryPolicy, retry_after_seconds

HELLO = [{"role": "user", "content": "hello"}]
OK_BODY = {
    "id": "chatcmpl-1", "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}
RATE_LIMITED = {"error": {"message": "admission limit full", "type": "rate_limit_error",
                          "param": None, "code": "overloaded"}}
Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[float]]:
    """A handler answering with `responses` in turn; it records when each request came."""
    seen: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(time.perf_counter())
        answer = responses[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def sync_client(handler: Handler, **options: float) -> WhetstoneClient:
    """A sync client on a mock transport, with a tiny backoff."""
    return WhetstoneClient("http://mock", transport=httpx.MockTransport(handler),
                           **({"backoff": 0.01} | options))  # type: ignore[arg-type]


def test_429_is_retried_after_the_servers_retry_after() -> None:
    handler, seen = scripted(
        httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "0.2"}),
        httpx.Response(200, json=OK_BODY),
    )
    with sync_client(handler) as client:
        result = client.chat(HELLO)
    assert result.text == "hi" and len(seen) == 2
    assert seen[1] - seen[0] >= 0.19
    assert result.latency >= 0.19  # latency counts the wait


def test_503_is_retried_with_exponential_backoff() -> None:
    handler, seen = scripted(
        httpx.Response(503, json={"error": {"message": "starting", "type": "service_unavailable"}}),
        httpx.Response(503, json={"error": {"message": "starting", "type": "service_unavailable"}}),
        httpx.Response(200, json=OK_BODY),
    )
    with sync_client(handler, backoff=0.05) as client:
        assert client.chat(HELLO).text == "hi"
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.045 and seen[2] - seen[1] >= 0.095


def test_retries_run_out_and_the_last_error_is_raised() -> None:
    handler, seen = scripted(*[httpx.Response(429, json=RATE_LIMITED)] * 3)
    with sync_client(handler, max_retries=2) as client, pytest.raises(RateLimitError) as error:
        client.chat(HELLO)
    assert len(seen) == 3
    assert error.value.status_code == 429 and error.value.code == "overloaded"
    assert error.value.message == "admission limit full"
    assert error.value.type == "rate_limit_error" and error.value.param is None


def test_client_errors_and_other_server_errors_are_not_retried() -> None:
    handler, seen = scripted(
        httpx.Response(400, json={"error": {"message": "bad", "type": "invalid_request_error",
                                            "param": "max_tokens", "code": None}}),
        httpx.Response(500, text="<html>oops</html>"),
    )
    with sync_client(handler) as client:
        with pytest.raises(BadRequestError) as bad:
            client.chat(HELLO)
        with pytest.raises(InternalServerError) as broken:
            client.chat(HELLO)
    assert len(seen) == 2 and bad.value.param == "max_tokens"
    assert broken.value.status_code == 500 and "oops" in broken.value.message


def test_connection_errors_are_retried_then_reported() -> None:
    request = httpx.Request("POST", "http://mock")
    handler, seen = scripted(
        httpx.ConnectError("refused", request=request),
        httpx.Response(200, json=OK_BODY),
        *[httpx.ConnectError("refused", request=request)] * 3,
    )
    with sync_client(handler) as client:
        assert client.chat(HELLO).text == "hi"
        with pytest.raises(ConnectionFailed) as failed:
            client.chat(HELLO)
    assert len(seen) == 5 and "ConnectError" in str(failed.value)


def test_read_timeouts_are_not_retried() -> None:
    request = httpx.Request("POST", "http://mock")
    handler, seen = scripted(httpx.ReadTimeout("slow", request=request))
    with sync_client(handler) as client, pytest.raises(RequestTimeout) as timed_out:
        client.chat(HELLO)
    assert len(seen) == 1 and timed_out.value.kind == "timeout"


def test_health_is_never_retried() -> None:
    handler, seen = scripted(httpx.Response(503, json={"error": {"message": "no"}}))
    with sync_client(handler) as client:
        assert client.health() is False
    assert len(seen) == 1


def test_a_body_that_is_not_json_is_an_invalid_response() -> None:
    handler, _ = scripted(httpx.Response(200, text="not json"), httpx.Response(200, json={}))
    with sync_client(handler) as client:
        with pytest.raises(InvalidResponse):
            client.chat(HELLO)
        with pytest.raises(InvalidResponse):
            client.chat(HELLO)


async def test_async_client_retries_429_and_503() -> None:
    handler, seen = scripted(
        httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "0"}),
        httpx.Response(503, json={"error": {"message": "down"}}),
        httpx.Response(200, json=OK_BODY),
        *[httpx.Response(503, json={"error": {"message": "down"}})] * 3,
    )
    transport = httpx.MockTransport(handler)
    async with AsyncWhetstoneClient("http://mock", transport=transport, backoff=0.01,
                                    max_retries=2) as client:
        assert (await client.chat(HELLO)).text == "hi"
        with pytest.raises(ServiceUnavailableError):
            await client.chat(HELLO)  # three 503s: the first try and two retries
    assert len(seen) == 6


async def test_async_client_reports_connection_failures() -> None:
    request = httpx.Request("POST", "http://mock")
    handler, seen = scripted(*[httpx.ConnectError("refused", request=request)] * 2)
    transport = httpx.MockTransport(handler)
    async with AsyncWhetstoneClient("http://mock", transport=transport, backoff=0.01,
                                    max_retries=1) as client:
        with pytest.raises(ConnectionFailed):
            await client.complete("x")
    assert len(seen) == 2


def test_policy_delays() -> None:
    policy = RetryPolicy(max_retries=3, backoff=0.5, max_delay=1.5)
    assert [policy.backoff_delay(a) for a in range(4)] == [0.5, 1.0, 1.5, 1.5]
    limited = httpx.Response(429, headers={"Retry-After": "7"})
    assert policy.delay_after_status(0, limited) == 1.5  # capped at max_delay
    assert policy.delay_after_status(0, httpx.Response(429, headers={"Retry-After": "1"})) == 1.0
    assert policy.delay_after_status(1, httpx.Response(503)) == 1.0
    assert policy.delay_after_status(3, httpx.Response(503)) is None
    assert policy.delay_after_status(0, httpx.Response(500)) is None


def test_retry_after_header_values() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert retry_after_seconds(date, now=1445412480.0) == pytest.approx(10.0)
    assert retry_after_seconds(date) == 0.0  # in the past
