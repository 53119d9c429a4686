"""The `whetstone` command line: flags from Settings, help, clear errors."""

from __future__ import annotations

import pytest

from server.cli import build_parser, main, settings_from


def test_every_setting_is_a_flag_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--kv-cache-gib",
        "--default-strategy",
        "--api-key",
        "--tensor-parallel-size",
        "--engine-args",
        "--max-inflight-requests",
    ):
        assert flag in text
    assert "WHETSTONE_DEFAULT_N" in text


def test_flags_override_env_and_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHETSTONE_DEFAULT_N", "4")
    monkeypatch.setenv("WHETSTONE_PORT", "9001")
    args = build_parser().parse_args(
        ["serve", "--port", "9002", "--no-enforce-eager", "--engine-args", '{"max_num_seqs": 16}']
    )
    settings = settings_from(args)
    assert settings.port == 9002 and settings.default_n == 4
    assert settings.engine_args == {"max_num_seqs": 16} and settings.enforce_eager is False


def test_unknown_strategy_is_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--default-strategy", "annealing"])
    assert "invalid choice" in capsys.readouterr().err


def test_missing_model_directory_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model", str(tmp_path / "nope")])
    assert "is not a directory" in str(info.value.code)


def test_upstream_mode_refuses_flags_only_the_local_engine_honours() -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--upstream", "http://127.0.0.1:9", "--tool-call-parser", "hermes", "--lora", "a=/x"])
    assert "--lora, --tool-call-parser need the in-process vLLM engine" in str(info.value.code)


def test_out_of_range_setting_is_a_clear_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "70000"])
    assert "invalid settings" in str(info.value.code)


def test_engine_args_cannot_make_scores_processed_log_probabilities() -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--engine-args", '{"logprobs_mode": "processed_logprobs"}'])
    assert "raw_logprobs" in str(info.value.code)
