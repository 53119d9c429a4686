"""LoRA training on the SFT set: a plain torch loop over peft, on CPU, with checkpoints and resume.

torch, transformers and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from server.amortize.adapters import check_rank
from server.amortize.sft_set import SftDataError, SftExample

logger = logging.getLogger(__name__)

# The projections vLLM's LoRA layers serve for Llama-style models.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one LoRA run (the paper's: rank 8-16, lr 3e-4, linear decay)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    learning_rate: float = 3e-4
    batch_size: int = 8
    max_steps: int = 100
    checkpoint_every: int = 25
    seed: int = 0
    max_length: int = 1024
    target_modules: tuple[str, ...] = TARGET_MODULES

    def __post_init__(self) -> None:
        check_rank(self.rank)
        if self.max_steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("max_steps, batch_size and checkpoint_every must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError("the learning rate must be positive")


@dataclass
class TrainResult:
    """What a run did: the loss of every optimizer step and where it resumed from."""

    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0


def encode_examples(
    tokenizer: Any, examples: Sequence[SftExample], max_length: int
) -> list[tuple[list[int], int]]:
    """(prompt + answer token ids, prompt length) per example, tokenized as the engine does."""
    encoded = []
    for example in examples:
        prompt_ids = example.prompt_token_ids
        if prompt_ids is None:
            if isinstance(example.prompt, str):
                prompt_ids = list(tokenizer.encode(example.prompt))
            else:
                prompt_ids = list(tokenizer.apply_chat_template(
                    example.prompt, add_generation_prompt=True, tokenize=True, return_dict=False
                ))
        ids = (prompt_ids + example.completion_token_ids)[:max_length]
        if len(prompt_ids) < len(ids):
            encoded.append((ids, len(prompt_ids)))
    if not encoded:
        raise SftDataError(f"no example has answer tokens within {max_length} tokens")
    return encoded


def batch_order(count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of the examples in optimizer step `step` (0-based): seeded shuffles, epoch after epoch."""
    per_epoch = max(1, -(-count // batch_size))
    epoch, position = divmod(step, per_epoch)
    order = list(range(count))
    random.Random(seed + epoch).shuffle(order)
    return order[position * batch_size:(position + 1) * batch_size]


def collate(rows: list[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Right-padded input ids, attention mask and labels (prompt and padding ignored by the loss)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for row, (ids, prompt_len) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint of the most steps under OUT/checkpoints, if any."""
    found = sorted((out_dir / CHECKPOINTS).glob("step-*"))
    return found[-1] if found else None


def train_adapter(
    model_dir: Path, examples: Sequence[SftExample], out_dir: Path, config: TrainConfig, progress: bool = True
) -> TrainResult:
    """Train a LoRA adapter on `examples`, resuming from OUT's last checkpoint; save it into `out_dir`."""
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = encode_examples(tokenizer, examples, config.max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = lora_model(model_dir, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / config.max_steps)
    result = resume(model, optimizer, schedule, config, out_dir)
    model.train()
    bar = tqdm(total=config.max_steps, initial=result.resumed_from, desc="sharpen-sft", unit="step",
               disable=not progress)
    for step in range(result.resumed_from, config.max_steps):
        picked = batch_order(len(rows), config.batch_size, step, config.seed)
        loss = model(**collate([rows[i] for i in picked], pad_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        result.losses.append(float(loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{result.losses[-1]:.4f}")
        done = step + 1
        if done % config.checkpoint_every == 0 and done < config.max_steps:
            where = out_dir / CHECKPOINTS / f"step-{done:06d}"
            save_checkpoint(model, optimizer, schedule, config, result.losses, where)
    bar.close()
    model.save_pretrained(out_dir)
    return result


def lora_model(model_dir: Path, config: TrainConfig) -> Any:
    """The base model in float32 wrapped with fresh LoRA layers (bias none, as vLLM needs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, bias="none",
        target_modules=list(config.target_modules), task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora)


def resume(model: Any, optimizer: Any, schedule: Any, config: TrainConfig, out_dir: Path) -> TrainResult:
    """Load OUT's last checkpoint into model, optimizer and schedule; a fresh result when there is none."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is None:
        return TrainResult()
    state = torch.load(checkpoint / STATE_FILE, weights_only=False)
    if state["config"] != config_record(config):
        raise SftDataError(
            f"{out_dir} holds a run with other hyper-parameters ({checkpoint}); use another --out"
        )
    set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["rng"])  # the same dropout masks as an uninterrupted run
    logger.info("resuming from %s (step %d of %d)", checkpoint, len(state["losses"]), config.max_steps)
    return TrainResult(losses=list(state["losses"]), resumed_from=len(state["losses"]))


def config_record(config: TrainConfig) -> dict[str, Any]:
    """The hyper-parameters as plain JSON values (for checkpoints and the card)."""
    return asdict(config) | {"target_modules": list(config.target_modules)}


def save_checkpoint(
    model: Any, optimizer: Any, schedule: Any, config: TrainConfig, losses: list[float], path: Path
) -> None:
    """Adapter weights plus optimizer, schedule, losses and hyper-parameters, written atomically."""
    import torch

    staging = path.with_name(path.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    torch.save({
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "losses": losses,
        "config": config_record(config),
        "rng": torch.get_rng_state(),
    }, staging / STATE_FILE)
    staging.rename(path)
    logger.info("checkpoint %s", path)
