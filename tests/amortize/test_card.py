"""The adapter card: card.json, README.md and the loss curve PNG."""

from __future__ import annotations

import json
from pathlib import Path

from server.amortize.card import build_card, write_card


def test_card_holds_the_facts_and_a_loss_plot(tmp_path: Path) -> None:
    card = build_card(
        base_model=Path("/models/base"),
        base_fingerprint="ab" * 32,
        n=8,
        source="prompts p.jsonl (3)",
        examples=3,
        dropped=1,
        answer_tokens=42,
        hyperparameters={"rank": 8, "learning_rate": 3e-4},
        losses=[2.0, 1.5, 1.0],
    )
    write_card(card, tmp_path)
    saved = json.loads((tmp_path / "card.json").read_text())
    assert saved["base_model_sha256"] == "ab" * 32
    assert (saved["n"], saved["examples"], saved["dropped_unfinished"], saved["answer_tokens"]) == (
        8,
        3,
        1,
        42,
    )
    assert (saved["steps"], saved["first_loss"], saved["final_loss"]) == (3, 2.0, 1.0)
    assert saved["hyperparameters"]["rank"] == 8
    readme = (tmp_path / "README.md").read_text()
    assert "| N (candidates per prompt) | 8 |" in readme
    assert "2.0000 / 1.0000 / 1.5000" in readme
    assert "![training loss](loss.png)" in readme
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
