"""Collecting the quality benchmark's raw responses: a whetstone server subprocess and the requests.

Per item, two requests through the client library: 32 candidates at temperature 1 with a fixed
seed (`best_of_n`, no pruning, every candidate returned) and one greedy completion (`none`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from benchmarks.datasets import Item, Task
from benchmarks.quality_data import Record, append_record, cached_ids, completion_record
from clients import AsyncWhetstoneClient, WhetstoneClient, WhetstoneError

log = logging.getLogger("benchmarks.quality")

# Seeded candidates crash vLLM's CPU engine when a prompt is prefilled in chunks (the worker
# rewinds the request's torch.Generator with set_offset, which CPU generators lack), and 32
# candidates of one prompt exceed the default 2048-token step. A started server therefore
# prefills whole prompts; a server given by --url needs the same flags.
SERVER_FLAGS = ("--max-model-len", "2048",
                "--engine-args", '{"enable_chunked_prefill": false, "max_num_batched_tokens": 2048}')
REQUEST_TIMEOUT = 3600.0
STARTUP_TIMEOUT = 900.0
STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Collection:
    """What one task's collection did: items requested, newly collected, failed, and the wall time."""

    task: str
    requested: int
    collected: int
    failed: int
    seconds: float


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whetstone_command() -> str:
    """The `whetstone` console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("whetstone")
    if beside.exists():
        return str(beside)
    found = shutil.which("whetstone")
    if found is None:
        raise RuntimeError("no `whetstone` command found; run `make install` first")
    return found


@contextmanager
def spawned_server(port: int, enforce_eager: bool, log_path: Path) -> Iterator[str]:
    """Run `whetstone serve` as a subprocess until /health answers; stop it on exit. Yields its URL."""
    command = [whetstone_command(), "serve", "--port", str(port), *SERVER_FLAGS]
    if enforce_eager:
        command.append("--enforce-eager")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w", encoding="utf-8") as server_log:
        log.info("starting %s (log: %s)", " ".join(command), log_path)
        process = subprocess.Popen(
            command, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_healthy(url, process, log_path)
            yield url
        finally:
            stop_server(process)


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll /health until it answers 200; fail when the process exits or the wait is too long."""
    started = time.monotonic()
    with WhetstoneClient(url, timeout=5.0, max_retries=0) as client:
        while time.monotonic() - started < STARTUP_TIMEOUT:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; see {log_path}")
            try:
                if client.health():
                    log.info("server ready after %.0f s", time.monotonic() - started)
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(2.0)
    raise RuntimeError(f"the server did not become healthy in {STARTUP_TIMEOUT:.0f} s; see {log_path}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Interrupt the server (a graceful engine shutdown), then kill its process group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("the server did not stop in %.0f s; killing it", STOP_TIMEOUT)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def item_seed(item: Item) -> int:
    """A fixed seed per item (from its id), so a re-run draws the same candidates."""
    return zlib.crc32(item.id.encode()) & 0x7FFFFFFF


async def collect_item(
    client: AsyncWhetstoneClient, task: Task, item: Item, n: int, max_tokens: int
) -> Record:
    """One item's record: n candidates at temperature 1 (seeded) and the greedy completion."""
    seed = item_seed(item)
    sampled = await client.chat(
        item.messages,
        max_tokens=max_tokens,
        temperature=1.0,
        seed=seed,
        sharpening={"strategy": "best_of_n", "n": n, "prune": False, "return_candidates": True},
    )
    greedy = await client.chat(
        item.messages,
        max_tokens=max_tokens,
        temperature=0.0,
        sharpening={"strategy": "none", "return_candidates": True},
    )
    return {
        "id": item.id,
        "task": task.name,
        "answer": item.answer,
        "seed": seed,
        "n": n,
        "max_tokens": max_tokens,
        "model": sampled.model,
        "greedy": completion_record(greedy),
        "sampled": completion_record(sampled),
    }


async def collect_task(
    url: str,
    task: Task,
    items: Sequence[Item],
    *,
    n: int,
    max_tokens: int,
    concurrency: int,
    raw: Path,
) -> Collection:
    """Collect every item not yet cached in `raw`, `concurrency` items at a time, with a progress bar."""
    done = cached_ids(raw, n, max_tokens)
    todo = [item for item in items if item.id not in done]
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=task.name, unit="item")
    failures: list[str] = []

    async def one(client: AsyncWhetstoneClient, item: Item) -> None:
        async with gate:
            try:
                record = await collect_item(client, task, item, n, max_tokens)
            except (WhetstoneError, ValueError) as exc:
                log.warning("%s failed: %s", item.id, exc)
                failures.append(item.id)
                return
        append_record(raw, record)
        bar.update(1)

    try:
        async with AsyncWhetstoneClient(url, timeout=REQUEST_TIMEOUT, max_retries=3) as client:
            await asyncio.gather(*(one(client, item) for item in todo))
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    return Collection(task.name, len(items), len(todo) - len(failures), len(failures), seconds)
