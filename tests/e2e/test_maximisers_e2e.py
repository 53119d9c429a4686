"""The default's greedy candidate and the `beam` strategy against the real engine and the openai SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.e2e.test_foundation_e2e import rescore, sharpening_of

MODEL = "SmolLM2-135M-Instruct"
QUESTION: Any = [{"role": "user", "content": "Name a fruit that is yellow."}]
BEAM = {"strategy": "beam", "n": 6, "beam_width": 3, "checkpoint_tokens": 8, "return_candidates": True}


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


def generated(candidates: list[dict[str, Any]]) -> int:
    """Tokens the engine generated for these candidates (a fork's inherited prefix once)."""
    return sum(c["num_tokens"] - c["prefix_tokens"] for c in candidates)


def test_a_request_without_settings_draws_one_greedy_candidate_and_cooler_samples(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=48, seed=3,
        extra_body={"sharpening": {"return_candidates": True}},
    )
    s = sharpening_of(r)
    cands = s["candidates"]
    assert s["candidate_temperatures"] == [0.0, 0.4]
    assert [c["temperature"] for c in cands] == [0.0] + [0.4] * 7
    greedy = cands[0]
    if greedy["status"] == "finished":  # greedy's answer is a floor: never a less likely one
        assert s["selected_logprob_sum"] >= greedy["logprob_sum"]
    assert r.usage is not None and r.usage.completion_tokens == generated(cands)


def test_an_explicit_temperature_is_honoured(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=24, temperature=1.0, seed=3,
        extra_body={"sharpening": {"n": 3, "return_candidates": True}},
    )
    s = sharpening_of(r)
    assert s["candidate_temperatures"] == [1.0]
    assert {c["temperature"] for c in s["candidates"]} == {1.0}


@pytest.mark.parametrize("strategy", ["best_of_n", "beam"])
def test_temperature_zero_is_one_greedy_decode_whatever_the_strategy(client: OpenAI, strategy: str) -> None:
    def ask(sharpening: dict[str, Any]) -> Any:
        return client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=40, temperature=0,
            extra_body={"sharpening": sharpening | {"return_candidates": True}},
        )

    plain = ask({"strategy": "none"})
    sharpened = ask({"strategy": strategy, "n": 8, "checkpoint_tokens": 16} if strategy == "beam" else {})
    s = sharpening_of(sharpened)
    assert s["n"] == 1 and s["candidate_temperatures"] == [0.0]
    assert sharpened.choices[0].message.content == plain.choices[0].message.content
    assert sharpened.usage is not None and plain.usage is not None
    assert sharpened.usage.completion_tokens == plain.usage.completion_tokens


def test_beam_returns_the_raw_likelihood_of_the_whole_answer(client: OpenAI, model_dir: Path) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=48, seed=5, extra_body={"sharpening": BEAM},
    )
    s = sharpening_of(r)
    cands = s["candidates"]
    assert s["strategy"] == "beam" and s["forks"] > 0  # 8-token rounds: the answer needs several
    chosen = next(c for c in cands if c["index"] == s["selected_index"])
    assert r.choices[0].message.content == chosen["text"]
    completed = [c for c in cands if c["status"] == "finished"]
    assert chosen["logprob_sum"] == max(c["logprob_sum"] for c in completed)
    reference = rescore(model_dir, QUESTION, chosen["token_ids"])  # prefix inherited + own tokens
    assert chosen["logprob_sum"] == pytest.approx(reference, abs=0.02 * chosen["num_tokens"] + 0.1)
    assert r.usage is not None and r.usage.completion_tokens == generated(cands) == s["generated_tokens"]
    assert s["candidate_temperatures"] == [0.0, 0.4]


def test_beam_streams_through_the_sdk_with_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=48, seed=5, stream=True,
        stream_options={"include_usage": True}, extra_body={"sharpening": BEAM},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    summaries = [(c.model_extra or {}).get("sharpening") for c in chunks]
    s = [summary for summary in summaries if summary][-1]
    chosen = next(c for c in s["candidates"] if c["index"] == s["selected_index"])
    assert text == chosen["text"] and s["strategy"] == "beam"
    assert last.usage is not None and last.usage.completion_tokens == generated(s["candidates"])
