"""The client libraries against the app on a fake engine: results, streams and errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from clients.client import WhetstoneClient
from clients.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailed,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
    WhetstoneError,
)
from server.config import Settings
from server.engines import EngineError
from tests.clients.conftest import AsgiClientFactory, ServerFactory
from tests.fakes import DeadEngine, FakeEngine, Script

HELLO = [{"role": "user", "content": "hello"}]


def two_scripts() -> FakeEngine:
    """Candidate 0 is unlikely and short; candidate 1 is likely and longer."""
    return FakeEngine(scripts=[Script([-3.0, -3.0]), Script([-0.1, -0.1, -0.1])])


async def test_chat_returns_text_usage_and_the_sharpening_summary(
    asgi_client: AsgiClientFactory,
) -> None:
    async with asgi_client(two_scripts()) as client:
        result = await client.chat(HELLO, max_tokens=8, temperature=0.7,
                                   sharpening={"n": 2, "return_candidates": True})
    assert result.text == "t0 t1 " and result.finish_reason == "stop"
    assert result.model == "fake-model" and result.id.startswith("chatcmpl-")
    assert result.usage is not None and result.usage.completion_tokens == 5
    assert result.latency > 0 and result.time_to_first_token is None
    s = result.sharpening
    assert s is not None
    assert (s.strategy, s.n, s.selected_index) == ("best_of_n", 2, 1)
    assert s.selected_score == pytest.approx(-0.3)
    assert s.generated_tokens == 5 and s.candidates_finished == 2
    assert s.candidates is not None and [c.index for c in s.candidates] == [0, 1]
    chosen = s.selected
    assert chosen is not None and chosen.index == 1
    assert (chosen.num_tokens, chosen.status, chosen.text) == (3, "finished", "t0 t1 ")
    assert chosen.logprob_sum == pytest.approx(-0.3) and chosen.token_ids == (10, 11, 2)


async def test_the_summary_says_what_stopped_the_drawing(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(two_scripts()) as client:
        cut = await client.chat(HELLO, max_tokens=8, sharpening={"n": 2, "max_total_tokens": 3})
        whole = await client.chat(HELLO, max_tokens=8, sharpening={"n": 2})
    assert cut.sharpening is not None and cut.sharpening.stopped_by == "budget"
    assert whole.sharpening is not None and whole.sharpening.stopped_by is None


async def test_summary_without_candidates_has_no_selected_candidate(
    asgi_client: AsgiClientFactory,
) -> None:
    async with asgi_client() as client:
        result = await client.chat(HELLO, sharpening={"strategy": "none"})
    assert result.sharpening is not None
    assert result.sharpening.candidates is None and result.sharpening.selected is None
    assert result.sharpening.strategy == "none" and result.sharpening.n == 1


async def test_stream_is_assembled_and_timed(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(two_scripts()) as client:
        result = await client.chat(HELLO, stream=True, sharpening={"n": 2})
    assert result.text == "t0 t1 " and result.finish_reason == "stop"
    assert result.time_to_first_token is not None
    assert 0 < result.time_to_first_token <= result.latency
    assert result.usage is not None and result.usage.completion_tokens == 5
    assert result.sharpening is not None and result.sharpening.selected_index == 1


async def test_streaming_without_usage_still_carries_the_summary(
    asgi_client: AsgiClientFactory,
) -> None:
    async with asgi_client() as client:
        result = await client.chat(HELLO, stream=True, stream_options={"include_usage": False})
    assert result.usage is None
    assert result.sharpening is not None and result.sharpening.strategy == "best_of_n"


async def test_complete_plain_and_streamed(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(two_scripts()) as client:
        plain = await client.complete("Once upon", sharpening={"n": 2})
        streamed = await client.complete("Once upon", stream=True, sharpening={"n": 2})
    assert plain.id.startswith("cmpl-") and plain.text == streamed.text == "t0 t1 "
    assert streamed.time_to_first_token is not None


async def test_extra_fields_reach_the_server(asgi_client: AsgiClientFactory) -> None:
    engine = FakeEngine()
    async with asgi_client(engine) as client:
        result = await client.chat(HELLO, n=2, seed=7, sharpening={"n": 3})
    assert len(result.choices) == 2
    assert sorted(spec.seed or 0 for _, spec in engine.requests) == [7, 8, 9]


async def test_models_and_health(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client() as client:
        models = await client.models()
        healthy = await client.health()
    assert [(m.id, m.max_model_len) for m in models] == [("fake-model", 512)]
    assert healthy is True
    async with asgi_client(DeadEngine()) as client:
        assert await client.health() is False


async def test_http_errors_carry_the_openai_error_fields(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client() as client:
        with pytest.raises(BadRequestError) as bad:
            await client.chat(HELLO, temperature=5.0)
        with pytest.raises(NotFoundError) as missing:
            await client.chat(HELLO, model="gpt-9")
    assert bad.value.status_code == 400 and bad.value.type == "invalid_request_error"
    assert bad.value.param == "temperature" and bad.value.kind == "http_400"
    assert missing.value.code == "model_not_found" and "gpt-9" in missing.value.message
    assert isinstance(missing.value.body, dict) and "error" in missing.value.body


async def test_api_key_is_sent_and_a_wrong_one_is_refused(asgi_client: AsgiClientFactory) -> None:
    settings = Settings(api_key="s3cret")
    async with asgi_client(None, settings, api_key="s3cret") as client:
        assert (await client.chat(HELLO)).text
    async with asgi_client(None, settings, api_key="wrong") as client:
        with pytest.raises(AuthenticationError) as refused:
            await client.models()
    assert refused.value.code == "invalid_api_key"


def failing_engine() -> FakeEngine:
    """Healthy when asked, but every candidate fails mid-generation."""
    return FakeEngine(fail_with=EngineError("engine core died"))


async def test_dead_engine_is_503_and_a_failure_mid_stream_an_error_event(
    asgi_client: AsgiClientFactory,
) -> None:
    async with asgi_client(DeadEngine()) as client:
        with pytest.raises(ServiceUnavailableError) as unavailable:
            await client.chat(HELLO, stream=True)
    async with asgi_client(failing_engine()) as client:
        with pytest.raises(StreamError) as in_stream:
            await client.chat(HELLO, stream=True)
    assert unavailable.value.status_code == 503
    assert in_stream.value.type == "service_unavailable" and in_stream.value.kind == "stream_error"
    assert "engine core died" in in_stream.value.message


async def test_a_full_server_is_retried_after_its_retry_after(
    asgi_client: AsgiClientFactory,
) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 5)], step_seconds=0.01)
    settings = Settings(max_inflight_requests=1)
    async with asgi_client(engine, settings) as client:
        with pytest.raises(RateLimitError) as full:
            await asyncio.gather(client.chat(HELLO), client.chat(HELLO))
    assert full.value.headers["retry-after"] == "1" and full.value.code == "overloaded"
    async with asgi_client(engine, settings, max_retries=2) as client:
        started = time.perf_counter()
        both = await asyncio.gather(client.chat(HELLO), client.chat(HELLO))
    assert [r.text for r in both] == ["t0 t1 t2 t3 "] * 2
    assert time.perf_counter() - started >= 1.0  # the second waited out Retry-After: 1


def test_sync_client_over_real_http(serve: ServerFactory) -> None:
    with serve(two_scripts()) as url, WhetstoneClient(url + "/v1/", max_retries=0) as client:
        assert client.base_url == url
        plain = client.chat(HELLO, max_tokens=4, sharpening={"n": 2, "return_candidates": True})
        streamed = client.chat(HELLO, stream=True, sharpening={"n": 2})
        text = client.complete("Once", sharpening={"strategy": "none"})
        assert client.health() is True
        assert client.models()[0].id == "fake-model"
        with pytest.raises(BadRequestError):
            client.complete("Once", max_tokens=0)  # 0 needs echo
    assert plain.text == streamed.text == "t0 t1 "
    assert plain.sharpening is not None and plain.sharpening.selected is not None
    assert streamed.time_to_first_token is not None and text.text == "t0 "


def test_sync_client_stream_error_and_unreachable_server(serve: ServerFactory) -> None:
    with serve(failing_engine()) as url, WhetstoneClient(url, max_retries=0) as client:
        assert client.health() is True
        with pytest.raises(StreamError):
            client.chat(HELLO, stream=True)
        with pytest.raises(ServiceUnavailableError):
            client.chat(HELLO)
    with WhetstoneClient(url, max_retries=0) as client, pytest.raises(ConnectionFailed) as down:
        client.models()
    assert isinstance(down.value, WhetstoneError) and down.value.kind == "connection_failed"
