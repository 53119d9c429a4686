"""The RLHF-sharpening reward: the base model's raw sequence log-likelihood, scored as the server scores.

The prompt is tokenized by the server's own functions (chat template or plain text), the
completion's token ids are taken as sampled, the log-probabilities come from the model's raw
distribution (temperature 1, no filtering), and `server.sharpening.scoring.score` applies the
length penalty. So the reward of a completion is the `selected_score` the server would give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.engines.tokenizer import chat_prompt_ids, text_prompt_ids
from server.sharpening.scoring import score
from training.sft_set import Prompt

REWARD_NAME = "base_loglik"


def alpha_to_beta(alpha: float) -> float:
    """The KL weight whose RLHF-sharpening optimum is pi_base^alpha: beta = 1 / (alpha - 1)."""
    if not alpha > 1:
        raise ValueError("--alpha must be greater than 1 (alpha = 1 is the base model itself)")
    return 1.0 / (alpha - 1.0)


class BaseLikelihood:
    """A TRL reward function: each completion's length-penalised base log-likelihood (frozen base model)."""

    __name__ = REWARD_NAME  # TRL names the logged reward after it

    def __init__(self, model_dir: Path, length_penalty: float = 0.0, bf16: bool = False, batch_size: int = 8):
        if not 0.0 <= length_penalty <= 1.0:
            raise ValueError("--length-penalty must be between 0 and 1, as in the server")
        self.model_dir = model_dir
        self.length_penalty = length_penalty
        self.bf16 = bf16
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        """The base model (eval, no gradients, on this process's device) and its tokenizer, once."""
        if self._model is None:
            import torch
            from accelerate import PartialState
            from transformers import AutoModelForCausalLM, AutoTokenizer

            dtype = torch.bfloat16 if self.bf16 else torch.float32
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
            self._model = model.to(PartialState().device).eval().requires_grad_(False)
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        return self._model, self._tokenizer

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """The prompt's token ids exactly as the server prompts the engine."""
        _, tokenizer = self._load()
        if isinstance(prompt, str):
            return text_prompt_ids(tokenizer, prompt)
        return chat_prompt_ids(tokenizer, prompt)

    def logprob_sums(
        self, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]]
    ) -> list[float]:
        """sum_t log pi_base(y_t | x, y_<t) of each completion, in right-padded batches."""
        import torch

        model, _ = self._load()
        sums: list[float] = []
        for start in range(0, len(prompt_ids), self.batch_size):
            pairs = list(zip(prompt_ids[start:start + self.batch_size],
                             completion_ids[start:start + self.batch_size], strict=True))
            width = max(len(p) + len(c) for p, c in pairs)
            ids = torch.zeros((len(pairs), width), dtype=torch.long)
            mask = torch.zeros((len(pairs), width), dtype=torch.long)
            for i, (prompt, completion) in enumerate(pairs):
                ids[i, :len(prompt) + len(completion)] = torch.tensor(prompt + completion)
                mask[i, :len(prompt) + len(completion)] = 1
            with torch.no_grad():
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
            for i, (prompt, completion) in enumerate(pairs):
                # positions len(prompt)-1 .. len(prompt)+len(completion)-2 predict the completion's tokens
                predicting = logits[i, len(prompt) - 1:len(prompt) + len(completion) - 1].float()
                picked = torch.log_softmax(predicting, dim=-1).gather(
                    1, torch.tensor(completion, dtype=torch.long, device=predicting.device).unsqueeze(1)
                )
                sums.append(float(picked.sum()))
        return sums

    def scores(self, prompts: Sequence[Prompt], completion_ids: Sequence[Sequence[int]]) -> list[float]:
        """The server's score of each completion: logprob_sum / num_tokens ** length_penalty."""
        ids = [list(c) for c in completion_ids]
        sums = self.logprob_sums([self.prompt_ids(p) for p in prompts], ids)
        return [score(total, len(c), self.length_penalty) for total, c in zip(sums, ids, strict=True)]

    def __call__(
        self, prompts: Sequence[Prompt], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]],
        **_: Any,
    ) -> list[float | None]:
        """TRL's reward-function call: one float per (prompt, completion)."""
        return list(self.scores(prompts, completion_ids))
