"""SFT-sharpening on TRL's SFTTrainer: the best-of-N answers, loss on the answer tokens only.

The SFT set is handed to the trainer already tokenized (the prompt exactly as the server
prompted the engine, the answer as the token ids the server chose), so nothing is re-tokenized.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.engines.tokenizer import chat_prompt_ids, text_prompt_ids
from training.errors import SftDataError
from training.runs import TrainOptions, lora_config, train_and_save, trainer_arguments
from training.sft_set import SftExample

logger = logging.getLogger(__name__)
MAX_LENGTH = 1024


def encode_examples(
    tokenizer: Any, examples: Sequence[SftExample], max_length: int
) -> list[dict[str, list[int]]]:
    """Trainer rows: `input_ids` (prompt + answer) and `completion_mask` (1 on the answer's tokens)."""
    rows = []
    for example in examples:
        prompt_ids = example.prompt_token_ids
        if prompt_ids is None:
            prompt = example.prompt
            prompt_ids = text_prompt_ids(tokenizer, prompt) if isinstance(prompt, str) else \
                chat_prompt_ids(tokenizer, prompt)
        ids = (prompt_ids + example.completion_token_ids)[:max_length]
        if len(prompt_ids) < len(ids):
            rows.append({"input_ids": ids, "completion_mask": [0] * len(prompt_ids) +
                         [1] * (len(ids) - len(prompt_ids))})
    if not rows:
        raise SftDataError(f"no example has answer tokens within {max_length} tokens")
    return rows


def sft_trainer(
    model_dir: Path, examples: Sequence[SftExample], out_dir: Path, options: TrainOptions,
    progress: bool = True, callbacks: Sequence[Any] = (),
) -> Any:
    """An SFTTrainer for a LoRA adapter on `examples`, checkpointing under OUT/checkpoints."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = encode_examples(tokenizer, examples, MAX_LENGTH)
    config = SFTConfig(
        **trainer_arguments(options, out_dir, progress),
        completion_only_loss=True,  # the prompt's tokens carry no loss
        max_length=MAX_LENGTH,
        dataset_num_proc=None,
    )
    return SFTTrainer(
        model=str(model_dir), args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        peft_config=lora_config(options), callbacks=list(callbacks),
    )


def train_sft(
    model_dir: Path, examples: Sequence[SftExample], out_dir: Path, options: TrainOptions,
    progress: bool = True, callbacks: Sequence[Any] = (),
) -> tuple[Any, list[float]]:
    """Train (or resume) the SFT adapter into `out_dir`; the trainer and the loss of every step."""
    trainer = sft_trainer(model_dir, examples, out_dir, options, progress, callbacks)
    log = train_and_save(trainer, out_dir)
    return trainer, [float(row["loss"]) for row in log]
