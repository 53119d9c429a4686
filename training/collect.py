"""Collecting the SFT set through a whetstone server: the one at --url, or one started for the purpose."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients.processes import free_port, spawned
from training.sft_set import Prompt, SftExample, best_of_n, build_sft_set

logger = logging.getLogger(__name__)
SERVER_START_TIMEOUT = 600.0


def traced_adapter(record: dict[str, Any]) -> bool:
    """Whether a trace record was answered by a LoRA adapter (not the base model)."""
    return bool(((record.get("settings") or {}).get("sampling") or {}).get("adapter"))


def collect(
    args: argparse.Namespace, prompts: list[Prompt], n: int, model_dir: Path, out_path: Path
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
            n, out_path, args.concurrency, on_done=lambda: bar.update(1),
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
