"""`whetstone sharpen-rl`: RLHF-sharpening of a LoRA adapter towards pi_base^alpha, on TRL's RLOOTrainer."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable
from typing import Any

from training.collect import traced_adapter
from training.commands import ERRORS, add_training_flags, finish, main_process_first
from training.errors import SftDataError
from training.runs import base_model_dir, check_run, note_run, options_from, run_record
from training.sft_set import Prompt, read_prompts
from training.traces import read_traces

logger = logging.getLogger(__name__)


def add_sharpen_rl(commands: Any) -> None:
    """Register `sharpen-rl` with the shared training flags and its own; it sets `run(args) -> exit code`."""
    rl = commands.add_parser(
        "sharpen-rl",
        help="train a LoRA adapter towards pi_base^alpha by RL on the base log-likelihood (RLHF-sharpening)",
        description="Online RLHF-sharpening (the paper's Eq. 3) with TRL's RLOOTrainer: the adapter samples "
        "answers to the prompts, each is rewarded with the base model's raw sequence log-likelihood, scored "
        "exactly as the server scores (same tokenization, chat template and --length-penalty), and a KL "
        "penalty to the base model (the adapter disabled) of weight beta = 1/(alpha - 1) keeps it close. "
        "The optimum is the distribution the `power` strategy samples at the same alpha. Data-parallel: "
        "`accelerate launch --multi_gpu --num_processes K -m training.cli sharpen-rl ...` (also on CPU).",
    )
    add_training_flags(rl, default_max_tokens=128)
    rl.add_argument("--alpha", type=float, default=4.0,
                    help="sharpening exponent > 1: the target is pi_base^alpha, the KL weight "
                    "beta = 1/(alpha - 1) (default 4, beta 1/3)")
    rl.add_argument("--length-penalty", type=float, default=0.0,
                    help="the reward is logprob_sum / tokens ** length_penalty, as the server scores "
                    "(default 0: the paper's sequence log-likelihood)")
    rl.add_argument("--num-generations", type=int, default=4,
                    help="answers sampled per prompt; each is compared with the mean of the others "
                    "(default 4; --batch-size x --grad-accum must be a multiple of it)")
    rl.set_defaults(run=run_sharpen_rl)


def run_sharpen_rl(args: argparse.Namespace) -> int | str:
    """Train the RL adapter and write its card; an error message on bad input."""
    try:
        return sharpen_rl(args)
    except ERRORS as exc:
        return f"whetstone sharpen-rl: {exc}"


def sharpen_rl(args: argparse.Namespace) -> int:
    """The steps of `whetstone sharpen-rl`, bad input raising before any expensive work."""
    from training.rl_train import RlOptions, train_rl

    options = options_from(args)
    rl = RlOptions(alpha=args.alpha, length_penalty=args.length_penalty,
                   num_generations=args.num_generations, max_tokens=args.max_tokens)
    model_dir = base_model_dir(args.model)
    if args.prompts is not None:
        prompts, source = read_prompts(args.prompts), f"prompts {args.prompts}"
    else:
        prompts, source = traced_prompts(read_traces(args.traces)), f"traces {args.traces}"
    if not prompts:
        raise SftDataError(f"{args.traces} holds no prompt answered by the base model; nothing to train on")
    prompts = one_kind(prompts)
    record = run_record(options, kind="rl", base_model=str(model_dir), alpha=rl.alpha,
                        length_penalty=rl.length_penalty, num_generations=rl.num_generations,
                        max_tokens=rl.max_tokens)
    check_run(args.out, record)  # every process, so that all of them stop on a bad --out
    with main_process_first() as is_main:
        if is_main:
            note_run(args.out, record)
    logger.info("sharpen-rl: %d prompts, alpha %g (beta %.4g), %d steps", len(prompts), rl.alpha, rl.beta,
                options.max_steps)
    trainer, metrics = train_rl(model_dir, prompts, args.out, options, rl)
    if trainer.is_world_process_zero():
        facts = {"prompts": len(prompts), "alpha": rl.alpha, "beta": rl.beta,
                 "length_penalty": rl.length_penalty, "num_generations": rl.num_generations,
                 "processes": trainer.accelerator.num_processes}
        finish(args, "rl", model_dir, f"{source} ({len(prompts)})", facts, record, metrics)
    return 0


def one_kind(prompts: list[Prompt]) -> list[Prompt]:
    """The prompts of the more common kind (chat messages or plain text): a run samples one kind."""
    chats: list[Prompt] = [p for p in prompts if isinstance(p, list)]
    texts: list[Prompt] = [p for p in prompts if isinstance(p, str)]
    kept, left = (chats, texts) if len(chats) >= len(texts) else (texts, chats)
    if left:
        logger.warning("training on the %d %s prompts; %d of the other kind are left out", len(kept),
                       "chat" if kept is chats else "plain-text", len(left))
    return kept


def traced_prompts(records: Iterable[dict[str, Any]]) -> list[Prompt]:
    """The distinct prompts of traced requests the base model answered (not an adapter), in trace order."""
    seen: set[str] = set()
    prompts: list[Prompt] = []
    for record in records:
        prompt = record.get("prompt")
        if not prompt or traced_adapter(record) or not isinstance(prompt, str | list):
            continue
        key = json.dumps(prompt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            prompts.append(prompt)
    return prompts
