"""LoRA training on a tiny random Llama: steps, loss masking, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.amortize.sft_set import SftDataError, SftExample
from server.amortize.train import TrainConfig, batch_order, collate, latest_checkpoint, train_adapter

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer, saved like a real model."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = tmp_path_factory.mktemp("tiny-llama")
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", *(str(d) for d in range(10)), "+", "="])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.save_pretrained(path)
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


def examples(count: int) -> list[SftExample]:
    return [
        SftExample(i, "1 + 1 =", [3, 1], "2", -1.0, 8, prompt_token_ids=[3, 12, 3, 13]) for i in range(count)
    ]


def test_batches_cover_each_epoch_once() -> None:
    steps = [batch_order(10, 4, step, seed=0) for step in range(3)]
    assert sorted(i for batch in steps for i in batch) == list(range(10))
    assert batch_order(10, 4, 3, seed=0) != steps[0] or batch_order(10, 4, 4, seed=0) != steps[1]


def test_collate_masks_prompt_and_padding() -> None:
    batch = collate([([5, 6, 7], 2), ([5, 8], 1)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7], [-100, 8, -100]]


def test_trains_checkpoints_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_steps=4, checkpoint_every=2, batch_size=2, learning_rate=1e-2)
    first = train_adapter(tiny_model, examples(6), tmp_path, config, progress=False)
    assert len(first.losses) == 4 and first.resumed_from == 0
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (saved["r"], saved["bias"], saved["use_dora"]) == (8, "none", False)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-000002"

    (tmp_path / "adapter_config.json").unlink()  # as if the run had stopped after step 2
    again = train_adapter(tiny_model, examples(6), tmp_path, config, progress=False)
    assert again.resumed_from == 2
    assert again.losses[:2] == first.losses[:2]
    assert again.losses[2:] == pytest.approx(first.losses[2:], rel=1e-4)


def test_resume_with_other_hyperparameters_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    train_adapter(
        tiny_model,
        examples(4),
        tmp_path,
        TrainConfig(max_steps=3, checkpoint_every=2, batch_size=2),
        progress=False,
    )
    with pytest.raises(SftDataError, match="other hyper-parameters"):
        train_adapter(
            tiny_model,
            examples(4),
            tmp_path,
            TrainConfig(max_steps=3, checkpoint_every=2, batch_size=2, rank=16),
            progress=False,
        )


def test_config_refuses_unservable_rank() -> None:
    with pytest.raises(ValueError, match="rank 12"):
        TrainConfig(rank=12)
