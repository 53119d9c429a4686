"""sharpen-rl: alpha -> beta, the base log-likelihood reward (scored as the server scores), RLOO runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.engines.tokenizer import Tokenizer
from server.sharpening.scoring import score
from tests.training.test_sft_train import Interrupted, interrupt_after_checkpoint
from training.reward import BaseLikelihood, alpha_to_beta
from training.rl_train import RlOptions, train_rl
from training.runs import TrainOptions

PROMPTS = ["1 + 1", "2 + 3", "4 + 4", "5 + 0"]
CHATS = [[{"role": "user", "content": p}] for p in PROMPTS]


@pytest.mark.parametrize(("alpha", "beta"), [(2.0, 1.0), (4.0, 1 / 3), (11.0, 0.1), (1.5, 2.0)])
def test_alpha_maps_to_the_kl_weight_whose_optimum_is_pi_to_the_alpha(alpha: float, beta: float) -> None:
    assert alpha_to_beta(alpha) == pytest.approx(beta)
    assert 1 + 1 / alpha_to_beta(alpha) == pytest.approx(alpha)  # pi^(1 + 1/beta) is pi^alpha
    assert RlOptions(alpha=alpha).beta == pytest.approx(beta)


@pytest.mark.parametrize("alpha", [1.0, 0.5, -3.0])
def test_alpha_must_exceed_one(alpha: float) -> None:
    with pytest.raises(ValueError, match="--alpha must be greater than 1"):
        RlOptions(alpha=alpha)


def test_options_refuse_what_rloo_cannot_do() -> None:
    with pytest.raises(ValueError, match="--num-generations must be at least 2"):
        RlOptions(num_generations=1)
    with pytest.raises(ValueError, match="--length-penalty"):
        RlOptions(length_penalty=1.5)


def decoded_logprob_sum(model_dir: Path, prompt_ids: list[int], completion: list[int]) -> float:
    """The raw log-likelihood as an engine accumulates it: prefill, then one token at a time (KV cache)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, past, feed = 0.0, None, prompt_ids
    with torch.no_grad():
        for token in completion:
            out = model(input_ids=torch.tensor([feed]), past_key_values=past, use_cache=True)
            total += float(torch.log_softmax(out.logits[0, -1].float(), dim=-1)[token])
            past, feed = out.past_key_values, [token]
    return total


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0])
async def test_reward_is_the_servers_score_of_the_completion(tiny_model: Path, length_penalty: float) -> None:
    from transformers import AutoTokenizer

    server_tokenizer = Tokenizer(AutoTokenizer.from_pretrained(tiny_model))
    reward = BaseLikelihood(tiny_model, length_penalty, batch_size=3)  # batches of unequal lengths
    completions = [[5, 1], [7, 13, 2, 9, 1], [3], [11, 11, 11, 1]]
    prompts: list = [CHATS[0], CHATS[1], PROMPTS[2], CHATS[3]]  # chat and plain-text prompts mixed
    rewards = reward(prompts=prompts, completions=["?"] * 4, completion_ids=completions)
    for prompt, completion, got in zip(prompts, completions, rewards, strict=True):
        if isinstance(prompt, str):
            prompt_ids = await server_tokenizer.encode(prompt)
        else:
            prompt_ids = await server_tokenizer.encode_chat(prompt)
        assert reward.prompt_ids(prompt) == prompt_ids
        decoded = decoded_logprob_sum(tiny_model, prompt_ids, completion)
        expected = score(decoded, len(completion), length_penalty)
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_rloo_trains_checkpoints_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    options = TrainOptions(max_steps=3, checkpoint_every=1, batch_size=4, learning_rate=1e-2)
    rl = RlOptions(alpha=4.0, num_generations=2, max_tokens=4)
    with pytest.raises(Interrupted):
        train_rl(tiny_model, CHATS, tmp_path, options, rl, progress=False,
                 callbacks=[interrupt_after_checkpoint(2)])
    trainer, metrics = train_rl(tiny_model, CHATS, tmp_path, options, rl, progress=False)
    assert trainer.state.global_step == 3
    assert trainer.args.beta == pytest.approx(1 / 3)
    assert {name: len(values) for name, values in metrics.items()} == {
        "reward": 3, "kl": 3, "loss": 3, "completion_length": 3}
    assert all(r < 0 for r in metrics["reward"]) and metrics["kl"][0] == 0.0  # a fresh adapter is the base
    assert json.loads((tmp_path / "adapter_config.json").read_text())["bias"] == "none"


def test_batch_must_hold_whole_groups(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be a multiple of --num-generations"):
        train_rl(tiny_model, CHATS, tmp_path, TrainOptions(batch_size=3), RlOptions(num_generations=2))
