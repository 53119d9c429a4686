"""Pure statistics: percentiles, Wilson intervals, answer checkers, A/B verdicts."""

from __future__ import annotations

import pytest

from clients.checkers import checker, exact_match, last_number, numeric_match
from clients.comparison import Output, head_to_head, judge, summarize, summarize_side
from clients.stats import distribution, percentile, wilson_interval


def test_percentiles_interpolate_linearly() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([3.0], 99) == 3.0
    assert percentile([4.0, 1.0], 0) == 1.0 and percentile([4.0, 1.0], 100) == 4.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution() -> None:
    assert distribution([]) is None
    d = distribution([1.0, 2.0, 3.0, 4.0])
    assert d is not None
    assert (d["p50"], d["mean"], d["min"], d["max"]) == (2.5, 2.5, 1.0, 4.0)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_interval_known_values(successes: int, trials: int, low: float,
                                      high: float) -> None:
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow = wilson_interval(50, 100, confidence=0.5)
    wide = wilson_interval(50, 100, confidence=0.99)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_numeric_checker_takes_the_last_number() -> None:
    assert last_number("3 apples and 4 pears, so 7.") == 7.0
    assert last_number("total: 1,234.5 units") == 1234.5
    assert last_number("-12") == -12.0 and last_number("none") is None
    assert numeric_match("The answer is 42.", "42")
    assert numeric_match("x = 42.0", "42")
    assert not numeric_match("42 or maybe 43", "42")
    assert not numeric_match("no number", "42")
    assert not numeric_match("42", "forty-two")


def test_exact_and_auto_checkers() -> None:
    assert exact_match("  Paris. ", "paris")
    assert exact_match('"New   York"', "new york")
    assert not exact_match("Paris, France", "Paris")
    auto = checker("auto")
    assert auto("it is 12", "12") and auto("Paris!", "paris") and not auto("Lyon", "Paris")
    assert checker("numeric") is numeric_match


def test_judge_by_correctness_then_log_likelihood() -> None:
    right = Output(text="1", logprob_sum=-9.0, correct=True)
    wrong = Output(text="2", logprob_sum=-1.0, correct=False)
    assert judge(wrong, right) == "b" and judge(right, wrong) == "a"
    assert judge(right, right) == "tie"
    likely = Output(logprob_sum=-1.0)
    unlikely = Output(selected_score=-4.0)
    assert judge(unlikely, likely) == "b" and judge(likely, unlikely) == "a"
    assert judge(likely, Output(logprob_sum=-1.0 + 1e-9)) == "tie"
    assert judge(likely, Output(error="http_429: busy")) is None
    assert judge(Output(), likely) is None


def test_side_summary_numbers() -> None:
    outputs = [
        Output(text="a", logprob_sum=-1.0, num_tokens=4, generated_tokens=10, latency=1.0,
               correct=True),
        Output(text="b", logprob_sum=-3.0, num_tokens=6, generated_tokens=20, latency=3.0,
               correct=False),
        Output(text="c", selected_score=-5.0, num_tokens=2, length_estimated=True,
               generated_tokens=30, latency=2.0, correct=True),
        Output(error="http_503: down"),
    ]
    s = summarize_side(outputs)
    assert (s["items"], s["errors"], s["checked"], s["correct"]) == (4, 1, 3, 2)
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_interval(2, 3))
    assert s["mean_log_likelihood"] == pytest.approx(-3.0)
    assert s["median_log_likelihood"] == pytest.approx(-3.0)
    assert s["mean_length"] == pytest.approx(4.0) and s["lengths_estimated"] == 1
    assert s["mean_generated_tokens"] == pytest.approx(20.0)
    assert s["mean_latency"] == pytest.approx(2.0)
    empty = summarize_side([Output(logprob_sum=-1.0, num_tokens=1)])
    assert empty["accuracy"] is None and empty["ci_low"] is None


def test_head_to_head_and_summary() -> None:
    a = [Output(correct=False), Output(correct=True), Output(logprob_sum=-2.0),
         Output(error="timeout: slow")]
    b = [Output(correct=True), Output(correct=True), Output(logprob_sum=-1.0),
         Output(logprob_sum=-1.0)]
    record = head_to_head(a, b)
    assert record == {"b_wins": 2, "ties": 1, "a_wins": 0, "undecided": 1,
                      "by_correctness": 2, "by_log_likelihood": 1}
    summary = summarize({"A": a, "B": b}, "A")
    assert summary["baseline"] == "A" and set(summary["sides"]) == {"A", "B"}
    assert summary["versus_baseline"] == {"B": record}
