"""Quality-benchmark statistics: selection rules, sub-sampling, Wilson intervals, lift (no server)."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from benchmarks.quality.stats import (
    BEST_OF_N,
    BEST_OF_N_MEAN,
    GREEDY,
    MAJORITY,
    ORACLE,
    SAMPLING,
    ItemSamples,
    Sample,
    best_answers,
    best_of,
    evaluate,
    greedy_agreement,
    lift_percent,
    majority_of,
    oracle_of,
    paired_difference,
    rank_positions,
    ranking_auc,
    subsets,
    summarize,
    top_answer_share,
)
from clients.stats import wilson_interval


def sample(
    logprob: float, answer: str | None = None, correct: bool = False, tokens: int = 10, finished: bool = True
) -> Sample:
    """A graded sample with defaults for what a test does not care about."""
    return Sample(logprob_sum=logprob, num_tokens=tokens, finished=finished, answer=answer, correct=correct)


def result(results: list, method: str, n: int):  # type: ignore[no-untyped-def]
    """The MethodResult of a method at N."""
    return next(r for r in results if r.method == method and r.n == n)


# Wilson intervals


def test_wilson_interval_takes_fractional_successes_and_shrinks_with_more_items() -> None:
    low, high = wilson_interval(0.4375 * 50, 50)
    assert low < 0.4375 < high
    narrow = wilson_interval(0.4375 * 500, 500)
    assert high - low > narrow[1] - narrow[0]


# Lift


def test_lift_is_relative_to_greedy_in_percent() -> None:
    assert lift_percent(0.40, 0.32) == pytest.approx(25.0)
    assert lift_percent(0.24, 0.32) == pytest.approx(-25.0)
    assert lift_percent(0.32, 0.32) == 0.0


def test_lift_over_a_zero_baseline_is_undefined() -> None:
    assert lift_percent(0.1, 0.0) is None


# Ranking and selection


def test_ranking_puts_finished_first_then_score_then_lower_index() -> None:
    samples = [sample(-1.0, finished=False), sample(-5.0), sample(-2.0), sample(-2.0)]
    assert rank_positions(samples, 0.0) == [3, 2, 0, 1]


def test_length_penalty_one_ranks_by_mean_log_likelihood_per_token() -> None:
    short = sample(-4.0, tokens=2)  # -2.0 per token
    long = sample(-10.0, tokens=20)  # -0.5 per token
    assert rank_positions([short, long], 0.0) == [0, 1]
    assert rank_positions([short, long], 1.0) == [1, 0]


def test_best_of_looks_only_inside_the_subset() -> None:
    positions = [2, 0, 3, 1]
    assert best_of(positions, [0, 1, 2, 3]) == 1
    assert best_of(positions, [0, 2, 3]) == 3
    assert best_of(positions, [2]) == 2


def test_majority_takes_the_most_frequent_answer_over_a_higher_score() -> None:
    samples = [sample(-1.0, "7"), sample(-5.0, "8"), sample(-6.0, "8")]
    positions = rank_positions(samples, 0.0)
    assert majority_of(samples, positions, [0, 1, 2]) == 1


def test_majority_ties_are_broken_by_score() -> None:
    samples = [sample(-5.0, "A"), sample(-1.0, "B"), sample(-9.0, "B"), sample(-2.0, "A")]
    positions = rank_positions(samples, 0.0)
    assert majority_of(samples, positions, [0, 1, 2, 3]) == 1
    assert majority_of(samples, positions, [0, 2, 3]) == 3  # A has two votes now


def test_majority_tie_break_prefers_finished_over_truncated() -> None:
    samples = [sample(-1.0, "A", finished=False), sample(-9.0, "B")]
    assert majority_of(samples, rank_positions(samples, 0.0), [0, 1]) == 1


def test_samples_without_an_answer_cast_no_vote() -> None:
    samples = [sample(-0.1), sample(-0.2), sample(-3.0, "4")]
    positions = rank_positions(samples, 0.0)
    assert majority_of(samples, positions, [0, 1, 2]) == 2


def test_majority_without_any_answer_falls_back_to_the_best_score() -> None:
    samples = [sample(-3.0), sample(-0.5), sample(-1.0)]
    assert majority_of(samples, rank_positions(samples, 0.0), [0, 1, 2]) == 1


def test_oracle_finds_a_correct_sample_when_the_subset_has_one() -> None:
    samples = [sample(-1.0), sample(-9.0, correct=True), sample(-2.0)]
    positions = rank_positions(samples, 0.0)
    assert oracle_of(samples, positions, [0, 1, 2]) == 1
    assert oracle_of(samples, positions, [0, 2]) == 0


# Sub-sampling


def test_subsets_enumerate_every_combination_when_there_are_few() -> None:
    rng = random.Random(0)
    assert subsets(32, 1, 200, rng) == [(i,) for i in range(32)]
    assert subsets(32, 32, 200, rng) == [tuple(range(32))]
    assert len(subsets(6, 3, 20, rng)) == 20


def test_random_subsets_have_the_right_size_distinct_members_and_a_fixed_seed() -> None:
    drawn = subsets(32, 8, 100, random.Random("seed"))
    assert len(drawn) == 100
    assert all(len(s) == len(set(s)) == 8 and list(s) == sorted(s) for s in drawn)
    assert all(0 <= i < 32 for s in drawn for i in s)
    assert drawn == subsets(32, 8, 100, random.Random("seed"))


def test_subsets_reject_impossible_sizes() -> None:
    with pytest.raises(ValueError):
        subsets(4, 5, 10, random.Random(0))
    with pytest.raises(ValueError):
        subsets(4, 0, 10, random.Random(0))


def expected_best_of_n(correct_by_rank: list[bool], n: int) -> float:
    """Exact chance that the best of a uniform random n-subset is correct (ranks 0 = best)."""
    pool = len(correct_by_rank)
    return sum(
        math.comb(pool - 1 - r, n - 1) / math.comb(pool, n) for r, ok in enumerate(correct_by_rank) if ok
    )


def test_subsampled_best_of_n_matches_the_exact_expectation() -> None:
    rng = random.Random(3)
    correct = [rng.random() < 0.4 for _ in range(32)]
    samples = tuple(sample(-float(rank), correct=ok) for rank, ok in enumerate(correct))
    item = ItemSamples("item", sample(0.0), samples)
    results = evaluate([item], [1, 2, 4, 8, 32], subset_count=4000, seed=1)
    for n in (1, 2, 4, 8, 32):
        exact = expected_best_of_n(correct, n)
        assert result(results, BEST_OF_N, n).accuracy == pytest.approx(exact, abs=0.02)
    assert result(results, BEST_OF_N, 1).accuracy == pytest.approx(sum(correct) / 32)


def test_at_n_one_every_rule_is_plain_sampling() -> None:
    samples = tuple(sample(-float(i), str(i % 3), correct=i % 3 == 0, tokens=1 + i) for i in range(32))
    results = evaluate([ItemSamples("x", sample(0.0), samples)], [1], subset_count=50)
    plain = result(results, SAMPLING, 1)
    for method in (BEST_OF_N, BEST_OF_N_MEAN, MAJORITY, ORACLE):
        assert result(results, method, 1).accuracy == pytest.approx(plain.accuracy)
        assert result(results, method, 1).mean_tokens == pytest.approx(plain.mean_tokens)


def test_evaluate_reports_greedy_and_each_rule_at_full_n() -> None:
    # Likelihood prefers the short wrong answer "3"; the vote prefers the frequent right answer "4".
    samples = (sample(-1.5, "3", tokens=3), *(sample(-4.0, "4", correct=True) for _ in range(3)))
    item = ItemSamples("x", sample(-2.0, "4", correct=True, tokens=5), samples)
    results = evaluate([item], [4])
    assert result(results, GREEDY, 1).accuracy == 1.0
    assert result(results, GREEDY, 1).mean_tokens == 5.0
    assert result(results, BEST_OF_N, 4).accuracy == 0.0
    assert result(results, BEST_OF_N, 4).mean_logprob == -1.5
    assert result(results, BEST_OF_N_MEAN, 4).accuracy == 1.0  # -1.5/3 per token loses to -4/10
    assert result(results, MAJORITY, 4).accuracy == 1.0
    assert result(results, ORACLE, 4).accuracy == 1.0


def test_subsampling_is_reproducible_with_the_same_seed() -> None:
    rng = random.Random(5)
    samples = tuple(sample(-rng.random() * 10, str(rng.randint(0, 3)), rng.random() < 0.5) for _ in range(32))
    items = [ItemSamples("x", sample(0.0), samples)]
    assert evaluate(items, [4, 8], seed=7) == evaluate(items, [4, 8], seed=7)


def test_summarize_averages_within_items_before_across_items() -> None:
    right, wrong = sample(-1.0, correct=True, tokens=4), sample(-3.0, tokens=8)
    summary = summarize(BEST_OF_N, 2, [[right, wrong, wrong, wrong], [right]])
    assert summary.accuracy == pytest.approx((0.25 + 1.0) / 2)
    assert summary.items == 2
    assert summary.mean_tokens == pytest.approx((7.0 + 4.0) / 2)
    assert (summary.ci_low, summary.ci_high) == pytest.approx(wilson_interval(0.625 * 2, 2))


def test_ranking_auc_counts_pairs_within_items_and_ties_as_half() -> None:
    good = ItemSamples("a", sample(0.0), (sample(-1.0, correct=True), sample(-2.0), sample(-1.0)))
    assert ranking_auc([good], 0.0) == pytest.approx(0.75)
    only_right = ItemSamples("b", sample(0.0), (sample(-1.0, correct=True),))
    assert ranking_auc([only_right], 0.0) is None


def test_greedy_agreement_compares_the_top_sample_with_greedy_and_skips_greedy_without_answer() -> None:
    agrees = ItemSamples("a", sample(0.0, "4"), (sample(-1.0, "4"), sample(-2.0, "5")))
    differs = ItemSamples("b", sample(0.0, "7"), (sample(-1.0, "4"), sample(-2.0, "7")))
    silent = ItemSamples("c", sample(0.0), (sample(-1.0, "4"),))
    assert greedy_agreement([agrees, differs, silent], 0.0) == 0.5
    assert greedy_agreement([silent], 0.0) is None


def test_paired_difference_is_the_mean_item_difference_with_a_normal_interval() -> None:
    samples = (sample(-1.0),)
    base = summarize(GREEDY, 1, [[sample(-1.0, correct=c)] for c in (True, False, False, False)])
    better = summarize(BEST_OF_N, 1, [[sample(-1.0, correct=c)] for c in (True, True, False, True)])
    mean, low, high = paired_difference(better, base)
    assert mean == pytest.approx(0.5)
    half = 1.959963984540054 * statistics.stdev([0, 1, 0, 1]) / 2
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half))
    assert paired_difference(base, base) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_difference(better, summarize(GREEDY, 1, [samples]))


def test_top_answer_share_counts_missing_answers_too() -> None:
    assert top_answer_share(["C", "C", "A", None]) == ("C", 0.5)
    assert top_answer_share([None, None, "B"]) == (None, pytest.approx(2 / 3))
    with pytest.raises(ValueError):
        top_answer_share([])


def test_best_answers_take_each_items_most_likely_sample() -> None:
    items = [
        ItemSamples("a", sample(0.0), (sample(-3.0, "A"), sample(-1.0, "C"))),
        ItemSamples("b", sample(0.0), (sample(-2.0, "B", tokens=2), sample(-3.0, "C", tokens=30))),
    ]
    assert best_answers(items, 0.0) == ["C", "B"]
    assert best_answers(items, 1.0) == ["C", "C"]
