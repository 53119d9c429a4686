"""Validation of resolved sharpening settings."""

import pytest

from server.sharpening import InvalidSharpening, SharpeningConfig


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"strategy": "annealing"}, "sharpening.strategy"),
            ({"strategy": "power", "alpha": 2.0, "greedy_candidate": True}, "sharpening.greedy_candidate"),
            ({"strategy": "beam", "beam_width": 0}, "sharpening.beam_width"),
        ({"n": 0}, "sharpening.n"),
        ({"length_penalty": 1.5}, "sharpening.length_penalty"),
        ({"strategy": "rejection"}, "sharpening.threshold"),
        ({"strategy": "power"}, "sharpening.alpha"),
        ({"strategy": "power", "alpha": 0.5}, "sharpening.alpha"),
        ({"strategy": "majority"}, "sharpening.answer_pattern"),
        ({"strategy": "majority", "answer_pattern": "(unclosed"}, "sharpening.answer_pattern"),
    ],
)
def test_invalid_settings_name_the_parameter(kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidSharpening) as info:
        SharpeningConfig(**kwargs)
    assert info.value.param == param


def test_strategy_none_draws_one_candidate() -> None:
    assert SharpeningConfig(strategy="none", n=8).candidate_count == 1
    assert SharpeningConfig(strategy="best_of_n", n=8).candidate_count == 8
