"""The SFT-set builder: prompt files, best-of-N answers (finished only), resume, traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clients import Candidate, Completion, Sharpening
from training.sft_set import (
    Prompt,
    SftDataError,
    build_sft_set,
    examples_from_traces,
    read_prompts,
)


def completion(text: str, status: str = "finished", logprob_sum: float = -2.0) -> Completion:
    chosen = Candidate(
        index=1,
        text=text,
        score=logprob_sum,
        logprob_sum=logprob_sum,
        num_tokens=2,
        status=status,
        finish_reason="stop",
        token_ids=(7, 2),
    )
    other = Candidate(
        index=0,
        text="worse",
        score=-9.0,
        logprob_sum=-9.0,
        num_tokens=3,
        status="pruned",
        finish_reason=None,
        token_ids=(5, 6, 8),
    )
    sharpening = Sharpening(
        "best_of_n", 2, 0.0, 1, logprob_sum, logprob_sum, 2, 2, 1, 1, 0, 5, (other, chosen)
    )
    return Completion("id", "m", text, "stop", None, sharpening, 0.1)


def test_read_prompts_accepts_text_and_messages(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "2 + 2 ="}\n\n{"messages": [{"role": "user", "content": "hi"}]}\n')
    assert read_prompts(path) == ["2 + 2 =", [{"role": "user", "content": "hi"}]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no prompts"),
        ("not json\n", "p.jsonl:1 is not JSON"),
        ('{"prompt": ""}\n', "p.jsonl:1: expected"),
        ('{"messages": [{"content": "x"}]}\n', "expected"),
    ],
)
def test_read_prompts_refuses_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(SftDataError, match=message):
        read_prompts(path)


def test_missing_prompts_file(tmp_path: Path) -> None:
    with pytest.raises(SftDataError, match="no such file"):
        read_prompts(tmp_path / "absent.jsonl")


def test_build_keeps_the_chosen_finished_answer_and_resumes(tmp_path: Path) -> None:
    prompts: list[Prompt] = ["a", "b", [{"role": "user", "content": "c"}]]
    asked: list[int] = []

    def sample(prompt: Prompt, index: int) -> Completion:
        asked.append(index)
        return completion(f"answer {index}", status="truncated" if index == 1 else "finished")

    out = tmp_path / "sft.jsonl"
    examples, dropped = build_sft_set(prompts, sample, 2, out, concurrency=2)
    assert dropped == 1
    assert [(e.index, e.prompt, e.completion_text) for e in examples] == [
        (0, "a", "answer 0"),
        (2, prompts[2], "answer 2"),
    ]
    assert examples[0].completion_token_ids == [7, 2]
    assert examples[0].logprob_sum == -2.0 and examples[0].n == 2
    assert sorted(asked) == [0, 1, 2]

    asked.clear()
    again, dropped_again = build_sft_set([*prompts, "d"], sample, 2, out)
    assert asked == [3]  # the first three were collected before
    assert [e.index for e in again] == [0, 2, 3] and dropped_again == 1
    with pytest.raises(SftDataError, match="collected with N=2, not 4"):
        build_sft_set(prompts, sample, 4, out)


def test_examples_from_traces_keep_sharpened_finished_answers() -> None:
    def trace(strategy: str, status: str, model: str = "base") -> dict[str, object]:
        return {
            "strategy": strategy,
            "model": model,
            "prompt": "p",
            "prompt_token_ids": [1, 2],
            "selected": {"token_ids": [3, 2], "text": "t", "logprob_sum": -1.5, "status": status},
            "settings": {"sharpening": {"n": 16}},
        }

    records = [
        trace("best_of_n", "finished"),
        trace("none", "finished"),
        trace("power", "truncated"),
        trace("majority", "finished", model="other"),
    ]
    examples = examples_from_traces(records, model="base")
    assert len(examples) == 1
    (example,) = examples
    assert (example.prompt_token_ids, example.completion_token_ids, example.n) == ([1, 2], [3, 2], 16)
    assert len(examples_from_traces(records)) == 2
    assert json.dumps(example.prompt) == '"p"'
