"""Exact pruning: the pruned selection always equals full best-of-N on the same streams."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.sharpening import Candidate, CandidateStatus, Pruner, rank


@dataclass
class Stream:
    """A scripted candidate: token log-probs, and whether it stops by itself at the end."""

    logprobs: list[float]
    stops: bool


streams_st = st.lists(
    st.builds(
        Stream,
        # a coarse grid as well as any float, so sums land within a tie tolerance of each other often
        logprobs=st.lists(st.floats(-8.0, 0.0) | st.sampled_from([0.0, -0.05, -0.1, -0.5, -1.0]),
                          min_size=1, max_size=12),
        stops=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def simulate(
    streams: list[Stream], schedule: list[int], lp: float, prune: bool, keep: int = 1, tol: float = 0.0
) -> list[Candidate]:
    """Advance candidates one token at a time in `schedule` order, pruning as the server does."""
    limit = 12
    pruner = Pruner(lp, enabled=prune, keep=keep, tie_tolerance=tol)
    cands = [Candidate(index=i, max_tokens=limit) for i in range(len(streams))]
    order = [i % len(streams) for i in schedule] + [i for i in range(len(streams))] * limit
    for i in order:
        cand, stream = cands[i], streams[i]
        if cand.done:
            continue
        pos = cand.num_tokens
        cand.extend([pos], [stream.logprobs[pos]], "t")
        if pos + 1 == len(stream.logprobs) and stream.stops:
            cand.finish("stop")
        elif pos + 1 == len(stream.logprobs) or pos + 1 == limit:
            cand.finish("length")
        if cand.done:
            pruner.record(cand)
            for loser in pruner.losers(cands):
                loser.prune()
        elif pruner.cannot_win(cand):
            cand.prune()
    return cands


@settings(max_examples=400, deadline=None)
@given(
    streams=streams_st,
    schedule=st.lists(st.integers(0, 7), max_size=60),
    lp=st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0),
    keep=st.integers(1, 3),
    tol=st.sampled_from([0.0, 0.0, 0.05, 0.1, 0.5, 1.0]),
)
# candidate 1 finishes at -1.0 first; candidate 0 falls to -1.1 after it, within the tolerance: it wins
@example(streams=[Stream([-1.0, -0.1], True), Stream([-1.0], True)], schedule=[0, 1], lp=0.0, keep=1, tol=0.5)
def test_pruned_selection_equals_full_best_of_n(
    streams: list[Stream], schedule: list[int], lp: float, keep: int, tol: float
) -> None:
    """Also with a tie tolerance: pruning never changes which candidate wins a tie."""
    full = rank(simulate(streams, schedule, lp, prune=False), lp, tol)
    pruned_cands = simulate(streams, schedule, lp, prune=True, keep=keep, tol=tol)
    pruned = rank(pruned_cands, lp, tol)
    assert [c.index for c in pruned[:keep]] == [c.index for c in full[:keep]]
    winners = {c.index for c in full[:keep]}
    assert not any(c.status is CandidateStatus.PRUNED and c.index in winners for c in pruned_cands)


def test_pruning_actually_saves_tokens_on_a_clear_case() -> None:
    streams = [Stream([-0.1, -0.1], True)] + [Stream([-3.0] * 12, True) for _ in range(3)]
    cands = simulate(streams, [], 0.0, prune=True)
    assert sum(c.num_tokens for c in cands) < 2 + 3 * 12
    assert sum(c.status is CandidateStatus.PRUNED for c in cands) == 3


def test_nothing_is_pruned_before_a_candidate_finishes() -> None:
    pruner = Pruner(0.0)
    running = Candidate(index=0, max_tokens=10)
    running.extend([1], [-50.0], "x")
    assert not pruner.cannot_win(running)


def test_ties_are_not_pruned() -> None:
    pruner = Pruner(0.0)
    done = Candidate(index=1, max_tokens=10)
    done.extend([1], [-2.0], "x")
    done.finish("stop")
    pruner.record(done)
    tied = Candidate(index=0, max_tokens=10)
    tied.extend([1], [-2.0], "x")
    assert not pruner.cannot_win(tied)


def test_a_lower_index_within_the_tie_tolerance_is_not_pruned() -> None:
    pruner = Pruner(0.0, tie_tolerance=0.5)
    done = Candidate(index=1, max_tokens=10)
    done.extend([1], [-2.0], "x")
    done.finish("stop")
    pruner.record(done)
    greedy = Candidate(index=0, max_tokens=10)
    greedy.extend([1], [-2.4], "x")  # below S* but within the tolerance: it would win the tie
    assert not pruner.cannot_win(greedy)
    greedy.extend([2], [-0.2], "y")  # now beyond it
    assert pruner.cannot_win(greedy)


def test_length_penalty_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        Pruner(1.5)
