"""Collecting the quality benchmark's raw responses through the client library.

Per item, two requests through the client library: 32 candidates at temperature 1 with a fixed
seed (`best_of_n`, no pruning, every candidate returned) and one greedy completion (`none`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from benchmarks.common.datasets import Item, Task
from benchmarks.quality.data import Record, append_record, cached_ids, completion_record
from clients import AsyncWhetstoneClient, WhetstoneError

log = logging.getLogger("benchmarks.quality")

REQUEST_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Collection:
    """What one task's collection did: items requested, newly collected, failed, and the wall time."""

    task: str
    requested: int
    collected: int
    failed: int
    seconds: float


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
