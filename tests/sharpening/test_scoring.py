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
