"""A request's sharpening rules: the candidate temperature (the server setting, else the model's
generation config, else 0.4) and each strategy's required and ranged settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.config import Settings
from server.requests.sharpening import (
    FALLBACK_CANDIDATE_TEMPERATURE,
    candidate_temperature,
    check_config,
    generation_config_temperature,
    resolve_sharpening,
)
from server.sharpening import InvalidSharpening, SharpeningConfig


def model_dir(tmp_path: Path, config: object) -> Path:
    (tmp_path / "generation_config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"temperature": 0.6, "top_p": 0.95}, 0.6),
        ({"temperature": 0}, 0.0),
        ({"eos_token_id": 2}, None),
        ({"temperature": "hot"}, None),
        ({"temperature": 7.0}, None),
        ([1, 2], None),
    ],
)
def test_the_generation_config_temperature_is_read_when_sane(
    tmp_path: Path, config: object, expected: float | None
) -> None:
    assert generation_config_temperature(model_dir(tmp_path, config)) == expected


def test_a_missing_or_broken_file_gives_none(tmp_path: Path) -> None:
    assert generation_config_temperature(tmp_path) is None
    (tmp_path / "generation_config.json").write_text("{not json")
    assert generation_config_temperature(tmp_path) is None
    assert generation_config_temperature(None) is None


def test_the_setting_wins_then_the_model_then_the_fallback(tmp_path: Path) -> None:
    directory = str(model_dir(tmp_path, {"temperature": 0.6}))
    assert candidate_temperature(Settings(model=directory, candidate_temperature=0.9)) == 0.9
    assert candidate_temperature(Settings(model=directory)) == 0.6
    assert candidate_temperature(Settings()) == FALLBACK_CANDIDATE_TEMPERATURE == 0.4


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
        check_config(SharpeningConfig(**kwargs))
    assert info.value.param == param


DRIFTS = [("float32", (0.002, 0.01)), ("bfloat16", (0.025, 0.6)), ("auto", (0.025, 0.6))]


@pytest.mark.parametrize(("dtype", "drift"), DRIFTS)
def test_the_certificate_allows_for_the_served_dtypes_drift(dtype: str, drift: tuple[float, float]) -> None:
    """The adaptive certificate's slack follows the dtype scores are computed in (an unresolved one,
    as an upstream's, counts as bfloat16)."""
    assert resolve_sharpening(Settings(dtype=dtype), None).score_drift == drift
