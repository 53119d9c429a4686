"""A greedy candidate beside sampled ones, and the beam strategy, on the toy model."""

from __future__ import annotations

import asyncio
import random

import pytest

from server.engines import SamplingSpec
from server.metrics import Metrics
from server.race import CandidateRace
from server.sharpening import Candidate, CandidateStatus, SharpeningConfig, build_strategy
from tests.sharpening.toy import EOS, LONGEST, A, B, Table, ToyEngine, probability, sequences

# Greedy decoding says `a` (0.5) then `a` or `b` (0.35 each) and never reaches the mode `b EOS` (0.36).
GREEDY_MISSES_THE_MODE: Table = {None: (0.50, 0.40, 0.10), A: (0.35, 0.35, 0.30), B: (0.05, 0.05, 0.90)}
SEEDS = range(200)


async def run(
    config: SharpeningConfig, seed: int, table: Table | None = None, temperature: float = 1.0
) -> tuple[Candidate | None, list[Candidate]]:
    engine = ToyEngine() if table is None else ToyEngine(table=table)
    strategy = build_strategy(config, LONGEST + 1, rng=random.Random(seed))
    sampling = SamplingSpec(LONGEST + 1, temperature=temperature, seed=seed)
    metrics = Metrics()
    candidates = await CandidateRace(engine, [100], sampling, f"r{seed}", metrics).run(strategy)
    assert metrics.inflight_candidates._value.get() == 0
    return strategy.select(candidates), candidates


def test_the_toy_mode_is_not_greedy_decodings_answer() -> None:
    mode = max(sequences(), key=lambda s: probability(s, GREEDY_MISSES_THE_MODE))
    assert mode == (B, EOS)
    _, [greedy] = asyncio.run(run(SharpeningConfig(strategy="none"), 0, GREEDY_MISSES_THE_MODE, 0.0))
    assert greedy.token_ids[0] == A


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
async def test_pruning_stays_exact_with_a_greedy_candidate(length_penalty: float) -> None:
    for seed in SEEDS:
        chosen = []
        for prune in (True, False):
            config = SharpeningConfig(n=6, greedy_candidate=True, prune=prune, length_penalty=length_penalty)
            selected, candidates = await run(config, seed, temperature=0.7)
            assert selected is not None
            assert candidates[0].temperature == 0.0 and {c.temperature for c in candidates[1:]} == {0.7}
            chosen.append((selected.index, selected.token_ids))
        assert chosen[0] == chosen[1], f"seed {seed}: pruning changed the answer"


async def test_a_greedy_candidate_is_a_floor_under_the_selected_likelihood() -> None:
    for seed in SEEDS:
        selected, candidates = await run(SharpeningConfig(n=4, greedy_candidate=True), seed)
        greedy = candidates[0]
        assert greedy.token_ids == [A, EOS]  # the toy's greedy answer, drawn at temperature 0
        assert selected is not None and selected.logprob_sum >= greedy.logprob_sum


async def test_beam_finds_the_mode_that_greedy_misses() -> None:
    config = SharpeningConfig(strategy="beam", n=6, beam_width=2, checkpoint_tokens=1, greedy_candidate=True)
    found = 0
    for seed in SEEDS:
        selected, _ = await run(config, seed, GREEDY_MISSES_THE_MODE)
        assert selected is not None
        found += selected.token_ids == [B, EOS]
    assert found >= 0.8 * len(SEEDS)  # it misses when no sample of round 0 starts with b: 0.6^5 = 8 %


async def test_beam_keeps_the_most_likely_distinct_children_and_forks_them() -> None:
    config = SharpeningConfig(strategy="beam", n=6, beam_width=2, checkpoint_tokens=1, greedy_candidate=True)
    for seed in range(30):
        _, candidates = await run(config, seed, GREEDY_MISSES_THE_MODE)
        by_parent: dict[int | None, list[Candidate]] = {}
        for c in candidates:
            by_parent.setdefault(c.parent, []).append(c)
        forked = {p for p in by_parent if p is not None}
        for parent in forked:
            assert candidates[parent].status is CandidateStatus.PAUSED
            children = by_parent[parent]
            assert children[0].temperature == 0.0  # each beam's first child is greedy
            assert all(c.token_ids[: c.prefix_tokens] == candidates[parent].token_ids for c in children)
        rounds: dict[int, list[Candidate]] = {}  # paused children by length: one round each
        for c in candidates:
            if c.status is CandidateStatus.PAUSED:
                rounds.setdefault(c.num_tokens, []).append(c)
        finished = [c.logprob_sum for c in candidates if c.status is CandidateStatus.FINISHED]
        for paused in rounds.values():
            kept = [c for c in paused if c.index in forked]
            assert len(kept) <= 2 and len({tuple(c.token_ids) for c in kept}) == len(kept)
            if not kept:  # the search ended: no paused child could beat the best hypothesis
                assert all(c.logprob_sum < max(finished) for c in paused)
            dropped = [c for c in paused if c.index not in forked and tuple(c.token_ids) not in
                       {tuple(k.token_ids) for k in kept}]
            if len(kept) == 2:  # a full beam: nothing dropped was more likely than what was kept
                assert all(d.logprob_sum <= min(k.logprob_sum for k in kept) + 1e-12 for d in dropped)


async def test_beam_prunes_against_the_best_finished_hypothesis() -> None:
    config = SharpeningConfig(strategy="beam", n=6, beam_width=3, checkpoint_tokens=1, greedy_candidate=True)
    for seed in range(30):
        selected, candidates = await run(config, seed, GREEDY_MISSES_THE_MODE)
        assert selected is not None and selected.status is CandidateStatus.FINISHED
        best = max(c.logprob_sum for c in candidates if c.status is CandidateStatus.FINISHED)
        assert selected.logprob_sum == best
        for c in candidates:
            if c.status is CandidateStatus.PRUNED:
                assert c.logprob_sum < best  # only what could no longer win was aborted
