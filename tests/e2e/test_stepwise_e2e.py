"""smc, mcmc and confidence against the real engine through the openai SDK, streamed and not."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from openai import OpenAI

from server.engines.vllm import CPU_BLOCK_TOKENS

MODEL = "SmolLM2-135M-Instruct"
SHORT: Any = [{"role": "user", "content": "Describe the color blue in one sentence."}]
ARITHMETIC: Any = [{"role": "user", "content": "What is 7 + 5? End with 'Answer: <number>'."}]


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


def metric(url: str, name: str) -> float:
    """One sample of the server's /metrics (0 when not yet exported)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", httpx.get(url + "/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def check_spend(summary: dict[str, Any], completion_tokens: int) -> None:
    """The summary's own accounting adds up: usage counts generated tokens, forks by candidate."""
    cands = summary["candidates"]
    assert completion_tokens == summary["generated_tokens"]
    assert completion_tokens == sum(c["num_tokens"] - c["prefix_tokens"] for c in cands)
    assert summary["forks"] == sum(c["parent"] is not None for c in cands)
    chosen = next(c for c in cands if c["index"] == summary["selected_index"])
    assert chosen["status"] in ("finished", "truncated")


def test_smc_scores_stay_raw_while_the_proposal_is_tempered(client: OpenAI, server_url: str) -> None:
    sharpening = {"strategy": "smc", "n": 4, "alpha": 4.0, "checkpoint_tokens": 8, "return_candidates": True}
    r = client.chat.completions.create(
        model=MODEL,
        messages=SHORT,
        max_tokens=32,
        logprobs=True,
        top_logprobs=3,
        seed=5,
        extra_body={"sharpening": sharpening},
    )
    s = (r.model_extra or {})["sharpening"]
    assert r.usage is not None
    check_spend(s, r.usage.completion_tokens)
    assert s["strategy"] == "smc" and s["forks"] > 0 and s["resamplings"] is not None
    assert 0 <= s["normaliser_error_bound"] < 1.0
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content
    assert sum(t.logprob for t in lp.content) == pytest.approx(s["selected_logprob_sum"], abs=1e-3)
    # the first position's distribution does not depend on the sampling: at temperature 1/4 the
    # reported log-probabilities equal those of a plain temperature-1 request (raw, not tempered)
    plain = client.chat.completions.create(
        model=MODEL,
        messages=SHORT,
        max_tokens=1,
        logprobs=True,
        top_logprobs=3,
        extra_body={"sharpening": {"strategy": "none"}},
    )
    assert plain.choices[0].logprobs is not None and plain.choices[0].logprobs.content
    raw = {t.token: t.logprob for t in plain.choices[0].logprobs.content[0].top_logprobs}
    tempered = {t.token: t.logprob for t in lp.content[0].top_logprobs}
    assert raw.keys() == tempered.keys()
    assert all(tempered[k] == pytest.approx(raw[k], abs=1e-3) for k in raw)
    assert metric(server_url, "whetstone_inflight_candidates") == 0


def test_smc_forks_are_served_from_the_prefix_cache(client: OpenAI, server_url: str) -> None:
    """A short prompt fills no KV block: every cached token comes from a fork's inherited prefix.
    (ignore_eos: every particle reaches the checkpoint, so smc's early draw cannot end it first.)"""
    before = metric(server_url, "whetstone_prefix_cached_tokens_total")
    r = client.completions.create(
        model=MODEL,
        prompt=f"Story {uuid.uuid4().hex[:6]}: Once upon a time,",
        max_tokens=96,
        seed=3,
        extra_body={
            "ignore_eos": True,
            "sharpening": {
                "strategy": "smc",
                "n": 3,
                "alpha": 2.0,
                "checkpoint_tokens": 64,
                "return_candidates": True,
            }
        },
    )
    assert r.usage is not None
    prompt = r.usage.prompt_tokens
    assert prompt < CPU_BLOCK_TOKENS
    s = (r.model_extra or {})["sharpening"]
    forks = [c for c in s["candidates"] if c["parent"] is not None]
    assert forks, s
    cached = metric(server_url, "whetstone_prefix_cached_tokens_total") - before
    # each fork's prompt + prefix spans whole blocks; vLLM recomputes at most the last one
    least = sum(
        (prompt + f["prefix_tokens"]) // CPU_BLOCK_TOKENS * CPU_BLOCK_TOKENS - CPU_BLOCK_TOKENS for f in forks
    )
    assert cached >= least > 0


