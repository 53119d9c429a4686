"""Load-aware sharpening: extras only on spare capacity, cut for newer requests, a deadline after
the primary; selection among the candidates that ran stays exact."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from server.engines import SamplingSpec
from server.load import LoadGovernor, LoadPolicy
from server.metrics import Metrics
from server.race import CandidateRace
from server.sharpening import CandidateStatus, SharpeningConfig, build_strategy, rank
from server.sharpening.scoring import candidate_score
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]
DEFAULT = SharpeningConfig(n=8, greedy_candidate=True, load="spare")


def test_extras_take_what_the_running_sequences_leave_of_the_capacity() -> None:
    policy = LoadPolicy(capacity=8, deadline=0.1)
    assert policy.extras_allowed(7, busy=1) == 7  # at rest: every candidate
    assert policy.extras_allowed(7, busy=5) == 3
    assert policy.extras_allowed(7, busy=8) == 0  # saturated: the primary alone
    assert policy.extras_allowed(7, busy=30) == 0
    assert policy.excess(11) == 3 and policy.excess(8) == 0
    assert policy.grace(2.0) == pytest.approx(0.2)


async def run_race(
    engine: FakeEngine,
    governor: LoadGovernor,
    config: SharpeningConfig = DEFAULT,
    request_id: str = "r",
    max_tokens: int = 40,
) -> CandidateRace:
    strategy = build_strategy(config, max_tokens, rng=random.Random(1))
    race = CandidateRace(
        engine, [1, 2], SamplingSpec(max_tokens, temperature=0.4), request_id, Metrics(),
        governor=governor, load_mode=config.load,
    )
    race.strategy_used = strategy  # type: ignore[attr-defined]
    await race.run(strategy)
    return race


def governor(capacity: int = 8, deadline: float = 10.0, others: int = 0) -> LoadGovernor:
    return LoadGovernor(LoadPolicy(capacity, deadline), engine_busy=lambda: others)


async def test_at_rest_every_candidate_is_drawn() -> None:
    engine = FakeEngine(scripts=[Script([-0.2] * 4)])
    load = governor()
    race = await run_race(engine, load)
    assert len(race.candidates) == 8 and not race.cut
    assert race.strategy_used.stopped_by is None  # type: ignore[attr-defined]
    assert load.running == 0  # every sequence counted out


@pytest.mark.parametrize(("others", "drawn"), [(3, 5), (7, 1), (20, 1)])
async def test_under_load_a_spare_request_draws_only_what_fits(others: int, drawn: int) -> None:
    """`others` sequences already run (as an upstream reports them): the primary always goes."""
    engine = FakeEngine(scripts=[Script([-0.2] * 4)])
    race = await run_race(engine, governor(others=others + 1))  # + the request's own primary
    assert len(race.candidates) == len(engine.requests) == drawn
    assert race.strategy_used.stopped_by == "load"  # type: ignore[attr-defined]


async def test_under_load_a_waiting_request_draws_every_candidate() -> None:
    engine = FakeEngine(scripts=[Script([-0.2] * 4)])
    race = await run_race(engine, governor(others=50), SharpeningConfig(n=8, greedy_candidate=True))
    assert len(race.candidates) == 8 and race.strategy_used.stopped_by is None  # type: ignore[attr-defined]


async def test_a_newer_primary_cuts_the_extras_of_an_older_spare_request() -> None:
    """A's 8 candidates fill the capacity; B's primary arrives and takes the room of A's newest extra."""
    engine = FakeEngine(scripts=[Script([-0.1] * 30)], step_seconds=0.005)
    load = governor(capacity=8)
    older = asyncio.create_task(run_race(engine, load, request_id="a"))
    await asyncio.sleep(0.03)
    newer = await run_race(engine, load, request_id="b")
    first = await older
    assert len(newer.candidates) == 1  # no room for B's extras either
    assert first.cut == {7}
    assert first.candidates[7].status is CandidateStatus.PRUNED  # the newest extra goes first
    assert "a-7" in engine.aborted
    assert first.strategy_used.stopped_by == "load"  # type: ignore[attr-defined]
    assert load.running == 0


async def test_a_waiting_request_keeps_its_extras_when_newer_requests_come() -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 30)], step_seconds=0.005)
    load = governor(capacity=8)
    waiting = SharpeningConfig(n=8, greedy_candidate=True, load="wait")
    older = asyncio.create_task(run_race(engine, load, waiting, request_id="a"))
    await asyncio.sleep(0.03)
    await run_race(engine, load, request_id="b")
    assert not (await older).cut


async def test_the_deadline_cuts_extras_still_running_after_the_primary() -> None:
    """The primary (greedy, candidate 0) ends after 3 tokens; the extras would need 40."""
    engine = FakeEngine(scripts=[Script([-1.0] * 3)] + [Script([-0.01] * 40)] * 7, step_seconds=0.01)
    race = await run_race(engine, governor(deadline=0.5))
    assert len(race.cut) == 7
    assert race.strategy_used.stopped_by == "deadline"  # type: ignore[attr-defined]
    assert race.strategy_used.select(race.candidates) is race.candidates[0]  # type: ignore[attr-defined]
    assert all(engine.generated[f"r-{i}"] < 40 for i in range(1, 8))


