"""RLHF-sharpening on TRL's RLOOTrainer: online samples, base log-likelihood reward, KL to the base.

The objective (the paper's Eq. 3) is E_pi[log pi_base(y|x)] - beta * KL(pi || pi_base) with
beta = 1/(alpha - 1); its optimum is pi_base^alpha / Z. docs/amortization.md says how RLOO's
estimator relates to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.reward import REWARD_NAME, BaseLikelihood, alpha_to_beta
from training.runs import TrainOptions, lora_config, train_and_save, trainer_arguments, use_bf16
from training.sft_set import Prompt

# TRL's log keys -> the card's metric names.
LOGGED = {f"rewards/{REWARD_NAME}/mean": "reward", "kl": "kl", "loss": "loss",
          "completions/mean_length": "completion_length"}


@dataclass(frozen=True)
class RlOptions:
    """What is specific to sharpen-rl: the target exponent, the reward's length penalty, the sampling."""

    alpha: float = 4.0
    length_penalty: float = 0.0
    num_generations: int = 4
    max_tokens: int = 256

    def __post_init__(self) -> None:
        alpha_to_beta(self.alpha)
        if not 0.0 <= self.length_penalty <= 1.0:
            raise ValueError("--length-penalty must be between 0 and 1, as in the server")
        if self.num_generations < 2:
            raise ValueError("--num-generations must be at least 2 (RLOO's baseline leaves one sample out)")
        if self.max_tokens < 1:
            raise ValueError("--max-tokens must be at least 1")

    @property
    def beta(self) -> float:
        """The KL weight of the objective."""
        return alpha_to_beta(self.alpha)


def rloo_trainer(
    model_dir: Path, prompts: Sequence[Prompt], out_dir: Path, options: TrainOptions, rl: RlOptions,
    progress: bool = True, callbacks: Sequence[Any] = (),
) -> Any:
    """An RLOOTrainer for a LoRA adapter rewarded by the base log-likelihood, checkpointing under OUT."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    if (options.batch_size * options.grad_accum) % rl.num_generations:
        raise ValueError(
            f"--batch-size x --grad-accum ({options.batch_size * options.grad_accum}) must be a multiple of "
            f"--num-generations ({rl.num_generations}): each prompt's samples are one leave-one-out group"
        )
    config = RLOOConfig(
        **trainer_arguments(options, out_dir, progress),
        beta=rl.beta,
        num_generations=rl.num_generations,
        max_completion_length=rl.max_tokens,
        temperature=1.0, top_p=1.0, top_k=0,  # samples from the policy itself, as the objective's expectation
        normalize_advantages=False, num_iterations=1,  # the unbiased gradient of Eq. 3 (docs/amortization.md)
    )
    reward = BaseLikelihood(model_dir, rl.length_penalty, bf16=use_bf16(options.precision))
    return RLOOTrainer(
        model=str(model_dir), reward_funcs=[reward], args=config,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=AutoTokenizer.from_pretrained(model_dir, padding_side="left"),
        peft_config=lora_config(options), callbacks=list(callbacks),
    )


def train_rl(
    model_dir: Path, prompts: Sequence[Prompt], out_dir: Path, options: TrainOptions, rl: RlOptions,
    progress: bool = True, callbacks: Sequence[Any] = (),
) -> tuple[Any, dict[str, list[float]]]:
    """Train (or resume) the RL adapter into `out_dir`; the trainer and reward, KL, loss per step."""
    trainer = rloo_trainer(model_dir, prompts, out_dir, options, rl, progress, callbacks)
    log = train_and_save(trainer, out_dir)
    return trainer, {name: [float(row[key]) for row in log if key in row] for key, name in LOGGED.items()}
