"""smc, mcmc and confidence: exactness on a toy model, the normaliser bound, the bookkeeping."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

import pytest

from server.engines import SamplingSpec
from server.metrics import Metrics
from server.race import CandidateRace
from server.sharpening import (
    Abort,
    Candidate,
    CandidateStatus,
    SharpeningConfig,
    TokenLogprob,
    build_strategy,
)
from server.sharpening.confidence import DeepConf, percentile
from server.sharpening.smc import EarlyDraw, effective_sample_size, systematic_resample
from server.sharpening.tempered import log_normaliser
from tests.sharpening.toy import LONGEST, ToyEngine, power_distribution, sequences

ALPHA = 3.0
RUNS = 1000
OUTCOMES = len(sequences())  # 15
# An exact sampler's empirical distribution of RUNS draws is within E + eps of the truth with
# probability >= 1 - exp(-2 RUNS eps^2) (McDiarmid: one draw moves the TV by <= 1/RUNS), where
# E <= 1/2 sum_s sqrt(p_s (1 - p_s) / RUNS) <= 1/2 sqrt(OUTCOMES / RUNS) (Cauchy-Schwarz).
# eps = 0.05 gives 99.3 %. smc and mcmc are not exact for finite n / steps; at the settings below
# their bias is small enough to stay inside the bound an exact sampler would meet.
TV_BOUND = 0.5 * math.sqrt(OUTCOMES / RUNS) + 0.05  # 0.111


def total_variation(config: SharpeningConfig) -> float:
    """TV distance between RUNS outputs of `config` on the toy model and pi^ALPHA."""

    async def outputs() -> Counter[tuple[int, ...]]:
        engine, metrics, found = ToyEngine(), Metrics(), Counter[tuple[int, ...]]()
        for run in range(RUNS):
            seed = 1000 * run
            strategy = build_strategy(config, LONGEST + 1, rng=random.Random(seed))
            race = CandidateRace(engine, [100], SamplingSpec(LONGEST + 1, seed=seed), f"r{run}", metrics)
            selected = strategy.select(await race.run(strategy))
            assert selected is not None
            found[tuple(selected.token_ids)] += 1
        assert metrics.inflight_candidates._value.get() == 0
        return found

    found = asyncio.run(outputs())
    target = power_distribution(ALPHA)
    return sum(abs(found[s] / RUNS - p) for s, p in target.items()) / 2


def test_the_toy_target_is_far_from_the_model() -> None:
    pi, target = power_distribution(1.0), power_distribution(ALPHA)
    assert sum(abs(pi[s] - target[s]) for s in pi) / 2 > 0.4


def test_smc_samples_pi_to_the_alpha() -> None:
    config = SharpeningConfig(strategy="smc", n=16, alpha=ALPHA, checkpoint_tokens=1)
    assert total_variation(config) < TV_BOUND


def test_mcmc_samples_pi_to_the_alpha() -> None:
    config = SharpeningConfig(strategy="mcmc", alpha=ALPHA, blocks=2, mh_steps=6)
    assert total_variation(config) < TV_BOUND


def test_power_with_few_candidates_is_farther_from_pi_to_the_alpha() -> None:
    """Importance resampling of 4 iid draws from pi stays close to pi: biased for small n.

    Measured at RUNS = 1000: power 0.163, smc with the same 4 particles 0.083.
    """
    power = total_variation(SharpeningConfig(strategy="power", n=4, alpha=ALPHA))
    smc = total_variation(SharpeningConfig(strategy="smc", n=4, alpha=ALPHA, checkpoint_tokens=1))
    assert power > TV_BOUND and power > 1.5 * smc, (power, smc)


def random_distribution(rng: random.Random, size: int) -> list[float]:
    weights = [rng.random() ** 4 for _ in range(size)]
    return sorted((math.log(w / sum(weights)) for w in weights), reverse=True)


@pytest.mark.parametrize("alpha", [1.0, 1.5, 4.0, 10.0])
def test_the_normaliser_from_top_k_is_within_its_bound(alpha: float) -> None:
    rng = random.Random(int(alpha * 10))
    for _ in range(200):
        logprobs = random_distribution(rng, 60)
        exact = math.log(math.fsum(math.exp(alpha * lp) for lp in logprobs))
        for k in (1, 5, 20):
            estimate, error = log_normaliser(logprobs[:k], alpha)
            assert abs(estimate - exact) <= error + 1e-12
        estimate, error = log_normaliser(logprobs, alpha)  # the whole vocabulary: exact
        assert estimate == pytest.approx(exact, abs=1e-9) and error < 1e-9


def test_effective_sample_size_and_systematic_resampling() -> None:
    assert effective_sample_size([1.0] * 8) == pytest.approx(8)
    assert effective_sample_size([1.0] + [0.0] * 7) == pytest.approx(1)
    particles = [Candidate(index=i, max_tokens=4) for i in range(4)]
    chosen = systematic_resample(particles, [0.0, 3.0, 1.0, 0.0], random.Random(0))
    assert Counter(c.index for c in chosen) == Counter({1: 3, 2: 1})


async def run_toy(config: SharpeningConfig, seed: int = 7) -> tuple[list[Candidate], object]:
    strategy = build_strategy(config, LONGEST + 1, rng=random.Random(seed))
    race = CandidateRace(ToyEngine(), [100], SamplingSpec(LONGEST + 1, seed=seed), "r", Metrics())
    return await race.run(strategy), strategy


async def test_smc_forks_particles_at_checkpoints_and_counts_what_it_spent() -> None:
    config = SharpeningConfig(strategy="smc", n=8, alpha=8.0, checkpoint_tokens=1, ess_threshold=1.0)
    candidates, strategy = await run_toy(config, seed=1)  # a run whose particles reach unequal weights
    forks = [c for c in candidates if c.parent is not None]
    assert len(candidates[:8]) == 8 and all(c.parent is None for c in candidates[:8])
    assert forks and all(c.prefix_tokens == candidates[c.parent].num_tokens for c in forks)
    assert all(c.token_ids[: c.prefix_tokens] == candidates[c.parent].token_ids for c in forks)
    ended = {CandidateStatus.PAUSED, CandidateStatus.FINISHED, CandidateStatus.PRUNED}  # pruned: early draw
    assert {c.status for c in candidates} <= ended
    assert strategy.spend.resamplings >= 1  # type: ignore[attr-defined]  # any unequal weights
    assert strategy.spend.normaliser_error == pytest.approx(0.0, abs=1e-9)  # type: ignore[attr-defined]


def test_the_early_draw_picks_each_particle_with_probability_proportional_to_its_final_weight() -> None:
    """Random runs of 3 particles whose weights fall and which end at random times: how often the
    early draw picks particle i matches the mean of w_i / sum w over the same runs (final weights).
    Particle 0 ends soonest and its weight falls fastest, so a draw that ignored the live weight
    would favour it."""
    runs, particles = 20000, 3
    ends, falls = (0.5, 0.25, 0.1), (0.3, 0.6, 0.9)  # per step: chance to end, least weight factor
    trajectories, draws = random.Random(1), random.Random(2)
    picked, expected = [0.0] * particles, [0.0] * particles
    decided_early = 0
    for _ in range(runs):
        log_weight = [0.0] * particles
        order: list[int] = []  # particles in the order they ended
        draw, choice = EarlyDraw(draws), None
        while len(order) < particles:
            for i in range(particles):
                if i not in order:
                    log_weight[i] += math.log(trajectories.uniform(falls[i], 1.0))
                    if trajectories.random() < ends[i]:
                        order.append(i)
            if choice is None:
                live = [log_weight[i] for i in range(particles) if i not in order]
                index = draw.decide([log_weight[i] for i in order], live)
                if index is not None:
                    choice = order[index]
                    decided_early += bool(live)
        assert choice is not None
        picked[choice] += 1
        final = [math.exp(w) for w in log_weight]
        for i in range(particles):
            expected[i] += final[i] / sum(final)
    for i in range(particles):
        p = expected[i] / runs
        assert abs(picked[i] / runs - p) < 4 * math.sqrt(p * (1 - p) / runs), (i, picked, expected)
    assert decided_early > runs / 4  # it does decide before the end, often


async def test_smc_draws_its_answer_early_and_aborts_the_particles_left() -> None:
    """Particles that end early carry most of the weight here, so the draw rarely waits for the rest;
    that the early draw keeps smc's distribution is test_smc_samples_pi_to_the_alpha's business."""
    config = SharpeningConfig(strategy="smc", n=8, alpha=ALPHA, checkpoint_tokens=1)
    early = 0
    for seed in range(40):
        candidates, strategy = await run_toy(config, seed)
        selected = strategy.select(candidates)  # type: ignore[attr-defined]
        assert selected is not None and selected.status is CandidateStatus.FINISHED
        if strategy.stopped_by == "early_selection":  # type: ignore[attr-defined]
            early += 1
            continued = {c.parent for c in candidates}
            left = [c for c in candidates if c.status is CandidateStatus.PRUNED
                    or (c.status is CandidateStatus.PAUSED and c.index not in continued)]
            assert left  # a particle that could still have grown was stopped
        else:
            assert strategy.stopped_by is None  # type: ignore[attr-defined]
    assert early >= 30


async def test_mcmc_proposals_are_forks_and_acceptances_are_counted() -> None:
    candidates, strategy = await run_toy(SharpeningConfig(strategy="mcmc", alpha=4.0, blocks=2, mh_steps=5))
    spend = strategy.spend  # type: ignore[attr-defined]
    proposals = [c for c in candidates[1:] if c.prefix_tokens < candidates[c.parent].num_tokens]  # type: ignore[index]
    assert spend.mh_proposals == len(proposals) and spend.mh_proposals in (5, 10)  # 5 per block reached
    assert 0 < spend.mh_accepted <= spend.mh_proposals
    assert all(c.parent is not None for c in candidates[1:])
    selected = strategy.select(candidates)  # type: ignore[attr-defined]
    assert selected is not None and selected.status is CandidateStatus.FINISHED


def traced(index: int, logprobs: list[float]) -> tuple[Candidate, list[TokenLogprob]]:
    """A candidate and its tokens, each with two equal alternatives of the given log-prob."""
    tokens = [TokenLogprob("x", lp, (("x", lp), ("y", lp))) for lp in logprobs]
    return Candidate(index=index, max_tokens=50), tokens


def test_confidence_warms_up_then_stops_unconfident_traces() -> None:
    config = SharpeningConfig(
        strategy="confidence", n=4, warmup=2, window=2, keep_percentile=50, answer_pattern=r"(\d)"
    )
    strategy = build_strategy(config, 50)
    assert isinstance(strategy, DeepConf)
    warm = [d.candidate for d in strategy.start()]  # type: ignore[union-attr]
    assert len(warm) == 2
    for candidate, lp, answer in zip(warm, [-1.0, -3.0], ["7", "8"], strict=True):
        _, tokens = traced(candidate.index, [lp, lp, lp])
        candidate.extend([1, 1, 1], [lp] * 3, f"answer {answer}", tokens)
        strategy.on_tokens(candidate, tokens)
        candidate.finish("stop")
        decisions = strategy.on_end(candidate)
    assert strategy.threshold == pytest.approx(2.0)  # confidences 1 and 3; keep the upper half
    late = [d.candidate for d in decisions]  # type: ignore[union-attr]
    assert [c.index for c in late] == [2, 3]
    _, sure = traced(2, [-2.0, -2.0])
    assert strategy.on_tokens(late[0], sure) == []
    _, unsure = traced(3, [-0.1, -0.1])
    assert strategy.on_tokens(late[1], unsure) == [Abort((late[1],))]
    late[0].extend([1, 1], [-2.0, -2.0], "answer 8", sure)
    late[0].finish("stop")
    late[1].prune()
    chosen = strategy.select(warm + late)
    assert chosen is warm[1]  # 7's trace is below the threshold; of the two 8s, the surer one


def test_confidence_percentile_interpolates() -> None:
    assert percentile([3.0, 1.0], 50) == pytest.approx(2.0)
    assert percentile([1.0, 2.0, 4.0], 75) == pytest.approx(3.0)
    assert percentile([5.0], 90) == 5.0


def test_confidence_vote_is_weighted_not_counted() -> None:
    config = SharpeningConfig(strategy="confidence", n=3, warmup=3, window=1, answer_pattern=r"(\d)")
    strategy = build_strategy(config, 50)
    assert isinstance(strategy, DeepConf)
    traces = [Candidate(index=i, max_tokens=50) for i in range(3)]
    for candidate, confidence, text in zip(traces, [1.0, 1.0, 5.0], ["1", "1", "2"], strict=True):
        candidate.extend([1], [-confidence], text)
        candidate.finish("stop")
        strategy.token_confidence[candidate.index] = [confidence]
    assert strategy.select(traces) is traces[2]  # one trace of confidence 5 outvotes two of 1


def test_a_fork_inherits_its_parents_prefix_at_a_cut() -> None:
    parent = Candidate(index=0, max_tokens=10)
    parent.extend([5], [-0.5], "Hel", [TokenLogprob("Hel", -0.5)])
    parent.extend([6, 7], [-1.0, -0.25], "lo!", [TokenLogprob("lo", -1.0), TokenLogprob("!", -0.25)])
    assert sorted(parent.cuts) == [0, 1, 3]  # the two-token piece cannot be cut in the middle
    child = parent.fork(4, 1)
    assert (child.parent, child.prefix_tokens, child.token_ids, child.text) == (0, 1, [5], "Hel")
    assert child.logprob_sum == pytest.approx(-0.5) and child.generated_tokens == 0
    whole = parent.fork(5, 3)
    assert whole.text == "Hello!" and whole.logprob_sum == parent.logprob_sum
    with pytest.raises(KeyError):
        parent.fork(6, 2)
