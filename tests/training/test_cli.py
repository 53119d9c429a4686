"""`whetstone sharpen-sft` and `whetstone traces` on bad input: a clear message and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "base"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rank", "12"], "LoRA rank 12 cannot be served by vLLM"),
        (["--n", "0"], "--n must be at least 1"),
        (["--max-steps", "0"], "--grad-accum and --checkpoint-every must be at least 1"),
        (["--grad-accum", "0"], "--grad-accum and --checkpoint-every must be at least 1"),
    ],
)
def test_bad_options_fail_before_any_work(
    extra: list[str], message: str, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code, _, _ = run(
        [
            "sharpen-sft",
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(model_dir),
            *extra,
        ],
        capsys,
    )
    assert isinstance(code, str) and message in code
    assert not (tmp_path / "out").exists()


def test_empty_prompts_file_is_an_error(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n")
    code, _, _ = run(
        [
            "sharpen-sft",
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "o"),
            "--model",
            str(model_dir),
            "--url",
            "http://127.0.0.1:9",
        ],
        capsys,
    )
    assert code == f"whetstone sharpen-sft: {prompts} holds no prompts; write one JSON object a line"


def test_traces_without_usable_answers_is_an_error(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    greedy = {
        "strategy": "none",
        "prompt_token_ids": [1],
        "selected": {"token_ids": [2], "status": "finished"},
    }
    (traces / "traces-a-0000.jsonl").write_text(json.dumps(greedy) + "\n")
    code, _, _ = run(
        ["sharpen-sft", "--traces", str(traces), "--out", str(tmp_path / "o"), "--model", str(model_dir)],
        capsys,
    )
    assert isinstance(code, str) and "no usable examples" in code
    code, _, _ = run(
        [
            "sharpen-sft",
            "--traces",
            str(traces),
            "--n",
            "4",
            "--out",
            str(tmp_path / "o"),
            "--model",
            str(model_dir),
        ],
        capsys,
    )
    assert isinstance(code, str) and "--n applies to --prompts" in code


def test_not_a_model_and_an_existing_adapter_are_errors(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code, _, _ = run(
        ["sharpen-sft", "--prompts", str(prompts), "--out", str(tmp_path / "o"), "--model", str(tmp_path)],
        capsys,
    )
    assert isinstance(code, str) and "is not a Hugging Face model directory" in code
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "adapter_config.json").write_text("{}")
    code, _, _ = run(
        ["sharpen-sft", "--prompts", str(prompts), "--out", str(tmp_path / "o"), "--model", str(model_dir)],
        capsys,
    )
    assert isinstance(code, str) and "already holds a trained adapter" in code


def test_prompts_and_traces_are_exclusive_and_one_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["sharpen-sft", "--out", str(tmp_path)], capsys)
    assert code == 2 and "one of the arguments --prompts --traces is required" in err


def test_traces_summary_and_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = {
        "time": "2026-11-23T08:00:00+00:00",
        "model": "m",
        "strategy": "best_of_n",
        "prompt_token_ids": [1, 2],
        "selected": {"token_ids": [3], "score": -1.25},
        "generated_tokens": 9,
    }
    (tmp_path / "traces-a-0000.jsonl").write_text(json.dumps(record) + "\n")
    code, out, _ = run(["traces", str(tmp_path), "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert (summary["count"], summary["mean_score"], summary["generated_tokens"]) == (1, -1.25, 9)
    code, _, _ = run(["traces", str(tmp_path / "absent")], capsys)
    assert isinstance(code, str) and "not a directory of traces" in code


def test_serve_refuses_bad_lora_flags_before_starting(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(["serve", "--lora", "no-equals-sign", "--model", str(model_dir)], capsys)
    assert code == "whetstone: --lora 'no-equals-sign': write NAME=PATH, e.g. --lora sharp=./adapters/sharp"
    code, _, _ = run(["serve", "--lora", f"sharp={tmp_path}", "--model", str(model_dir)], capsys)
    assert isinstance(code, str) and "adapter_config.json is missing" in code


def test_an_unreachable_server_is_an_error_not_a_traceback(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code, _, _ = run(
        ["sharpen-sft", "--prompts", str(prompts), "--out", str(tmp_path / "o"), "--model", str(model_dir),
         "--url", "http://127.0.0.1:9"],
        capsys,
    )
    assert isinstance(code, str) and code.startswith("whetstone sharpen-sft: the server failed:")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alpha", "1"], "--alpha must be greater than 1"),
        (["--num-generations", "1"], "--num-generations must be at least 2"),
        (["--length-penalty", "2"], "--length-penalty must be between 0 and 1"),
        (["--rank", "3"], "LoRA rank 3 cannot be served by vLLM"),
    ],
)
def test_sharpen_rl_bad_options_fail_before_any_work(
    extra: list[str], message: str, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code, _, _ = run(["sharpen-rl", "--prompts", str(prompts), "--out", str(tmp_path / "out"),
                      "--model", str(model_dir), *extra], capsys)
    assert isinstance(code, str) and code.startswith("whetstone sharpen-rl: ") and message in code
    assert not (tmp_path / "out").exists()


def test_sharpen_rl_takes_the_base_models_traced_prompts(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.rl_cli import traced_prompts

    chat = [{"role": "user", "content": "hi"}]
    records = [{"prompt": chat}, {"prompt": "2 + 2 ="}, {"prompt": chat},
               {"prompt": "by an adapter", "settings": {"sampling": {"adapter": "sharp"}}}, {"prompt": None}]
    assert traced_prompts(records) == [chat, "2 + 2 ="]
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "traces-a-0000.jsonl").write_text(json.dumps(records[3]) + "\n")
    code, _, _ = run(["sharpen-rl", "--traces", str(traces), "--out", str(tmp_path / "o"),
                      "--model", str(model_dir)], capsys)
    assert isinstance(code, str) and "holds no prompt answered by the base model" in code


def test_sharpen_rl_trains_on_one_kind_of_prompt() -> None:
    from training.rl_cli import one_kind

    chat = [{"role": "user", "content": "hi"}]
    assert one_kind([chat, "a", chat]) == [chat, chat]
    assert one_kind(["a", chat, "b"]) == ["a", "b"]
    assert one_kind(["a"]) == ["a"]
