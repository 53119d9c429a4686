"""sharpen-sft's training on TRL's SFTTrainer, on a tiny random Llama: masking, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.adapter_checks import AdapterError
from training.errors import SftDataError, TrainingError
from training.runs import TrainOptions, check_run, note_run, run_record
from training.sft_set import SftExample
from training.sft_train import encode_examples, train_sft

OPTIONS = TrainOptions(max_steps=4, checkpoint_every=2, batch_size=2, learning_rate=1e-2)


class Interrupted(Exception):
    """Stands for a kill right after a checkpoint was written."""


def interrupt_after_checkpoint(step: int) -> Any:
    """A trainer callback that stops the run once the checkpoint of `step` is on disk."""
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == step:
                raise Interrupted

    return Stop()


def examples(count: int) -> list[SftExample]:
    return [SftExample(i, "1 + 1 =", [3, 1], "2", -1.0, 8, prompt_token_ids=[3, 12, 3, 13])
            for i in range(count)]


def test_loss_is_on_the_answer_tokens_only(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chat = SftExample(0, [{"role": "user", "content": "2 + 2"}], [5, 1], "4", -1.0, 8)
    rows = encode_examples(tokenizer, [examples(1)[0], chat], max_length=1024)
    assert rows[0] == {"input_ids": [3, 12, 3, 13, 3, 1], "completion_mask": [0, 0, 0, 0, 1, 1]}
    assert rows[1] == {"input_ids": [4, 12, 4, 13, 5, 1], "completion_mask": [0, 0, 0, 0, 1, 1]}
    with pytest.raises(SftDataError, match="no example has answer tokens within 4 tokens"):
        encode_examples(tokenizer, examples(2), max_length=4)


def test_trains_checkpoints_and_resumes_after_an_interruption(tiny_model: Path, tmp_path: Path) -> None:
    _, losses = train_sft(tiny_model, examples(6), tmp_path / "whole", OPTIONS, progress=False)
    assert len(losses) == 4 and losses[-1] < losses[0]
    saved = json.loads((tmp_path / "whole" / "adapter_config.json").read_text())
    assert (saved["r"], saved["bias"], saved["use_dora"]) == (8, "none", False)
    checkpoints = (tmp_path / "whole" / "checkpoints").glob("checkpoint-*")
    assert sorted(p.name for p in checkpoints) == ["checkpoint-2", "checkpoint-4"]

    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train_sft(tiny_model, examples(6), out, OPTIONS, progress=False,
                  callbacks=[interrupt_after_checkpoint(2)])
    assert not (out / "adapter_config.json").exists()
    (out / "checkpoints" / "checkpoint-3").mkdir()  # killed while writing the next checkpoint
    (out / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors").write_bytes(b"cut off")
    trainer, resumed = train_sft(tiny_model, examples(6), out, OPTIONS, progress=False)
    assert trainer.state.global_step == 4
    assert resumed == pytest.approx(losses, rel=1e-4)  # the first two from the checkpoint, the rest retrained


def test_a_finished_run_or_other_settings_are_refused(tmp_path: Path) -> None:
    check_run(tmp_path, run_record(OPTIONS, kind="sft"))
    note_run(tmp_path, run_record(OPTIONS, kind="sft"))
    check_run(tmp_path, run_record(OPTIONS, kind="sft"))  # the same command again: resume
    with pytest.raises(TrainingError, match=r"other settings \(rank\)"):
        check_run(tmp_path, run_record(TrainOptions(max_steps=4, checkpoint_every=2, batch_size=2,
                                                    learning_rate=1e-2, rank=16), kind="sft"))
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(TrainingError, match="already holds a trained adapter"):
        check_run(tmp_path, run_record(OPTIONS, kind="sft"))


def test_options_refuse_unservable_rank_and_zero_steps() -> None:
    with pytest.raises(AdapterError, match="rank 12"):
        TrainOptions(rank=12)
    with pytest.raises(TrainingError, match="at least 1"):
        TrainOptions(grad_accum=0)