def test_smc_streams_its_answer(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=SHORT,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sharpening": {"strategy": "smc", "n": 3, "alpha": 4.0, "checkpoint_tokens": 8}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    summary = (last.model_extra or {})["sharpening"]
    assert text and summary["strategy"] == "smc" and summary["forks"] > 0
    assert last.usage is not None and last.usage.completion_tokens == summary["generated_tokens"]


def test_mcmc_completion_and_stream(client: OpenAI) -> None:
    sharpening = {"strategy": "mcmc", "alpha": 4.0, "blocks": 2, "mh_steps": 2, "return_candidates": True}
    r = client.completions.create(
        model=MODEL,
        prompt="The capital of France is",
        max_tokens=16,
        seed=9,
        extra_body={"sharpening": sharpening},
    )
    s = (r.model_extra or {})["sharpening"]
    assert r.usage is not None
    check_spend(s, r.usage.completion_tokens)
    assert s["mh_proposals"] in (2, 4) and 0 <= s["mh_accepted"] <= s["mh_proposals"]
    chosen = next(c for c in s["candidates"] if c["index"] == s["selected_index"])
    assert r.choices[0].text == chosen["text"]
    stream = client.completions.create(
        model=MODEL,
        prompt="The capital of France is",
        max_tokens=16,
        stream=True,
        extra_body={"sharpening": sharpening},
    )
    chunks = list(stream)
    tail = (chunks[-1].model_extra or {})["sharpening"]
    assert "".join(c.choices[0].text for c in chunks if c.choices) and tail["strategy"] == "mcmc"


def test_confidence_votes_and_leaves_nothing_in_flight(client: OpenAI, server_url: str) -> None:
    sharpening = {
        "strategy": "confidence",
        "n": 6,
        "warmup": 2,
        "window": 4,
        "keep_percentile": 10,
        "answer_pattern": r"Answer:\s*(\d+)",
        "return_candidates": True,
    }
    r = client.chat.completions.create(
        model=MODEL,
        messages=ARITHMETIC,
        max_tokens=48,
        seed=11,
        extra_body={"sharpening": sharpening},
    )
    s = (r.model_extra or {})["sharpening"]
    assert r.usage is not None
    check_spend(s, r.usage.completion_tokens)
    assert s["candidates_drawn"] == 6 and s["candidates_pruned"] > 0  # keeping only the top 10 %
    assert all(c["num_tokens"] >= 4 for c in s["candidates"] if c["status"] == "pruned")
    assert metric(server_url, "whetstone_inflight_candidates") == 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ARITHMETIC,
        max_tokens=48,
        stream=True,
        extra_body={"sharpening": sharpening},
    )
    assert (list(stream)[-1].model_extra or {})["sharpening"]["strategy"] == "confidence"


def test_a_disconnect_mid_smc_leaves_nothing_in_flight(server_url: str) -> None:
    aborted = 'whetstone_candidates_total{status="aborted"}'
    before = metric(server_url, aborted)
    body = {
        "messages": [{"role": "user", "content": "Tell me a long story about a dragon."}],
        "max_tokens": 1500,
        "sharpening": {"strategy": "smc", "n": 4, "alpha": 1.0, "checkpoint_tokens": 16},
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server_url + "/v1/chat/completions", json=body, timeout=1.5)
    deadline = time.monotonic() + 5
    while metric(server_url, "whetstone_inflight_candidates") > 0:
        assert time.monotonic() < deadline, "particles still running 5 s after the disconnect"
        time.sleep(0.1)
    assert metric(server_url, aborted) > before
