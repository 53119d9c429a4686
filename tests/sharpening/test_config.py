"""Resolved sharpening settings: what they derive (their checks: tests/test_request_sharpening.py)."""

from server.sharpening import SharpeningConfig


def test_strategy_none_draws_one_candidate() -> None:
    assert SharpeningConfig(strategy="none", n=8).candidate_count == 1
    assert SharpeningConfig(strategy="best_of_n", n=8).candidate_count == 8
