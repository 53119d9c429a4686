"""Per-request token budgets: the race stops every strategy alike, within the documented overshoot."""

from __future__ import annotations

import json
import random

import pytest

from server.engines import SamplingSpec
from server.metrics import Metrics
from server.race import CandidateRace
from server.sharpening import Candidate, CandidateStatus, SharpeningConfig, Strategy, build_strategy
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]
PATTERN = r"t(\d)"

EVERY_STRATEGY = {
    "best_of_n": SharpeningConfig(n=4),
    "rejection": SharpeningConfig(strategy="rejection", n=8, threshold=0.0),
    "greedy_candidate": SharpeningConfig(n=4, greedy_candidate=True),
    "beam": SharpeningConfig(strategy="beam", n=4, beam_width=2, checkpoint_tokens=3),
    "power": SharpeningConfig(strategy="power", n=4, alpha=2.0),
    "majority": SharpeningConfig(strategy="majority", n=4, answer_pattern=PATTERN),
    "smc": SharpeningConfig(strategy="smc", n=4, alpha=2.0, checkpoint_tokens=3),
    "mcmc": SharpeningConfig(strategy="mcmc", alpha=2.0, blocks=4, mh_steps=2),
    "confidence": SharpeningConfig(strategy="confidence", n=6, warmup=2, answer_pattern=PATTERN),
    "none": SharpeningConfig(strategy="none"),
}


def rambling(length: int = 30) -> FakeEngine:
    """Candidates that never stop by themselves, each a little less likely than the one before."""
    return FakeEngine(scripts=[Script([-0.1 * (i + 1)] * length, stops=False) for i in range(8)])


async def race_with_budget(
    engine: FakeEngine, config: SharpeningConfig, budget: int, max_tokens: int = 24
) -> tuple[CandidateRace, Strategy, list[Candidate]]:
    strategy = build_strategy(config, max_tokens, rng=random.Random(1))
    metrics = Metrics()
    race = CandidateRace(engine, [1, 2], SamplingSpec(max_tokens, seed=1), "r", metrics, budget=budget)
    candidates = await race.run(strategy)
    assert metrics.inflight_candidates._value.get() == 0
    return race, strategy, candidates


@pytest.mark.parametrize("name", list(EVERY_STRATEGY))
async def test_every_strategy_stops_at_the_budget_and_still_answers(name: str) -> None:
    engine = rambling()
    race, strategy, candidates = await race_with_budget(engine, EVERY_STRATEGY[name], budget=10)
    assert race.spent == 10  # the fake engine stops at once: no overshoot
    assert sum(c.generated_tokens for c in candidates) == race.spent  # forks' prefixes counted once
    assert sum(engine.generated.values()) == race.spent
    assert strategy.stopped_by == "budget"
    assert not [c for c in candidates if c.status is CandidateStatus.RUNNING]
    selected = strategy.select(candidates)
    assert selected is not None and selected.status is CandidateStatus.TRUNCATED
    assert len(engine.requests) == len(candidates)  # nothing refused reached the engine


@pytest.mark.parametrize("name", list(EVERY_STRATEGY))
@pytest.mark.parametrize("lag", [1, 3])
async def test_the_overshoot_is_at_most_the_tokens_in_flight(name: str, lag: int) -> None:
    """Each candidate running when the budget is spent may add `lag` tokens the engine was computing."""
    config = EVERY_STRATEGY[name]
    engine = rambling()
    engine.abort_lag = lag
    race, strategy, candidates = await race_with_budget(engine, config, budget=7)
    cut = [c for c in candidates if c.status is CandidateStatus.TRUNCATED]
    assert 7 <= race.spent <= 7 + lag * len(cut)
    assert sum(c.generated_tokens for c in candidates) == race.spent
    assert strategy.select(candidates) is not None


async def test_a_finished_candidate_beats_likelier_ones_the_budget_cut() -> None:
    engine = FakeEngine(scripts=[Script([-3.0, -3.0])] + [Script([-0.1] * 30, stops=False)] * 3)
    _, strategy, candidates = await race_with_budget(engine, SharpeningConfig(n=4, prune=False), 12)
    assert candidates[0].status is CandidateStatus.FINISHED
    assert all(c.status is CandidateStatus.TRUNCATED for c in candidates[1:])
    assert strategy.select(candidates) is candidates[0]


async def test_without_a_finished_candidate_the_best_truncated_one_is_chosen() -> None:
    _, strategy, candidates = await race_with_budget(rambling(), SharpeningConfig(n=4), budget=12)
    assert [c.num_tokens for c in candidates] == [3, 3, 3, 3]
    assert strategy.select(candidates) is candidates[0]  # -0.3 beats -0.6, -0.9, -1.2


async def test_a_budget_never_reached_changes_nothing() -> None:
    engine = FakeEngine(scripts=[Script([-0.5, -0.5])])
    race, strategy, candidates = await race_with_budget(engine, SharpeningConfig(n=3), budget=6)
    assert race.spent == 6 and strategy.stopped_by is None
    assert all(c.status is CandidateStatus.FINISHED for c in candidates)


async def test_rejection_draws_no_wave_past_the_budget() -> None:
    engine = FakeEngine(scripts=[Script([-1.0] * 3)])  # three tokens each, never over the threshold
    config = SharpeningConfig(strategy="rejection", n=8, threshold=0.0)
    race, strategy, candidates = await race_with_budget(engine, config, budget=12)
    assert len(candidates) == 4 and race.spent == 12  # the first wave spent it all
    assert strategy.stopped_by == "budget" and strategy.select(candidates) is candidates[0]


async def test_a_budgeted_request_says_so(make_client: ClientFactory) -> None:
    async with make_client(rambling()) as client:
        body = {"messages": HELLO, "max_tokens": 20, "sharpening": {"n": 4, "max_total_tokens": 9}}
        r = await client.post(CHAT, json=body)
        metrics = (await client.get("/metrics")).text
    assert r.status_code == 200, r.text
    data = r.json()
    s = data["sharpening"]
    assert s["stopped_by"] == "budget" and s["max_total_tokens"] == 9
    assert data["usage"]["completion_tokens"] == s["generated_tokens"] == 9
    assert data["choices"][0]["finish_reason"] == "length"
    assert 'whetstone_stopped_early_total{rule="budget"} 1.0' in metrics


async def test_the_server_cap_is_the_default_budget_and_a_ceiling(make_client: ClientFactory) -> None:
    async with make_client(rambling(), max_total_tokens=8) as client:
        plain = await client.post(CHAT, json={"messages": HELLO, "max_tokens": 20})
        over = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"max_total_tokens": 9}})
        bad = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"max_total_tokens": 0}})
    assert plain.status_code == 200 and plain.json()["sharpening"]["max_total_tokens"] == 8
    assert plain.json()["usage"]["completion_tokens"] == 8
    assert over.status_code == 400 and bad.status_code == 400
    error = over.json()["error"]
    assert error["param"] == "sharpening.max_total_tokens" and "8" in error["message"]
    assert "max_total_tokens" in json.dumps(bad.json())


async def test_a_budgeted_stream_carries_the_summary(make_client: ClientFactory) -> None:
    async with make_client(rambling()) as client:
        body = {"messages": HELLO, "stream": True, "max_tokens": 20,
                "sharpening": {"n": 2, "max_total_tokens": 5}}
        r = await client.post(CHAT, json=body)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert events[-1]["sharpening"]["stopped_by"] == "budget"
    assert events[-1]["sharpening"]["generated_tokens"] == 5
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
