"""Adaptive stopping: waves, the exact certificate (checked where the truth is computable), heuristics."""

from __future__ import annotations

import asyncio
import itertools
import math
import random

import pytest

from server.engines import SamplingSpec
from server.metrics import Metrics
from server.race import CandidateRace
from server.requests.sharpening import check_config
from server.sharpening import (
    Candidate,
    CandidateStatus,
    InvalidSharpening,
    SharpeningConfig,
    adaptive,
    build_strategy,
)
from server.sharpening.adaptive import (
    AdaptiveBestOfN,
    certified_mode,
    leader_holds,
    missing_mass,
    settled_vote,
    wave_size,
)
from tests.fakes import FakeEngine, Script
from tests.sharpening.toy import LONGEST, ToyEngine, probability, sequences

MODE = max(sequences(), key=probability)
UNFINISHED = [CandidateStatus.RUNNING, CandidateStatus.PRUNED, CandidateStatus.TRUNCATED]


def finished(index: int, sequence: tuple[int, ...], logprob_sum: float | None = None) -> Candidate:
    c = Candidate(index=index, max_tokens=LONGEST + 1)
    c.extend(list(sequence), [math.log(probability(sequence)) if logprob_sum is None else logprob_sum], "")
    c.finish("stop")
    return c


def test_waves_double_up_to_the_cap() -> None:
    sizes, drawn = [], 0
    while size := wave_size(drawn, 13):
        sizes.append(size)
        drawn += size
    assert sizes == [2, 2, 4, 5] and wave_size(0, 1) == 1


def test_the_certificate_never_names_a_sequence_that_is_not_the_mode() -> None:
    """Every subset of the toy model's sequences, drawn and finished: a certified one is the mode."""
    all_sequences = sequences()
    certified = 0
    for size in range(1, len(all_sequences) + 1):
        for subset in itertools.combinations(all_sequences, size):
            for slack in (0.0, 0.01):
                found = certified_mode([finished(i, s) for i, s in enumerate(subset)], slack)
                if found is not None:
                    assert tuple(found.token_ids) == MODE
                    certified += 1
    assert certified > 1000  # the test sees the rule fire, not only stay silent


def test_the_certificate_with_unfinished_prefixes_never_names_a_sequence_that_is_not_the_mode() -> None:
    """Random mixes of finished sequences and unfinished prefixes (pruned, running, cut) of the toy tree."""
    rng = random.Random(3)
    prefixes = sorted({s[:k] for s in sequences() for k in range(len(s))})
    certified = 0
    for _ in range(20000):
        chosen = rng.sample(sequences(), rng.randint(1, 8))
        drawn = [finished(i, s) for i, s in enumerate(chosen)]
        for prefix in rng.sample(prefixes, rng.randint(0, 4)):
            c = Candidate(index=len(drawn), max_tokens=LONGEST + 1)
            c.extend(list(prefix), [math.log(probability_of_prefix(prefix))], "")
            c.status = rng.choice(UNFINISHED)
            drawn.append(c)
        found = certified_mode(drawn, slack=0.0)
        if found is not None:
            assert tuple(found.token_ids) == MODE
            certified += 1
    assert certified > 100


def probability_of_prefix(prefix: tuple[int, ...]) -> float:
    """The probability that a sequence of the toy model starts with `prefix`."""
    return sum(probability(s) for s in sequences() if s[: len(prefix)] == prefix)


def test_the_certificate_needs_the_mass_and_a_finished_sequence() -> None:
    assert certified_mode([finished(0, MODE)]) is None  # 0.22 < the 0.78 not yet seen
    whole = [finished(i, s) for i, s in enumerate(sequences())]
    assert certified_mode(whole) is whole[sequences().index(MODE)]
    truncated = finished(0, MODE)
    truncated.status = CandidateStatus.TRUNCATED
    assert certified_mode([truncated]) is None
    assert certified_mode([finished(0, (2,), logprob_sum=-0.01)]) is not None  # p = 0.99 > 0.01 unseen


def test_the_certificate_allows_for_the_dtypes_drift() -> None:
    """A bound wide enough to let noise reorder the sequences withholds the certificate."""
    whole = [finished(i, s) for i, s in enumerate(sequences())]
    assert certified_mode(whole, 0.002, 0.01) is whole[sequences().index(MODE)]  # float32's bound
    assert certified_mode(whole, 0.025, 0.6) is None  # bfloat16's: the rivals may be as likely
    likely = [finished(0, (2,), logprob_sum=math.log(0.9))]
    assert certified_mode(likely, 0.002, 0.01) is likely[0]  # 0.89 at least, against 0.11 unseen
    assert certified_mode(likely, 0.025, 0.6) is None  # 0.48 at least, against 0.52 unseen


