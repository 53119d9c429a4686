"""Strategies: best-of-n, rejection, power sampling and majority vote, as events and decisions."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from server.sharpening import (
    Abort,
    Candidate,
    CandidateStatus,
    Decision,
    Draw,
    SharpeningConfig,
    build_strategy,
)
from server.sharpening.strategies import Majority, Power, Rejection, power_sample


def done(index: int, logprob_sum: float, text: str = "", status: str = "stop") -> Candidate:
    c = Candidate(index=index, max_tokens=50)
    c.extend([7], [logprob_sum], text)
    c.finish(status)
    return c


def drawn(decisions: list[Decision]) -> list[Candidate]:
    """The candidates the decisions draw."""
    return [d.candidate for d in decisions if isinstance(d, Draw)]


def aborted(decisions: list[Decision]) -> list[int]:
    """Indices of the candidates the decisions abort."""
    return [c.index for d in decisions if isinstance(d, Abort) for c in d.candidates]


def end(candidate: Candidate, logprob_sum: float, status: str = "stop") -> None:
    """Play the engine: the candidate generates one token and ends."""
    candidate.extend([7], [logprob_sum], "")
    candidate.finish(status)


def test_best_of_n_draws_once_and_takes_the_max() -> None:
    s = build_strategy(SharpeningConfig(n=3), 50)
    cands = drawn(s.start())
    assert [c.index for c in cands] == [0, 1, 2]
    for c, lp in zip(cands, [-3.0, -1.0, -2.0], strict=True):
        end(c, lp)
        assert drawn(s.on_end(c)) == []
    assert s.select(cands) is cands[1]


def test_best_of_n_prefers_finished_over_truncated() -> None:
    s = build_strategy(SharpeningConfig(n=2), 50)
    cands = [done(0, -0.1, status="length"), done(1, -9.0)]
    assert s.select(cands) is cands[1]


def test_best_of_n_prunes_the_running_candidates_that_cannot_win() -> None:
    s = build_strategy(SharpeningConfig(n=3), 50)
    first, second, third = drawn(s.start())
    second.extend([7], [-5.0], "")
    assert aborted(s.on_tokens(second, [])) == []  # nothing has finished: no S* yet
    end(first, -1.0)
    assert aborted(s.on_end(first)) == [1]  # -5 < S* = -1; the fresh third one may still win
    third.extend([7], [-2.0], "")
    assert aborted(s.on_tokens(third, [])) == [2]


def test_rejection_accepts_the_first_candidate_over_threshold() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=8, threshold=-2.0), 50)
    assert isinstance(s, Rejection)
    first = drawn(s.start())
    assert len(first) == 4
    end(first[0], -5.0)
    assert s.on_end(first[0]) == []
    end(first[1], -1.5)
    assert aborted(s.on_end(first[1])) == [2, 3]  # accepted: the rest of the wave is stopped
    end(first[2], -0.5)
    assert s.on_end(first[2]) == []  # only the first acceptable one settles it
    assert s.select(first) is first[1]


def test_rejection_falls_back_to_the_best_after_n() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=6, threshold=-0.1, prune=False), 50)
    wave1 = drawn(s.start())
    decisions: list[Decision] = []
    for i, c in enumerate(wave1):
        end(c, -5.0 - i)
        decisions = s.on_end(c)
    wave2 = drawn(decisions)
    assert [c.index for c in wave2] == [4, 5]  # the next wave, up to n in all
    for c, lp in zip(wave2, [-1.0, -3.0], strict=True):
        end(c, lp)
        decisions = s.on_end(c)
    assert drawn(decisions) == []
    assert s.select(wave1 + wave2) is wave2[0]


def test_rejection_ignores_truncated_candidates_for_acceptance() -> None:
    s = build_strategy(SharpeningConfig(strategy="rejection", n=4, threshold=-1.0), 50)
    assert isinstance(s, Rejection)
    c = drawn(s.start())[0]
    end(c, -0.1, status="length")
    s.on_end(c)
    assert s.accepted is None


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
    picks = {build_strategy(cfg, 50, rng=random.Random(11)).select(cands).index for _ in range(5)}  # type: ignore[union-attr]
    assert len(picks) == 1
    power = build_strategy(cfg, 50)
    assert isinstance(power, Power)
    assert not power.pruner.enabled


def majority(pattern: str = r"Answer: (\d+)") -> Majority:
    s = build_strategy(SharpeningConfig(strategy="majority", answer_pattern=pattern), 50)
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
    assert build_strategy(SharpeningConfig(), 5).select([c]) is None
