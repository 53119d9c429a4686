"""`whetstone sharpen-sft`: distil the base model's best-of-N answers into a LoRA adapter (SFT-sharpening)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from training.collect import collect, traced_adapter
from training.commands import ERRORS, add_training_flags, finish, main_process_first
from training.runs import base_model_dir, check_run, note_run, options_from, run_record
from training.sft_set import (
    SftDataError,
    SftExample,
    build_sft_set,
    example_of_row,
    examples_from_traces,
    read_prompts,
    read_rows,
    write_examples,
)
from training.traces import read_traces

logger = logging.getLogger(__name__)
SFT_SET = "sft.jsonl"


def add_sharpen_sft(commands: Any) -> None:
    """Register `sharpen-sft` with the shared training flags and its own; it sets `run(args) -> exit code`."""
    sft = commands.add_parser(
        "sharpen-sft",
        help="distil best-of-N answers into a LoRA adapter (SFT-sharpening)",
        description="Build an SFT set of the base model's best-of-N answers (chosen by its own "
        "log-likelihood through a whetstone server) from prompts or traces, train a LoRA adapter on it "
        "with TRL's SFTTrainer (loss on the answer tokens only) and write the adapter with a card. "
        "Serve it with `whetstone serve --lora NAME=OUT`. Data-parallel: "
        "`accelerate launch --multi_gpu --num_processes K -m training.cli sharpen-sft ...` (also on CPU).",
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
    from training.sft_train import train_sft

    trainer, losses = train_sft(model_dir, examples, args.out, options)
    if trainer.is_world_process_zero():
        facts = {"n": sorted({e.n for e in examples}) if args.traces else n, "examples": len(examples),
                 "dropped_unfinished": dropped,
                 "answer_tokens": sum(len(e.completion_token_ids) for e in examples)}
        finish(args, "sft", model_dir, source, facts | {"processes": trainer.accelerator.num_processes},
               record, {"loss": losses})
    return 0


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
