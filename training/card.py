"""The adapter's card: card.json (machine-readable), README.md and the per-step curves (training.png)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Literal

from server import __version__
from server.adapter_checks import CARD_JSON
from server.trace_recorder import utc_now

PLOT_PNG = "training.png"
Kind = Literal["sft", "rl"]

INTRO: dict[str, tuple[str, str]] = {
    "sft": ("SFT-sharpened LoRA adapter", """\
Distilled by `whetstone sharpen-sft` from the base model's own best-of-N answers: for every
prompt the server drew N candidates at temperature 1 and kept the one with the highest raw
sequence log-likelihood under the base model; the adapter is trained to produce that answer."""),
    "rl": ("RLHF-sharpened LoRA adapter", """\
Trained by `whetstone sharpen-rl` (RLOO, online): the adapter samples answers, each is
rewarded with the base model's raw sequence log-likelihood (scored as the server scores), and a
KL penalty of weight beta = 1/(alpha - 1) keeps it near the base model. The objective's optimum
is the sharpened distribution pi_base^alpha / Z."""),
}

# What each logged metric means, for the README and the plot's axes.
METRIC_LABELS = {
    "loss": "loss",
    "reward": "reward (base log-lik.)",
    "kl": "KL to base (per token)",
    "completion_length": "sample length",
}

# The kind-specific facts a card may hold, with their README labels.
FACT_LABELS = {
    "n": "N (candidates per prompt)",
    "examples": "examples (finished answers)",
    "dropped_unfinished": "dropped (chosen answer did not finish)",
    "answer_tokens": "answer tokens",
    "prompts": "prompts",
    "alpha": "alpha (target pi_base^alpha)",
    "beta": "beta = 1/(alpha - 1) (KL weight)",
    "length_penalty": "length penalty of the reward score",
    "num_generations": "samples per prompt (leave-one-out group)",
    "processes": "training processes (data-parallel)",
    "precision_used": "precision trained in (what --precision auto chose)",
    "merged": "merged model directory",
}


def build_card(
    *,
    kind: Kind,
    base_model: Path,
    base_fingerprint: str,
    source: str,
    facts: dict[str, Any],
    hyperparameters: dict[str, Any],
    metrics: dict[str, list[float]],
) -> dict[str, Any]:
    """The card as one JSON-ready dict; `facts` are keys of FACT_LABELS, `metrics` one value per step each."""
    losses = metrics.get("loss", [])
    return {
        "kind": kind,
        "base_model": str(base_model),
        "base_model_sha256": base_fingerprint,
        "data_source": source,
        **facts,
        "hyperparameters": hyperparameters,
        "steps": len(losses),
        "metrics": metrics,
        "losses": losses,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "created": utc_now(),
        "whetstone_version": __version__,
    }


def render_readme(card: dict[str, Any]) -> str:
    """The card as a Markdown page."""
    title, intro = INTRO[card["kind"]]
    fact_rows = "\n".join(f"| {label} | {card[key]} |" for key, label in FACT_LABELS.items() if key in card)
    curves = "\n".join(
        f"| {METRIC_LABELS.get(name, name)} | {_fmt(values[0])} / {_fmt(values[-1])} / "
        f"{_fmt(statistics.fmean(values[-10:]))} |"
        for name, values in card["metrics"].items() if values
    )
    hyper = "\n".join(f"| {key} | {value} |" for key, value in card["hyperparameters"].items())
    return f"""# {title}

{intro}

| fact | value |
|---|---|
| base model | `{card['base_model']}` |
| base model sha256 | `{card['base_model_sha256']}` |
| data | {card['data_source']} |
{fact_rows}
| optimizer steps | {card['steps']} |
| created | {card['created']} (whetstone {card['whetstone_version']}) |

## Per step: first / final / mean of the last 10

| metric | values |
|---|---|
{curves}

![training curves]({PLOT_PNG})

## Hyper-parameters

| name | value |
|---|---|
{hyper}

Serve it with `whetstone serve --lora NAME=THIS_DIRECTORY` and ask for `"model": "NAME"`.
"""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def plot_metrics(metrics: dict[str, list[float]], path: Path, title: str) -> None:
    """One panel per metric against the optimizer step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [name for name, values in metrics.items() if values] or ["loss"]
    figure, axes = plt.subplots(len(names), 1, figsize=(6, 2.4 * len(names) + 0.6), squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        values = metrics.get(name, [])
        axis.plot(range(1, len(values) + 1), values, marker="." if len(values) < 50 else None)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(METRIC_LABELS.get(name, name), fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    axes[0, 0].set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_card(card: dict[str, Any], out_dir: Path) -> None:
    """card.json, README.md and training.png into the adapter directory."""
    (out_dir / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(render_readme(card), encoding="utf-8")
    plot_metrics(card["metrics"], out_dir / PLOT_PNG, f"whetstone sharpen-{card['kind']}")
