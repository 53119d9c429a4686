"""The openai SDK, sync and async, chat and legacy completions, streamed and not."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError, OpenAI

MODEL = "SmolLM2-135M-Instruct"
HELLO: Any = [{"role": "user", "content": "Say hello to Ada."}]


@pytest.fixture(scope="module")
def sync_client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


@pytest.fixture
def async_client(server_url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


def test_chat_with_n_choices_and_logprobs(sync_client: OpenAI) -> None:
    r = sync_client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=24,
        n=2,
        logprobs=True,
        top_logprobs=2,
        extra_body={"sharpening": {"n": 4, "return_candidates": True}},
    )
    s = (r.model_extra or {})["sharpening"]
    assert len(r.choices) == 2
    scores = {c["index"]: c for c in s["candidates"]}
    assert r.choices[0].message.content == scores[s["selected_index"]]["text"]
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content
    chosen = scores[s["selected_index"]]
    assert len(lp.content) == chosen["num_tokens"]
    assert sum(t.logprob for t in lp.content) == pytest.approx(chosen["logprob_sum"], abs=1e-3)
    assert all(len(t.top_logprobs) == 2 for t in lp.content)


def test_chat_stream_carries_text_usage_and_summary(sync_client: OpenAI) -> None:
    stream = sync_client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sharpening": {"n": 3}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0
    summary = (last.model_extra or {})["sharpening"]
    assert summary["n"] == 3 and summary["generated_tokens"] == last.usage.completion_tokens


def test_legacy_completion_with_best_of(sync_client: OpenAI) -> None:
    r = sync_client.completions.create(model=MODEL, prompt="The sky is", max_tokens=12, best_of=3, logprobs=1)
    s = (r.model_extra or {})["sharpening"]
    assert s["strategy"] == "best_of_n" and s["n"] == 3 and s["length_penalty"] == 1.0
    assert r.choices[0].text and r.choices[0].logprobs is not None


def test_stop_and_max_completion_tokens_are_honoured(sync_client: OpenAI) -> None:
    r = sync_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count from 1 to 20."}],
        max_completion_tokens=40,
        stop=["5"],
        temperature=0,
        extra_body={"sharpening": {"strategy": "none"}},
    )
    assert "5" not in (r.choices[0].message.content or "")
    assert r.usage is not None and r.usage.completion_tokens <= 40


def test_sdk_errors_are_typed(sync_client: OpenAI) -> None:
    with pytest.raises(NotFoundError):
        sync_client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(BadRequestError) as info:
        sync_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10**6)
    assert "max_tokens" in str(info.value)


async def test_async_chat_and_completion_streams(async_client: AsyncOpenAI) -> None:
    r = await async_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=16, extra_body={"sharpening": {"n": 2}}
    )
    assert r.choices[0].message.content
    stream = await async_client.completions.create(
        model=MODEL,
        prompt="Once upon a time",
        max_tokens=16,
        stream=True,
        extra_body={"sharpening": {"n": 2}},
    )
    pieces = [c async for c in stream]
    assert "".join(p.choices[0].text for p in pieces if p.choices)
