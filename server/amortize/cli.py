"""`whetstone sharpen-sft` (distil best-of-N answers into a LoRA adapter) and `whetstone traces`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from server.amortize.adapters import ADAPTER_CONFIG, AdapterError, check_rank, model_fingerprint
from server.amortize.sft_set import (
    Prompt,
    SftDataError,
    SftExample,
    best_of_n,
    build_sft_set,
    examples_from_traces,
    read_prompts,
    write_examples,
)
from server.amortize.traces import read_traces, summarize
from server.processes import ServerStartError, free_port, spawned

logger = logging.getLogger(__name__)
SFT_SET = "sft.jsonl"
SERVER_START_TIMEOUT = 600.0


def add_amortize_commands(commands: Any) -> None:
    """Register `sharpen-sft` and `traces`; each sets `run(args) -> exit code` as its default."""
    sft = commands.add_parser(
        "sharpen-sft",
        help="distil best-of-N answers into a LoRA adapter (SFT-sharpening)",
        description="Build an SFT set of the base model's best-of-N answers (chosen by its own "
        "log-likelihood) from prompts or traces, train a LoRA adapter on it and write the adapter "
        "with a card. Serve it with `whetstone serve --lora NAME=OUT`.",
    )
    data = sft.add_mutually_exclusive_group(required=True)
    data.add_argument("--prompts", type=Path,
                      help='JSONL file: {"prompt": "..."} or {"messages": [...]} a line')
    data.add_argument("--traces", type=Path, help="trace directory written by `whetstone serve --trace-dir`")
    sft.add_argument("--out", type=Path, required=True,
                     help="directory for the SFT set, checkpoints and the adapter")
    sft.add_argument("--n", type=int, default=None, help="candidates per prompt (default 8; --prompts only)")
    sft.add_argument("--max-steps", type=int, default=100, help="optimizer steps (default 100)")
    sft.add_argument("--url", help="a running whetstone server (default: start one with --model, eager)")
    sft.add_argument("--api-key", default=None, help="API key of the server at --url")
    sft.add_argument("--model", type=Path, default=None,
                     help="base model directory (default: the embedded model); the server must serve it")
    sft.add_argument("--max-tokens", type=int, default=256, help="token limit per candidate (default 256)")
    sft.add_argument("--concurrency", type=int, default=4, help="prompts in flight at once (default 4)")
    sft.add_argument("--rank", type=int, default=8, help="LoRA rank: 1, 8, 16, 32, 64, 128, 256, 320 or 512")
    sft.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default 16)")
    sft.add_argument("--lr", type=float, default=3e-4, help="peak learning rate, decayed linearly to 0")
    sft.add_argument("--batch-size", type=int, default=8, help="examples per optimizer step (default 8)")
    sft.add_argument("--checkpoint-every", type=int, default=25,
                     help="steps between checkpoints (default 25)")
    sft.add_argument("--seed", type=int, default=0, help="seed of sampling, LoRA init and data order")
    sft.set_defaults(run=run_sharpen_sft)

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
    except (SftDataError, AdapterError, ServerStartError, ValueError) as exc:
        return f"whetstone sharpen-sft: {exc}"
    except WhetstoneError as exc:
        return f"whetstone sharpen-sft: the server failed: {exc} (answers so far are kept; run again)"


def sharpen_sft(args: argparse.Namespace) -> int:
    """The steps of `whetstone sharpen-sft`, bad input raising before any expensive work."""
    from server.amortize.card import build_card, write_card
    from server.amortize.train import TrainConfig, config_record, train_adapter

    config = TrainConfig(
        rank=check_rank(args.rank), alpha=args.alpha, learning_rate=args.lr, batch_size=args.batch_size,
        max_steps=args.max_steps, checkpoint_every=args.checkpoint_every, seed=args.seed,
    )
    model_dir = base_model_dir(args.model)
    if (args.out / ADAPTER_CONFIG).is_file():
        raise SftDataError(f"{args.out} already holds a trained adapter; choose another --out")
    if args.traces is not None and args.n is not None:
        raise SftDataError("--n applies to --prompts; traced answers keep the N they were served with")
    n = 8 if args.n is None else args.n
    if n < 1:
        raise SftDataError("--n must be at least 1")
    if args.traces is not None:
        examples = examples_from_traces(r for r in read_traces(args.traces) if not traced_adapter(r))
        dropped, source = 0, f"traces {args.traces}"
        write_examples(examples, args.out / SFT_SET)
    else:
        prompts = read_prompts(args.prompts)
        examples, dropped = collect(args, prompts, n, model_dir)
        source = f"prompts {args.prompts} ({len(prompts)})"
    if not examples:
        raise SftDataError(
            f"no usable examples ({dropped} chosen answers did not finish); nothing to train on"
        )
    logger.info("SFT set: %d examples (%d dropped); %d steps", len(examples), dropped, config.max_steps)
    result = train_adapter(model_dir, examples, args.out, config)
    card = build_card(
        base_model=model_dir, base_fingerprint=model_fingerprint(model_dir),
        n=sorted({e.n for e in examples}) if args.traces else n, source=source, examples=len(examples),
        dropped=dropped, answer_tokens=sum(len(e.completion_token_ids) for e in examples),
        hyperparameters=config_record(config), losses=result.losses,
    )
    write_card(card, args.out)
    print(args.out)
    return 0


def base_model_dir(given: Path | None) -> Path:
    """The base model directory: the one given, or the prepared embedded model."""
    if given is None:
        from server.embedded import prepare_embedded_model

        return prepare_embedded_model()
    if not (given / "config.json").is_file():
        raise SftDataError(f"--model {given} is not a Hugging Face model directory (no config.json)")
    return given


def traced_adapter(record: dict[str, Any]) -> bool:
    """Whether a trace record was answered by a LoRA adapter (not the base model)."""
    return bool(((record.get("settings") or {}).get("sampling") or {}).get("adapter"))


def collect(
    args: argparse.Namespace, prompts: list[Prompt], n: int, model_dir: Path
) -> tuple[list[SftExample], int]:
    """The SFT set from the server at --url, or from a server started here for the purpose."""
    from tqdm import tqdm

    from clients import WhetstoneClient

    with server_url(args.url, model_dir, args.out / "server.log") as url, \
            WhetstoneClient(url, api_key=args.api_key) as client, \
            tqdm(total=len(prompts), desc="best-of-N", unit="prompt") as bar:
        served = [m.id for m in client.models()]
        if model_dir.name not in served:
            logger.warning("the server at %s serves %s, not %s: the answers come from its model", url, served,
                           model_dir.name)
        return build_sft_set(
            prompts, lambda prompt, i: best_of_n(client, prompt, n, args.max_tokens, args.seed + 1000 * i),
            n, args.out / SFT_SET, args.concurrency, on_done=lambda: bar.update(1),
        )


@contextmanager
def server_url(url: str | None, model_dir: Path, log_path: Path) -> Iterator[str]:
    """`url` itself, or the URL of a whetstone server started on `model_dir` (stopped at the end)."""
    if url:
        yield url
        return
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--model", str(model_dir),
               "--enforce-eager", "--kv-cache-gib", "1"]
    address = f"http://127.0.0.1:{port}"
    with spawned(command, address, log_path, startup_timeout=SERVER_START_TIMEOUT) as started:
        yield started
