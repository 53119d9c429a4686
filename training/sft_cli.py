"""`whetstone sharpen-sft`, `whetstone sharpen-rl` (amortized sharpening on TRL) and `whetstone traces`.

Both training commands run as they are in one process, or data-parallel under
`accelerate launch -m server.cli sharpen-... ` (one process per GPU or CPU share).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from server.amortize.adapters import AdapterError, model_fingerprint
from server.amortize.card import Kind
from server.amortize.collect import collect, traced_adapter
from server.amortize.sft_set import (
    SftDataError,
    SftExample,
    build_sft_set,
    example_of_row,
    examples_from_traces,
    read_prompts,
    read_rows,
    write_examples,
)
from server.amortize.traces import read_traces, summarize
from server.amortize.training import TrainingError
from server.processes import ServerStartError

logger = logging.getLogger(__name__)
SFT_SET = "sft.jsonl"
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


def add_amortize_commands(commands: Any) -> None:
    """Register `sharpen-sft`, `sharpen-rl` and `traces`; each sets `run(args) -> exit code`."""
    from server.amortize.rl_cli import add_sharpen_rl

    sft = commands.add_parser(
        "sharpen-sft",
        help="distil best-of-N answers into a LoRA adapter (SFT-sharpening)",
        description="Build an SFT set of the base model's best-of-N answers (chosen by its own "
        "log-likelihood through a whetstone server) from prompts or traces, train a LoRA adapter on it "
        "with TRL's SFTTrainer (loss on the answer tokens only) and write the adapter with a card. "
        "Serve it with `whetstone serve --lora NAME=OUT`. Data-parallel: "
        "`accelerate launch --multi_gpu --num_processes K -m server.cli sharpen-sft ...` (also on CPU).",
    )
    add_training_flags(sft, default_max_tokens=256)
    sft.add_argument("--n", type=int, default=None, help="candidates per prompt (default 8; --prompts only)")
    sft.add_argument("--url", help="a running whetstone server (default: start one with --model, eager)")
    sft.add_argument("--api-key", default=None, help="API key of the server at --url")
    sft.add_argument("--concurrency", type=int, default=4, help="prompts in flight at once (default 4)")
    sft.add_argument("--collect-only", action="store_true",
                     help="stop once OUT/sft.jsonl is complete (collect in one process, then train under "
                     "`accelerate launch` with the same flags)")
    sft.set_defaults(run=run_sharpen_sft)
    add_sharpen_rl(commands)

    traces = commands.add_parser(
        "traces", help="summarise a trace directory",
        description="Count, strategies, models, mean selected score, token totals and time range "
        "of the traces a server wrote with --trace-dir.",
    )
    traces.add_argument("directory", type=Path, help="the trace directory")
    traces.add_argument("--json", action="store_true", help="print the summary as JSON")
    traces.set_defaults(run=run_traces)


def run_traces(args: argparse.Namespace) -> int | str:
    """Print the summary of a trace directory."""
    try:
        summary = summarize(read_traces(args.directory))
    except FileNotFoundError as exc:
        return f"whetstone traces: {exc}"
    print(json.dumps(asdict(summary), indent=2) if args.json else summary.render())
    return 0


def run_sharpen_sft(args: argparse.Namespace) -> int | str:
    """Build the SFT set, train the adapter and write its card; an error message on bad input."""
    from clients import WhetstoneError

    try:
        return sharpen_sft(args)
    except ERRORS as exc:
        return f"whetstone sharpen-sft: {exc}"
    except WhetstoneError as exc:
        return f"whetstone sharpen-sft: the server failed: {exc} (answers so far are kept; run again)"


def sharpen_sft(args: argparse.Namespace) -> int:
    """The steps of `whetstone sharpen-sft`, bad input raising before any expensive work."""
    from server.amortize.training import base_model_dir, check_run, note_run, options_from, run_record

    options = options_from(args)
    model_dir = base_model_dir(args.model)
    if args.traces is not None and args.n is not None:
        raise SftDataError("--n applies to --prompts; traced answers keep the N they were served with")
    n = 8 if args.n is None else args.n
    if n < 1:
        raise SftDataError("--n must be at least 1")
    prompts = read_prompts(args.prompts) if args.prompts is not None else None
    source = f"traces {args.traces}" if prompts is None else f"prompts {args.prompts} ({len(prompts)})"
    record = run_record(options, kind="sft", base_model=str(model_dir), n=n, max_tokens=args.max_tokens)
    check_run(args.out, record)  # every process, so that all of them stop on a bad --out
    with main_process_first() as is_main:
        if is_main:
            note_run(args.out, record)
            examples, dropped = sft_set(args, prompts, n, model_dir)
        else:  # the main process built the set: read it
            examples, dropped = read_sft_set(args.out / SFT_SET)
    if not examples:
        raise SftDataError(
            f"no usable examples ({dropped} chosen answers did not finish); nothing to train on"
        )
    logger.info("SFT set: %d examples (%d dropped); %d steps", len(examples), dropped, options.max_steps)
    if args.collect_only:
        print(args.out / SFT_SET)
        return 0
    from server.amortize.train import train_sft

    trainer, losses = train_sft(model_dir, examples, args.out, options)
    if trainer.is_world_process_zero():
        facts = {"n": sorted({e.n for e in examples}) if args.traces else n, "examples": len(examples),
                 "dropped_unfinished": dropped,
                 "answer_tokens": sum(len(e.completion_token_ids) for e in examples)}
        finish(args, "sft", model_dir, source, facts | {"processes": trainer.accelerator.num_processes},
               record, {"loss": losses})
    return 0


def finish(args: argparse.Namespace, kind: Kind, model_dir: Path, source: str, facts: dict[str, Any],
           record: dict[str, Any], metrics: dict[str, list[float]]) -> None:
    """On the main process: merge when asked, write the card, print OUT."""
    from server.amortize.card import build_card, write_card
    from server.amortize.training import merge_adapter, use_bf16

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

    from server.amortize.training import cpu_only

    state = PartialState(cpu=cpu_only())  # as the trainer will set it up
    with state.main_process_first():
        yield state.is_main_process


def sft_set(
    args: argparse.Namespace, prompts: list[Any] | None, n: int, model_dir: Path
) -> tuple[list[SftExample], int]:
    """The SFT set from the traces, or collected through a whetstone server (resumable)."""
    if prompts is None:
        examples = examples_from_traces(r for r in read_traces(args.traces) if not traced_adapter(r))
        write_examples(examples, args.out / SFT_SET)
        return examples, 0
    path = args.out / SFT_SET
    if {int(row["index"]) for row in read_rows(path)} >= set(range(len(prompts))):  # collected before
        return build_sft_set(prompts, already_collected, n, path)  # checks N, asks no server
    return collect(args, prompts, n, model_dir, path)


def already_collected(prompt: Any, index: int) -> Any:
    """The sampler of a complete SFT set: never called."""
    raise AssertionError(f"prompt {index} should have been collected already")


def read_sft_set(path: Path) -> tuple[list[SftExample], int]:
    """The examples and the dropped count of a finished SFT set file."""
    rows = sorted(read_rows(path), key=lambda row: int(row["index"]))  # the main process's order
    return [example_of_row(r) for r in rows if not r.get("dropped")], sum(1 for r in rows if r.get("dropped"))
