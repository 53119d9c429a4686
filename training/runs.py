"""What sharpen-sft and sharpen-rl share on TRL: LoRA, precision, checkpoints, resume, metrics, merge.

torch, transformers, peft and trl are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from server.adapter_checks import ADAPTER_CONFIG, AdapterError, check_rank
from training.errors import TrainingError

logger = logging.getLogger(__name__)

# The projections vLLM's LoRA layers serve for Llama-style models.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"
MERGED = "merged"
TRAINER_STATE = "trainer_state.json"  # the last file a checkpoint gets
Precision = Literal["auto", "bf16", "fp32"]

# TRL checks the installed vLLM release when it is imported and warns when it is newer than the
# ones TRL's vLLM generation was tested with. The trainers here generate through transformers
# (TRL's `use_vllm` stays off), so the warning would only alarm whoever runs sharpen-sft/-rl.
warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions", category=UserWarning)


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters both commands share (LoRA rank 8-16 and lr 3e-4 as in the paper)."""

    rank: int = 8
    lora_alpha: int = 16
    dropout: float = 0.05
    learning_rate: float = 3e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 100
    checkpoint_every: int = 25
    seed: int = 0
    precision: Precision = "auto"
    target_modules: tuple[str, ...] = TARGET_MODULES

    def __post_init__(self) -> None:
        check_rank(self.rank)
        if min(self.max_steps, self.batch_size, self.grad_accum, self.checkpoint_every) < 1:
            raise TrainingError(
                "--max-steps, --batch-size, --grad-accum and --checkpoint-every must be at least 1"
            )
        if not self.learning_rate > 0:
            raise TrainingError("--lr must be positive")


def options_from(args: Any) -> TrainOptions:
    """TrainOptions from the shared command-line flags."""
    return TrainOptions(
        rank=check_rank(args.rank), lora_alpha=args.lora_alpha, learning_rate=args.lr,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every, seed=args.seed, precision=args.precision,
    )


def use_bf16(precision: Precision) -> bool:
    """bf16 when asked, or on `auto` when a CUDA device can do it; float32 otherwise."""
    if precision != "auto":
        return precision == "bf16"
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def lora_config(options: TrainOptions) -> Any:
    """peft's LoraConfig for an adapter vLLM can serve (bias none, no DoRA)."""
    from peft import LoraConfig

    return LoraConfig(
        r=options.rank, lora_alpha=options.lora_alpha, lora_dropout=options.dropout, bias="none",
        target_modules=list(options.target_modules), task_type="CAUSAL_LM",
    )


def cpu_only() -> bool:
    """No CUDA device: train on CPU (data-parallel processes then talk over gloo)."""
    import torch

    return not torch.cuda.is_available()


def trainer_arguments(options: TrainOptions, out_dir: Path, progress: bool) -> dict[str, Any]:
    """The TrainingArguments both TRL configs take: steps, batches, precision, device, checkpoints, logs."""
    bf16 = use_bf16(options.precision)
    return {
        "use_cpu": cpu_only(),  # also what makes several CPU processes one data-parallel run
        "output_dir": str(out_dir / CHECKPOINTS),
        "max_steps": options.max_steps,
        "per_device_train_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum,
        "learning_rate": options.learning_rate,
        "lr_scheduler_type": "linear",
        "seed": options.seed,
        "bf16": bf16,
        "model_init_kwargs": {"dtype": "bfloat16" if bf16 else "float32"},
        "save_strategy": "steps",
        "save_steps": options.checkpoint_every,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": not progress,
    }


def check_run(out_dir: Path, record: dict[str, Any]) -> None:
    """Refuse a finished OUT, or one whose checkpoints came from other settings (reads only)."""
    if (out_dir / ADAPTER_CONFIG).is_file():
        raise TrainingError(f"{out_dir} already holds a trained adapter; choose another --out")
    path = out_dir / RUN_FILE
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != record:
            changed = sorted(k for k in record.keys() | before.keys() if before.get(k) != record.get(k))
            raise TrainingError(
                f"{out_dir} holds checkpoints of a run with other settings ({', '.join(changed)}); "
                "run the same command to resume it, or choose another --out"
            )


def note_run(out_dir: Path, record: dict[str, Any]) -> None:
    """Write OUT/run.json (atomically: other processes may be reading it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / (RUN_FILE + ".partial")
    staging.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    staging.replace(out_dir / RUN_FILE)


def run_record(options: TrainOptions, **specific: Any) -> dict[str, Any]:
    """The settings that must match for a checkpoint to be resumed (JSON values)."""
    return asdict(options) | {"target_modules": list(options.target_modules)} | specific


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest complete checkpoint under OUT/checkpoints, if any (the run resumes from it).

    The trainer writes its state file last, so a checkpoint without one was cut off mid-write
    (the process was killed) and is passed over.
    """
    found = sorted((out_dir / CHECKPOINTS).glob("checkpoint-*"), key=lambda p: int(p.name.rpartition("-")[2]),
                   reverse=True)
    for checkpoint in found:
        if (checkpoint / TRAINER_STATE).is_file():
            logger.info("resuming from %s", checkpoint)
            return str(checkpoint)
        logger.warning("skipping %s: it was not completely written", checkpoint)
    return None


def train_and_save(trainer: Any, out_dir: Path) -> list[dict[str, Any]]:
    """Train (resuming from OUT's last checkpoint), save the adapter into OUT; the per-step log."""
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    trainer.save_model(str(out_dir))
    return [row for row in trainer.state.log_history if "loss" in row]


def series(log: list[dict[str, Any]], key: str) -> list[float]:
    """One metric per logged step (steps that did not log it are skipped)."""
    return [float(row[key]) for row in log if key in row]


def merge_adapter(base_model: Path, adapter_dir: Path) -> Path:
    """Fold the adapter into the base weights (the base's dtype); write OUT/merged, which vLLM serves."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = adapter_dir / MERGED
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype="auto")
    PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().save_pretrained(target)
    AutoTokenizer.from_pretrained(base_model).save_pretrained(target)
    logger.info("merged model written to %s", target)
    return target


def base_model_dir(given: Path | None) -> Path:
    """The base model directory: the one given, or the prepared embedded model."""
    if given is None:
        from server.embedded import prepare_embedded_model

        return prepare_embedded_model()
    if not (given / "config.json").is_file():
        raise AdapterError(f"--model {given} is not a Hugging Face model directory (no config.json)")
    return given
