"""Strategies: best-of-n, rejection, power sampling and majority vote."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from server.sharpening import Candidate, CandidateStatus, SharpeningConfig, build_strategy
from server.sharpening.strategies import Majority, Power, Rejection, power_sample


def done(index: int, logprob_sum: float, text: str = "", status: str = "stop") -> Candidate:
    c = Candidate(index=index, max_tokens=50)
    c.extend([7], [logprob_sum], text)
    c.finish(status)
    return c


def test_best_of_n_draws_once_and_takes_the_max() -> None:
    s = build_strategy(SharpeningConfig(n=3))
    assert s.next_wave([]) == 3
    cands = [done(0, -3.0), done(1, -1.0), done(2, -2.0)]
    assert s.next_wave(cands) == 0
    assert s.select(cands) is cands[1]


def test_best_of_n_prefers_finished_over_truncated() -> None:
    s = build_strategy(SharpeningConfig(n=2))
    cands = [done(0, -0.1, status="length"), done(1, -9.0)]
    assert s.select(cands) is cands[1]


def test_rejection_accepts_the_first_candidate_over_threshold() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=8, threshold=-2.0))
    assert isinstance(s, Rejection)
    assert s.next_wave([]) == 4
    first = [done(0, -5.0), done(1, -1.5), done(2, -0.5), done(3, -4.0)]
    assert not s.accepts(first[0])
    assert s.accepts(first[1])
    assert not s.accepts(first[2])  # only the first acceptable one settles it
    assert s.next_wave(first) == 0
    assert s.select(first) is first[1]


def test_rejection_falls_back_to_the_best_after_n() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=6, threshold=-0.1))
    wave1 = [done(i, -5.0 - i) for i in range(4)]
    assert all(not s.accepts(c) for c in wave1)
    assert s.next_wave(wave1) == 2
    wave2 = [done(4, -1.0), done(5, -3.0)]
    assert all(not s.accepts(c) for c in wave2)
    assert s.next_wave(wave1 + wave2) == 0
    assert s.select(wave1 + wave2) is wave2[0]


def test_rejection_ignores_truncated_candidates_for_acceptance() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=4, threshold=-1.0))
    assert not s.accepts(done(0, -0.1, status="length"))


def power_frequencies(logps: list[float], alpha: float, draws: int, seed: int) -> Counter[int]:
    pool = [done(i, lp) for i, lp in enumerate(logps)]
    rng = random.Random(seed)
    return Counter(power_sample(pool, alpha, rng).index for _ in range(draws))


def chi_square(observed: list[int], expected: list[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 4.0])
def test_power_samples_follow_pi_to_the_alpha(alpha: float) -> None:
    """Candidates drawn from pi, resampled by power, are distributed as pi^alpha / Z."""
    pi = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    rng = random.Random(1)
    target = {y: p**alpha / sum(q**alpha for q in pi.values()) for y, p in pi.items()}
    observed: Counter[str] = Counter()
    trials = 3000
    for _ in range(trials):
        ys = rng.choices(list(pi), weights=list(pi.values()), k=64)
        pool = [done(i, math.log(pi[y]), text=y) for i, y in enumerate(ys)]
        observed[power_sample(pool, alpha, rng).text] += 1
    total_variation = sum(abs(observed[y] / trials - target[y]) for y in pi) / 2
    assert total_variation < 0.03, (observed, target)


def test_power_on_a_fixed_pool_is_proportional_to_weights() -> None:
    logps = [math.log(0.4), math.log(0.2), math.log(0.1)]
    alpha, draws = 3.0, 20000
    freq = power_frequencies(logps, alpha, draws, seed=3)
    weights = [math.exp((alpha - 1) * lp) for lp in logps]
    expected = [draws * w / sum(weights) for w in weights]
    assert chi_square([freq[i] for i in range(3)], expected) < 13.8  # p = 0.001 at 2 dof


def test_power_with_large_alpha_recovers_the_argmax() -> None:
    freq = power_frequencies([-3.0, -1.0, -1.2, -5.0], alpha=200.0, draws=500, seed=5)
    assert freq == Counter({1: 500})


def test_power_is_reproducible_with_a_seed() -> None:
    cfg = SharpeningConfig(strategy="power", alpha=2.0, seed=11)
    cands = [done(i, -1.0 - 0.1 * i) for i in range(8)]
    picks = {build_strategy(cfg, random.Random(11)).select(cands).index for _ in range(5)}  # type: ignore[union-attr]
    assert len(picks) == 1
    assert isinstance(build_strategy(cfg), Power)
    assert not build_strategy(cfg).prunes


def majority(pattern: str = r"Answer: (\d+)") -> Majority:
    s = build_strategy(SharpeningConfig(strategy="majority", answer_pattern=pattern))
    assert isinstance(s, Majority)
    return s


def test_majority_picks_the_most_frequent_answer_and_its_best_candidate() -> None:
    cands = [
        done(0, -1.0, "Answer: 5"),
        done(1, -3.0, "Answer: 7"),
        done(2, -2.5, "Answer: 7"),
        done(3, -0.5, "no answer here"),
    ]
    assert majority().select(cands) is cands[2]


def test_majority_breaks_ties_by_score() -> None:
    cands = [done(0, -4.0, "Answer: 1"), done(1, -2.0, "Answer: 2")]
    assert majority().select(cands) is cands[1]


def test_majority_without_any_match_falls_back_to_best_score() -> None:
    cands = [done(0, -4.0, "x"), done(1, -2.0, "y")]
    assert majority().select(cands) is cands[1]


def test_majority_without_group_uses_whole_match() -> None:
    s = majority(r"\d+")
    assert s.answer(done(0, -1.0, "it is 42.")) == "42"


def test_no_candidate_completed_selects_nothing() -> None:
    c = Candidate(index=0, max_tokens=5)
    c.status = CandidateStatus.PRUNED
    assert build_strategy(SharpeningConfig()).select([c]) is None
