"""smc, mcmc and confidence through the routes: what they report, what they refuse."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


def engine() -> FakeEngine:
    return FakeEngine(scripts=[Script([-0.2] * 6), Script([-1.0] * 5), Script([-0.5] * 7)])


async def test_smc_reports_forks_resamplings_and_counts_every_generated_token(
    make_client: ClientFactory,
) -> None:
    fake = engine()
    sharpening = {"strategy": "smc", "n": 3, "alpha": 4.0, "checkpoint_tokens": 2, "return_candidates": True}
    body = {"messages": HELLO, "max_tokens": 8, "logprobs": True, "top_logprobs": 1, "sharpening": sharpening}
    async with make_client(fake) as client:
        r = await client.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    s = data["sharpening"]
    cands = s["candidates"]
    forks = [c for c in cands if c["parent"] is not None]
    assert s["strategy"] == "smc" and s["forks"] == len(forks) > 0
    assert s["resamplings"] is not None and s["mh_proposals"] is None
    assert s["candidates_paused"] == sum(c["status"] == "paused" for c in cands) > 0
    generated = sum(c["num_tokens"] - c["prefix_tokens"] for c in cands)
    assert data["usage"]["completion_tokens"] == s["generated_tokens"] == generated
    assert s["normaliser_error_bound"] > 0  # the fake reports a top-2 only: a bound, not exact
    assert {spec.temperature for _, spec in fake.requests} == {0.25}
    assert {spec.top_logprobs for _, spec in fake.requests} == {20}
    assert all(len(t["top_logprobs"]) == 1 for t in data["choices"][0]["logprobs"]["content"])


async def test_mcmc_reports_proposals_and_acceptances(make_client: ClientFactory) -> None:
    sharpening = {"strategy": "mcmc", "alpha": 2.0, "blocks": 2, "mh_steps": 2, "return_candidates": True}
    async with make_client(engine()) as client:
        r = await client.post(CHAT, json={"messages": HELLO, "max_tokens": 6, "sharpening": sharpening})
    assert r.status_code == 200, r.text
    s = r.json()["sharpening"]
    assert s["n"] == 1 and s["mh_proposals"] == 4 and 0 <= s["mh_accepted"] <= 4
    assert s["forks"] == s["candidates_drawn"] - 1  # everything after the first block is a fork


async def test_confidence_streams_its_answer_with_the_summary(make_client: ClientFactory) -> None:
    sharpening = {"strategy": "confidence", "n": 3, "warmup": 1, "answer_pattern": r"t(\d)"}
    body = {"messages": HELLO, "max_tokens": 4, "stream": True, "sharpening": sharpening}
    async with make_client(engine()) as client:
        r = await client.post(CHAT, json=body)
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["sharpening"]["strategy"] == "confidence"
    assert last["sharpening"]["candidates_drawn"] == 3


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 0.7}, "temperature"),
        ({"top_p": 0.9}, "top_p"),
        ({"sharpening": {"strategy": "smc", "n": 2}}, "sharpening.alpha"),
        ({"sharpening": {"strategy": "smc", "alpha": 2.0, "ess_threshold": 1.5}}, "sharpening.ess_threshold"),
        ({"sharpening": {"strategy": "mcmc", "alpha": 2.0}, "n": 2}, "n"),
        ({"sharpening": {"strategy": "confidence", "n": 4}}, "sharpening.answer_pattern"),
    ],
)
async def test_stepwise_mistakes_are_400_naming_the_field(
    make_client: ClientFactory, extra: dict, param: str
) -> None:
    body = {"messages": HELLO, "sharpening": {"strategy": "smc", "n": 2, "alpha": 2.0}} | extra
    async with make_client(engine()) as client:
        r = await client.post(CHAT, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
