"""Scores, bounds and ranking."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.sharpening import Candidate, CandidateStatus, rank, score, score_upper_bound


def make(index: int, logprobs: list[float], status: CandidateStatus) -> Candidate:
    c = Candidate(index=index, max_tokens=100)
    c.extend(list(range(len(logprobs))), logprobs, "x" * len(logprobs))
    c.status = status
    return c


def test_score_is_raw_sum_without_length_penalty() -> None:
    assert score(-12.5, 10, 0.0) == -12.5


def test_score_is_token_mean_with_length_penalty_one() -> None:
    assert score(-12.5, 10, 1.0) == pytest.approx(-1.25)


def test_score_of_empty_sequence_does_not_divide_by_zero() -> None:
    assert score(0.0, 0, 1.0) == 0.0


@given(
    prefix=st.lists(st.floats(-20, 0), min_size=0, max_size=20),
    rest=st.lists(st.floats(-20, 0), min_size=0, max_size=20),
    extra_limit=st.integers(0, 30),
    lp=st.floats(0, 1),
)
def test_bound_is_never_below_the_final_score(
    prefix: list[float], rest: list[float], extra_limit: int, lp: float
) -> None:
    total = prefix + rest
    limit = max(len(total), 1) + extra_limit
    bound = score_upper_bound(sum(prefix), limit, lp)
    assert bound >= score(sum(total), len(total), lp) - 1e-9


def test_rank_puts_finished_before_truncated_whatever_the_score() -> None:
    truncated = make(0, [-0.1], CandidateStatus.TRUNCATED)
    finished = make(1, [-9.0, -9.0], CandidateStatus.FINISHED)
    assert [c.index for c in rank([truncated, finished], 0.0)] == [1, 0]


def test_rank_orders_by_score_then_index_and_drops_pruned() -> None:
    a = make(0, [-1.0, -1.0], CandidateStatus.FINISHED)
    b = make(1, [-0.5], CandidateStatus.FINISHED)
    c = make(2, [-2.0], CandidateStatus.FINISHED)  # ties with a at lp=0, loses on index
    d = make(3, [-0.01], CandidateStatus.PRUNED)
    assert [x.index for x in rank([a, b, c, d], 0.0)] == [1, 0, 2]


def test_rank_with_length_penalty_prefers_higher_mean() -> None:
    long_good = make(0, [-0.2] * 10, CandidateStatus.FINISHED)  # sum -2, mean -0.2
    short_bad = make(1, [-1.5], CandidateStatus.FINISHED)  # sum -1.5, mean -1.5
    assert rank([long_good, short_bad], 0.0)[0].index == 1
    assert rank([long_good, short_bad], 1.0)[0].index == 0


def test_candidate_tracks_sum_and_finish_reason() -> None:
    c = Candidate(index=0, max_tokens=4)
    c.extend([5, 6], [-1.0, -0.5], "ab")
    c.finish("length")
    assert c.status is CandidateStatus.TRUNCATED
    assert math.isclose(c.logprob_sum, -1.5) and c.num_tokens == 2 and c.text == "ab"


def test_scores_within_the_tie_tolerance_are_won_by_the_lower_index() -> None:
    greedy = make(0, [-2.0], CandidateStatus.FINISHED)
    sampled = make(1, [-1.8], CandidateStatus.FINISHED)
    assert [c.index for c in rank([sampled, greedy], 0.0)] == [1, 0]
    assert [c.index for c in rank([sampled, greedy], 0.0, tie_tolerance=0.25)] == [0, 1]
    assert [c.index for c in rank([sampled, greedy], 0.0, tie_tolerance=0.1)] == [1, 0]


def test_ties_are_measured_from_the_best_score_left_not_chained() -> None:
    # 0 is within 0.3 of 1 and 1 of 2, but 0 is not within 0.3 of the best (2): 1 wins, then 2, then 0
    cands = [make(i, [lp], CandidateStatus.FINISHED) for i, lp in enumerate([-1.4, -1.2, -1.0])]
    assert [c.index for c in rank(cands, 0.0, tie_tolerance=0.3)] == [1, 2, 0]


def test_a_tie_never_lets_a_truncated_candidate_past_a_finished_one() -> None:
    truncated = make(0, [-1.0], CandidateStatus.TRUNCATED)
    finished = make(1, [-1.1], CandidateStatus.FINISHED)
    assert [c.index for c in rank([truncated, finished], 0.0, tie_tolerance=1.0)] == [1, 0]


@given(
    scores=st.lists(st.sampled_from([-3.0, -2.9, -2.5, -2.45, -2.0, -1.0]), min_size=1, max_size=8),
    tol=st.sampled_from([0.0, 0.05, 0.1, 0.5]),
)
def test_tie_ranking_depends_on_the_scores_only_not_on_the_order_given(
    scores: list[float], tol: float
) -> None:
    cands = [make(i, [s], CandidateStatus.FINISHED) for i, s in enumerate(scores)]
    ranked = [c.index for c in rank(cands, 0.0, tol)]
    assert ranked == [c.index for c in rank(cands[::-1], 0.0, tol)]
    best = max(scores)
    assert ranked[0] == min(i for i, s in enumerate(scores) if s >= best - tol)