def test_a_sequence_inside_a_pruned_prefix_is_not_counted_twice() -> None:
    """Mass 0.3 + 0.28 is covered (0.25 lies inside the 0.28): 0.42 unseen may hold a better sequence."""
    best = finished(0, (5, 2), math.log(0.3))
    prefix = Candidate(index=1, max_tokens=8, token_ids=[6], logprob_sum=math.log(0.28))
    prefix.prune()
    inside = finished(2, (6, 7, 2), math.log(0.25))
    assert certified_mode([best, prefix, inside], slack=0.0) is None
    assert certified_mode([best, prefix], slack=0.0) is None
    outside = finished(3, (8, 2), math.log(0.15))
    assert certified_mode([best, prefix, inside, outside], slack=0.0) is best  # 0.27 unseen < 0.3


def test_the_slack_keeps_a_near_tie_uncertified() -> None:
    near = [finished(0, (3, 2), math.log(0.5)), finished(1, (4, 2), math.log(0.499))]
    assert certified_mode(near, slack=0.0) is near[0]
    assert certified_mode(near, slack=0.01) is None


async def adaptive_run(
    n: int, temperature: float, seed: int, from_model: bool = True
) -> tuple[list[Candidate], AdaptiveBestOfN]:
    strategy = build_strategy(SharpeningConfig(n=n, adaptive=True), LONGEST + 1, from_model=from_model)
    assert isinstance(strategy, AdaptiveBestOfN)
    sampling = SamplingSpec(LONGEST + 1, temperature=temperature, seed=seed)
    metrics = Metrics()
    race = CandidateRace(ToyEngine(), [100], sampling, f"r{seed}", metrics)
    candidates = await race.run(strategy)
    assert metrics.inflight_candidates._value.get() == 0
    return candidates, strategy


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_adaptive_best_of_n_stops_on_the_certificate_only_at_the_mode(
    temperature: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates drawn at any temperature: the raw probabilities of what was drawn prove the mode."""
    monkeypatch.setattr(adaptive, "drawn_again", lambda leader, candidates: False)  # the heuristic off

    async def runs() -> list[tuple[str | None, tuple[int, ...], int]]:
        found = []
        for seed in range(200):
            candidates, strategy = await adaptive_run(64, temperature, seed, from_model=False)
            selected = strategy.select(candidates)
            assert selected is not None
            found.append((strategy.stopped_by, tuple(selected.token_ids), len(candidates)))
        return found

    found = asyncio.run(runs())
    certified = [(sequence, drawn) for rule, sequence, drawn in found if rule == "certificate"]
    assert len(certified) > 150, found
    assert all(sequence == MODE for sequence, _ in certified)
    assert sum(drawn for _, drawn in certified) / len(certified) < 32  # measured: 16-21 of 64


def test_the_missing_mass_heuristic_is_only_for_samples_of_the_model() -> None:
    async def rules(from_model: bool) -> list[str | None]:
        return [(await adaptive_run(32, 1.0, seed, from_model))[1].stopped_by for seed in range(100)]

    heuristic, exact = asyncio.run(rules(True)), asyncio.run(rules(False))
    assert "missing_mass" in heuristic and "missing_mass" not in exact
    assert "repeated_leader" in exact  # the rule for any sampler stands in where draws are not the model's


def test_missing_mass_counts_singletons() -> None:
    a, b = (3, 2), (4, 2)
    assert missing_mass([finished(0, a), finished(1, a), finished(2, b)]) == pytest.approx(1 / 3)
    assert missing_mass([]) == 1.0


def test_the_posterior_that_the_leader_holds_to_the_cap() -> None:
    # two votes to none, two to come: the runner-up takes both with probability B(3, 3) / B(1, 3)
    assert leader_holds(2, 0, 2) == pytest.approx(1 - (1 / 30) / (1 / 3))
    assert leader_holds(3, 1, 1) == 1.0 and leader_holds(3, 1, 2) < 1.0  # a lead of 2 survives 1 vote
    assert leader_holds(2, 2, 0) == 0.0  # a tie is not a lead
    for a, b in ((2, 0), (4, 0), (5, 3)):  # many votes to come: P(Binomial(a + b + 1, 1/2) <= a)
        trials = a + b + 1
        truly_leads = sum(math.comb(trials, k) for k in range(a + 1)) / 2**trials
        assert leader_holds(a, b, 400) == pytest.approx(truly_leads, abs=2e-3)
    assert settled_vote("7", ["7"] * 4 + [None], 28, 0.95)
    assert not settled_vote("7", ["7"] * 4 + ["8"], 28, 0.95)
    assert settled_vote("7", ["7"] * 4 + ["8"], 2, 0.95)  # the lead of 3 survives any 2 votes
    assert not settled_vote(None, [None, None], 2, 0.5)


def test_the_posterior_matches_simulated_votes() -> None:
    """Draw the runner-up's share from its posterior, then the remaining votes: how often the leader holds."""
    rng = random.Random(7)
    for a, b, r in ((3, 1, 4), (2, 0, 6), (6, 3, 16)):
        holds = 0
        for _ in range(20_000):
            share = rng.betavariate(b + 1, a + 1)
            gained = sum(rng.random() < share for _ in range(r))
            holds += a + r - gained > b + gained
        assert holds / 20_000 == pytest.approx(leader_holds(a, b, r), abs=0.01)


def test_adaptive_is_only_for_strategies_that_draw_whole_candidates() -> None:
    with pytest.raises(InvalidSharpening) as refused:
        check_config(SharpeningConfig(strategy="smc", alpha=2.0, adaptive=True))
    assert refused.value.param == "sharpening.adaptive"
    with pytest.raises(InvalidSharpening):
        check_config(SharpeningConfig(adaptive=True, certainty=1.0))


def test_an_adaptive_first_wave_starts_with_candidate_zero() -> None:
    for strategy in ("best_of_n", "majority"):
        config = SharpeningConfig(strategy=strategy, n=8, adaptive=True, answer_pattern="(a)")
        decisions = build_strategy(config, 10, rng=random.Random(0)).start()
        assert [d.candidate.index for d in decisions] == [0, 1]  # type: ignore[union-attr]
    anchored = build_strategy(SharpeningConfig(n=8, adaptive=True, greedy_candidate=True), 10).start()
    assert [d.temperature for d in anchored] == [0.0, None]  # type: ignore[union-attr]  # the greedy one


async def fake_run(config: SharpeningConfig, words: list[str]) -> tuple[list[Candidate], object]:
    """Candidate i answers words[i % len] (a four-token trace) on the fake engine."""
    return await scripted_run(config, [Script([-1.0] * 4, words=("answer ", w)) for w in words])


async def scripted_run(config: SharpeningConfig, scripts: list[Script]) -> tuple[list[Candidate], object]:
    """Candidate i follows scripts[i % len] on the fake engine (a script's length names its sequence)."""
    strategy = build_strategy(config, 10)
    race = CandidateRace(FakeEngine(scripts=scripts), [1], SamplingSpec(10, top_logprobs=5), "r", Metrics())
    return await race.run(strategy), strategy


LIKELY, LESS, PRUNED = Script([-0.5] * 3), Script([-0.5] * 5), Script([-1.0] * 4)


@pytest.mark.parametrize(
    ("scripts", "drawn", "rule"),
    [
        ([LIKELY], 2, "repeated_leader"),  # the first wave draws the leader twice
        ([LIKELY, LESS], 4, "repeated_leader"),  # A, B, then A again: stop after the second wave
        ([LIKELY] + [PRUNED] * 15, 16, None),  # the leader is drawn once
    ],
)
async def test_the_repeated_leader_rule(scripts: list[Script], drawn: int, rule: str | None) -> None:
    candidates, strategy = await scripted_run(SharpeningConfig(n=16, adaptive=True), scripts)
    assert len(candidates) == drawn and strategy.stopped_by == rule  # type: ignore[attr-defined]


async def test_a_repeated_sequence_that_is_not_the_leader_does_not_stop() -> None:
    """B and A, then B and B: the repeated B is beaten by A, drawn once; only A drawn again would stop."""
    shorter = Script([-0.1, -1.9])  # B ends before A, less likely, so it is never pruned
    scripts = [shorter, LIKELY, shorter, shorter]
    candidates, strategy = await scripted_run(SharpeningConfig(n=4, adaptive=True), scripts)
    statuses = [c.status for c in candidates]
    assert statuses == [CandidateStatus.FINISHED] * 4 and strategy.stopped_by is None  # type: ignore[attr-defined]
    assert strategy.select(candidates) is candidates[1]  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", ["majority", "confidence"])
async def test_adaptive_votes_stop_once_the_leader_is_settled(strategy: str) -> None:
    config = SharpeningConfig(strategy=strategy, n=16, adaptive=True, warmup=2, answer_pattern=r"(\d)")
    agreed, settled = await fake_run(config, ["7"])
    assert len(agreed) == 4 and settled.stopped_by == "posterior"  # type: ignore[attr-defined]  # 31/32
    split, unsettled = await fake_run(config, ["7", "8"])
    assert len(split) == 16 and unsettled.stopped_by is None  # type: ignore[attr-defined]


async def test_a_lower_certainty_stops_sooner() -> None:
    config = SharpeningConfig(
        strategy="majority", n=16, adaptive=True, certainty=0.85, answer_pattern=r"(\d)"
    )
    candidates, strategy = await fake_run(config, ["7"])
    assert len(candidates) == 2 and strategy.stopped_by == "posterior"  # type: ignore[attr-defined]  # 7/8