async def test_extras_that_finish_within_the_deadline_are_chosen_on_score() -> None:
    engine = FakeEngine(
        scripts=[Script([-1.0] * 10), Script([-0.1] * 11)] + [Script([-0.01] * 80)] * 6, step_seconds=0.005
    )
    race = await run_race(engine, governor(deadline=0.5), max_tokens=100)
    chosen = race.strategy_used.select(race.candidates)  # type: ignore[attr-defined]
    assert chosen is race.candidates[1]  # -1.1 beats greedy's -10
    assert len(race.cut) == 6


@pytest.mark.parametrize("seed", range(12))
async def test_pruning_stays_exact_among_the_candidates_that_ran(seed: int) -> None:
    """No candidate pruned on score could have beaten the winner, whatever load cut."""
    rng = random.Random(seed)
    scripts = [
        Script([-rng.uniform(0.05, 1.0)] * rng.randint(2, 30), stops=rng.random() < 0.8) for _ in range(8)
    ]
    engine = FakeEngine(scripts=scripts, step_seconds=0.002)
    race = await run_race(engine, governor(deadline=rng.uniform(0.0, 2.0)))
    strategy = race.strategy_used  # type: ignore[attr-defined]
    chosen = strategy.select(race.candidates)
    assert chosen is rank(race.candidates, 0.0)[0]
    pruned_on_score = [
        c for c in race.candidates if c.status is CandidateStatus.PRUNED and c.index not in race.cut
    ]
    for candidate in pruned_on_score:
        script = scripts[candidate.index % len(scripts)]
        full = sum(script.logprobs)  # what it would have scored had it run to its end
        assert not script.stops or full < candidate_score(chosen, 0.0)


async def test_the_summary_and_the_metrics_say_what_load_did(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0] * 3)] + [Script([-0.01] * 60)] * 7, step_seconds=0.005)
    async with make_client(engine, load_deadline=0.2) as client:
        reply = (await client.post(CHAT, json={"messages": HELLO})).json()
        summary = reply["sharpening"]
        assert summary["load"] == "spare"
        assert summary["stopped_by"] == "deadline"
        assert summary["candidates_drawn"] == 8 and summary["candidates_cut"] == 7
        assert summary["candidates_pruned"] >= 7
        assert reply["usage"]["completion_tokens"] == summary["generated_tokens"]
        metrics = (await client.get("/metrics")).text
        cut = re.search(r'^whetstone_load_cut_candidates_total\{reason="deadline"\} (\S+)$', metrics, re.M)
        assert cut and float(cut.group(1)) == 7
        assert 'whetstone_load_requests_total{extent="primary_only",mode="spare"} 1.0' in metrics
        assert "whetstone_load_busy_sequences 0.0" in metrics


async def test_any_sharpening_field_means_wait(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0] * 3)] + [Script([-0.01] * 20)] * 7, step_seconds=0.001)
    async with make_client(engine, load_deadline=0.0) as client:
        body = {"messages": HELLO, "sharpening": {"n": 8}}
        summary = (await client.post(CHAT, json=body)).json()["sharpening"]
        assert summary["load"] == "wait" and summary["candidates_cut"] == 0
        spare = {"messages": HELLO, "sharpening": {"n": 8, "load": "spare"}}
        assert (await client.post(CHAT, json=spare)).json()["sharpening"]["load"] == "spare"
        reporting = {"messages": HELLO, "sharpening": {"return_candidates": True}}  # asks nothing of it
        assert (await client.post(CHAT, json=reporting)).json()["sharpening"]["load"] == "spare"


async def test_the_operator_can_turn_the_policy_off(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0] * 3)] + [Script([-0.01] * 20)] * 7, step_seconds=0.001)
    async with make_client(engine, load_policy="wait", load_deadline=0.0) as client:
        summary = (await client.post(CHAT, json={"messages": HELLO})).json()["sharpening"]
        assert summary["load"] == "wait" and summary["candidates_cut"] == 0
        assert summary["stopped_by"] is None


async def test_spare_is_refused_for_strategies_it_would_bias(make_client: ClientFactory) -> None:
    async with make_client() as client:
        body = {"messages": HELLO, "sharpening": {"strategy": "power", "alpha": 2.0, "load": "spare"}}
        reply = await client.post(CHAT, json=body)
        assert reply.status_code == 400
        assert reply.json()["error"]["param"] == "sharpening.load"


async def test_a_spare_request_holds_one_admission_slot(make_client: ClientFactory) -> None:
    """Its extras take spare capacity only, so the candidate limit counts its primary alone."""
    engine = FakeEngine(scripts=[Script([-0.1] * 20)], step_seconds=0.005)
    async with make_client(engine, max_inflight_candidates=4) as client:
        replies = await asyncio.gather(*(client.post(CHAT, json={"messages": HELLO}) for _ in range(4)))
        assert [r.status_code for r in replies] == [200] * 4  # each would hold 8 if it waited
