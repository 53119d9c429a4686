"""Adaptive stopping through the API: the summary names the rule, server defaults, refusals."""

from __future__ import annotations

from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


def agreeing() -> FakeEngine:
    """Every candidate answers 7."""
    return FakeEngine(scripts=[Script([-1.0] * 3, words=("answer ", "7"))])


MAJORITY = {"strategy": "majority", "n": 16, "answer_pattern": r"(\d)"}


async def test_an_adaptive_vote_draws_fewer_than_its_cap(make_client: ClientFactory) -> None:
    async with make_client(agreeing()) as client:
        r = await client.post(CHAT, json={"messages": HELLO, "sharpening": MAJORITY | {"adaptive": True}})
        full = await client.post(CHAT, json={"messages": HELLO, "sharpening": MAJORITY})
    assert r.status_code == 200, r.text
    s = r.json()["sharpening"]
    assert (s["candidates_drawn"], s["stopped_by"], s["n"]) == (4, "posterior", 16)
    assert r.json()["choices"][0]["message"]["content"] == "answer 7"
    assert full.json()["sharpening"]["candidates_drawn"] == 16
    assert full.json()["sharpening"]["stopped_by"] is None


async def test_the_server_default_turns_adaptive_on_where_it_applies(make_client: ClientFactory) -> None:
    likely = FakeEngine(scripts=[Script([-0.05, -0.05])])  # one answer of probability 0.9
    async with make_client(likely, default_adaptive=True) as client:
        best = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 8}})
        smc_body = {"messages": HELLO, "sharpening": {"strategy": "smc", "alpha": 2.0}}
        smc = await client.post(CHAT, json=smc_body)
        off = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 8, "adaptive": False}})
    assert best.json()["sharpening"]["candidates_drawn"] == 2  # the first wave proves the mode
    assert best.json()["sharpening"]["stopped_by"] == "certificate"
    assert smc.status_code == 200  # smc has no adaptive rule; its own early draw may end it
    assert smc.json()["sharpening"]["stopped_by"] in (None, "early_selection")
    assert off.json()["sharpening"]["candidates_drawn"] == 8


async def test_adaptive_where_it_does_not_apply_is_a_400(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine()) as client:
        smc = {"strategy": "smc", "alpha": 2.0, "adaptive": True}
        r = await client.post(CHAT, json={"messages": HELLO, "sharpening": smc})
        sure = await client.post(CHAT, json={"messages": HELLO, "sharpening": MAJORITY | {"certainty": 1.0}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "sharpening.adaptive"
    assert sure.status_code == 400 and "certainty" in r.text + sure.text


async def test_the_missing_mass_heuristic_needs_samples_of_the_model(make_client: ClientFactory) -> None:
    """Every candidate repeats one sequence of probability 0.33: only the heuristic can stop early."""
    adaptive = {"n": 8, "adaptive": True}
    async with make_client(FakeEngine()) as client:
        sampled = await client.post(CHAT, json={"messages": HELLO, "temperature": 1.0,
                                                "sharpening": adaptive})
        anchored = await client.post(CHAT, json={"messages": HELLO, "temperature": 1.0,
                                                 "sharpening": adaptive | {"greedy_candidate": True}})
        cooled = await client.post(CHAT, json={"messages": HELLO, "temperature": 0.5, "sharpening": adaptive})
    assert sampled.json()["sharpening"]["stopped_by"] == "missing_mass"
    assert sampled.json()["sharpening"]["candidates_drawn"] == 2
    for reply in (anchored, cooled):  # only the leader drawn again can stop these
        assert reply.json()["sharpening"]["stopped_by"] == "repeated_leader"
        assert reply.json()["sharpening"]["candidates_drawn"] == 2


async def test_adaptive_draws_at_least_the_choices_asked_for(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine()) as client:
        body = {"messages": HELLO, "temperature": 1.0, "n": 3, "sharpening": {"n": 8, "adaptive": True}}
        r = await client.post(CHAT, json=body)
    assert len(r.json()["choices"]) == 3
    assert r.json()["sharpening"]["stopped_by"] == "missing_mass"
    assert r.json()["sharpening"]["candidates_drawn"] == 4  # two waves: the first rule check at 3 completed
