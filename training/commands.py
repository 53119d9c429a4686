"""What sharpen-sft and sharpen-rl share on the command line: flags, errors, main process first, the card.

Both commands run as they are in one process, or data-parallel under
`accelerate launch -m training.cli sharpen-... ` (one process per GPU or CPU share).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients.processes import ServerStartError
from server.adapter_checks import AdapterError, model_fingerprint
from training.card import Kind, build_card, write_card
from training.errors import SftDataError, TrainingError
from training.runs import cpu_only, merge_adapter, use_bf16

ERRORS = (SftDataError, AdapterError, TrainingError, ServerStartError, ValueError)


def add_training_flags(parser: argparse.ArgumentParser, default_max_tokens: int) -> None:
    """The flags sharpen-sft and sharpen-rl share, meaning the same in both."""
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--prompts", type=Path,
                      help='JSONL file: {"prompt": "..."} or {"messages": [...]} a line')
    data.add_argument("--traces", type=Path, help="trace directory written by `whetstone serve --trace-dir`")
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for the data, checkpoints, the adapter and its card; "
                        "running the same command again resumes from its last checkpoint")
    parser.add_argument("--model", type=Path, default=None,
                        help="base model directory (default: the embedded model)")
    parser.add_argument("--max-tokens", type=int, default=default_max_tokens,
                        help=f"token limit of each sampled answer (default {default_max_tokens})")
    parser.add_argument("--max-steps", type=int, default=100, help="optimizer steps (default 100)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="sequences per process per forward pass (default 8); an optimizer step sees "
                        "batch-size x grad-accum x processes")
    parser.add_argument("--grad-accum", type=int, default=1,
                        help="forward passes accumulated per optimizer step (default 1)")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate, decayed linearly to 0")
    parser.add_argument("--rank", type=int, default=8,
                        help="LoRA rank: 1, 8, 16, 32, 64, 128, 256, 320 or 512")
    parser.add_argument("--lora-alpha", type=int, default=16, help="LoRA scaling alpha (default 16)")
    parser.add_argument("--checkpoint-every", type=int, default=25,
                        help="optimizer steps between checkpoints (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, LoRA init and data order")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="auto (default): bf16 on a CUDA GPU that supports it, float32 otherwise")
    parser.add_argument("--merge", action="store_true",
                        help="also write OUT/merged: the base model with the adapter folded in, a full "
                        "model directory for `whetstone serve --model OUT/merged`")


def finish(args: argparse.Namespace, kind: Kind, model_dir: Path, source: str, facts: dict[str, Any],
           record: dict[str, Any], metrics: dict[str, list[float]]) -> None:
    """On the main process: merge when asked, write the card, print OUT."""
    facts = facts | {"precision_used": "bf16" if use_bf16(args.precision) else "fp32"}  # what auto chose
    if args.merge:
        facts = facts | {"merged": str(merge_adapter(model_dir, args.out))}
    card = build_card(kind=kind, base_model=model_dir, base_fingerprint=model_fingerprint(model_dir),
                      source=source, facts=facts, hyperparameters=record, metrics=metrics)
    write_card(card, args.out)
    print(args.out)


@contextmanager
def main_process_first() -> Iterator[bool]:
    """Yields whether this is the main process; the other processes enter only once it has left."""
    from accelerate import PartialState

    state = PartialState(cpu=cpu_only())  # as the trainer will set it up
    with state.main_process_first():
        yield state.is_main_process
