"""The adapter card: card.json, README.md and the per-step curves PNG, for both kinds of run."""

from __future__ import annotations

import json
from pathlib import Path

from training.card import build_card, write_card


def test_sft_card_holds_the_facts_and_a_loss_plot(tmp_path: Path) -> None:
    card = build_card(
        kind="sft", base_model=Path("/models/base"), base_fingerprint="ab" * 32, source="prompts p.jsonl (3)",
        facts={"n": 8, "examples": 3, "dropped_unfinished": 1, "answer_tokens": 42},
        hyperparameters={"rank": 8, "learning_rate": 3e-4}, metrics={"loss": [2.0, 1.5, 1.0]},
    )
    write_card(card, tmp_path)
    saved = json.loads((tmp_path / "card.json").read_text())
    assert saved["base_model_sha256"] == "ab" * 32
    facts = (saved["n"], saved["examples"], saved["dropped_unfinished"], saved["answer_tokens"])
    assert facts == (8, 3, 1, 42)
    assert (saved["steps"], saved["first_loss"], saved["final_loss"]) == (3, 2.0, 1.0)
    assert saved["losses"] == saved["metrics"]["loss"] == [2.0, 1.5, 1.0]
    readme = (tmp_path / "README.md").read_text()
    assert "# SFT-sharpened LoRA adapter" in readme
    assert "| N (candidates per prompt) | 8 |" in readme
    assert "| loss | 2.0000 / 1.0000 / 1.5000 |" in readme
    assert "![training curves](training.png)" in readme
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rl_card_plots_reward_kl_and_loss(tmp_path: Path) -> None:
    metrics = {"reward": [-20.0, -15.0], "kl": [0.0, 0.2], "loss": [0.1, 0.05]}
    card = build_card(
        kind="rl", base_model=Path("/models/base"), base_fingerprint="cd" * 32, source="traces t (2)",
        facts={"prompts": 2, "alpha": 4.0, "beta": 1 / 3}, hyperparameters={"rank": 8}, metrics=metrics,
    )
    write_card(card, tmp_path)
    saved = json.loads((tmp_path / "card.json").read_text())
    assert saved["kind"] == "rl" and saved["metrics"] == metrics and saved["steps"] == 2
    readme = (tmp_path / "README.md").read_text()
    assert "# RLHF-sharpened LoRA adapter" in readme
    assert "| alpha (target pi_base^alpha) | 4.0 |" in readme
    assert "| reward (base log-lik.) | -20.0000 / -15.0000 / -17.5000 |" in readme
    assert "| KL to base (per token) | 0.0000 / 0.2000 / 0.1000 |" in readme
    assert (tmp_path / "training.png").stat().st_size > 10_000  # three panels
