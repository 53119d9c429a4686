"""The adapter's card: card.json (machine-readable), README.md and the training loss curve (loss.png)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from server import __version__
from server.amortize.adapters import CARD_JSON
from server.amortize.traces import utc_now

LOSS_PNG = "loss.png"


def build_card(
    *,
    base_model: Path,
    base_fingerprint: str,
    n: int | list[int],
    source: str,
    examples: int,
    dropped: int,
    answer_tokens: int,
    hyperparameters: dict[str, Any],
    losses: list[float],
) -> dict[str, Any]:
    """The card's facts as one JSON-ready dict."""
    return {
        "base_model": str(base_model),
        "base_model_sha256": base_fingerprint,
        "n": n,
        "selection": "best_of_n by the base model's raw sequence log-likelihood (length_penalty 0)",
        "data_source": source,
        "examples": examples,
        "dropped_unfinished": dropped,
        "answer_tokens": answer_tokens,
        "hyperparameters": hyperparameters,
        "steps": len(losses),
        "losses": losses,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "created": utc_now(),
        "whetstone_version": __version__,
    }


def render_readme(card: dict[str, Any]) -> str:
    """The card as a Markdown page."""
    hp = card["hyperparameters"]
    tail = card["losses"][-10:]
    smoothed = f"{statistics.fmean(tail):.4f}" if tail else "-"
    rows = "\n".join(f"| {key} | {value} |" for key, value in hp.items())
    return f"""# SFT-sharpened LoRA adapter

Distilled by `whetstone sharpen-sft` from the base model's own best-of-N answers: for every
prompt the server drew N candidates at temperature 1 and kept the one with the highest raw
sequence log-likelihood under the base model; the adapter is trained to produce that answer.

| fact | value |
|---|---|
| base model | `{card['base_model']}` |
| base model sha256 | `{card['base_model_sha256']}` |
| N (candidates per prompt) | {card['n']} |
| data | {card['data_source']} |
| examples (finished answers) | {card['examples']} |
| dropped (chosen answer did not finish) | {card['dropped_unfinished']} |
| answer tokens | {card['answer_tokens']} |
| optimizer steps | {card['steps']} |
| loss: first / final / mean of last 10 | {_fmt(card['first_loss'])} / {_fmt(card['final_loss'])} \
/ {smoothed} |
| created | {card['created']} (whetstone {card['whetstone_version']}) |

## Hyper-parameters

| name | value |
|---|---|
{rows}

## Training loss

![training loss]({LOSS_PNG})

Serve it with `whetstone serve --lora NAME=THIS_DIRECTORY` and ask for `"model": "NAME"`.
"""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def plot_losses(losses: list[float], path: Path) -> None:
    """The training loss per optimizer step as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(1, len(losses) + 1), losses, marker="." if len(losses) < 50 else None)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (mean token NLL of the answers)")
    axes.set_title("sharpen-sft training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_card(card: dict[str, Any], out_dir: Path) -> None:
    """card.json, README.md and loss.png into the adapter directory."""
    (out_dir / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(render_readme(card), encoding="utf-8")
    plot_losses(card["losses"], out_dir / LOSS_PNG)
