"""The quality benchmark's live strategies: power, smc, mcmc and confidence, one request per item.

Unlike best-of-N and majority vote, which are simulated offline from the cached 32 candidates,
these strategies act during generation (reweighting, forking, stopping traces), so each is asked
of the server once per item with its defaults and `n` = 8. The answers are cached per task and
strategy under OUT/quality_raw/strategies/TASK.STRATEGY.jsonl (an interrupted run resumes), so
the report can be rebuilt offline.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common.datasets import Item, Task
from benchmarks.quality.collect import REQUEST_TIMEOUT, item_seed
from benchmarks.quality.data import Record, append_record, read_records
from clients import AsyncWhetstoneClient, Completion, WhetstoneError

log = logging.getLogger("benchmarks.quality")

STRATEGY_N = 8
ALPHA = 4.0  # Karan & Du's alpha; also the stepwise latency benchmark's
LIVE_STRATEGIES = ("power", "smc", "mcmc", "confidence")
# The committed results' item count (arithmetic and arc_easy, ~10 min of requests on 2 cores).
DEFAULT_STRATEGY_ITEMS = 150


def strategy_request(strategy: str, task: Task) -> dict[str, Any]:
    """The request fields of one strategy: n = 8 and the server's defaults for everything else.

    power and confidence sample at temperature 1 (as the cached candidates); smc and mcmc draw
    at temperature 1/alpha themselves and refuse a temperature. mcmc runs one chain (n is unused).
    """
    if strategy not in LIVE_STRATEGIES:
        raise ValueError(f"unknown live strategy {strategy!r}")
    sharpening: dict[str, Any] = {"strategy": strategy, "n": STRATEGY_N}
    if strategy in ("power", "smc", "mcmc"):
        sharpening["alpha"] = ALPHA
    if strategy == "confidence":
        sharpening["answer_pattern"] = task.answer_pattern
    temperature = 1.0 if strategy in ("power", "confidence") else None
    return {"temperature": temperature, "sharpening": sharpening}


def strategy_path(out_dir: Path, task: str, strategy: str) -> Path:
    """Where one task's answers from one live strategy are cached."""
    return out_dir / "quality_raw" / "strategies" / f"{task}.{strategy}.jsonl"


def strategy_runs_path(out_dir: Path) -> Path:
    """The log of live-strategy runs (one JSON line per task and strategy per run)."""
    return out_dir / "quality_raw" / "strategies" / "runs.jsonl"


def strategy_cached_ids(path: Path, request: dict[str, Any], max_tokens: int) -> set[str]:
    """Ids already answered with the same request fields and token limit."""
    return {
        r["id"] for r in read_records(path)
        if r.get("request") == request and r.get("max_tokens") == max_tokens
    }


def answer_record(
    task: Task, item: Item, strategy: str, request: dict[str, Any], max_tokens: int, reply: Completion
) -> Record:
    """One live answer: the chosen text and what the request spent."""
    sharpening = reply.sharpening
    return {
        "id": item.id,
        "task": task.name,
        "strategy": strategy,
        "answer": item.answer,
        "seed": item_seed(item),
        "max_tokens": max_tokens,
        "request": request,
        "model": reply.model,
        "text": reply.text,
        "finish_reason": reply.finish_reason,
        "latency": round(reply.latency, 3),
        "completion_tokens": reply.usage.completion_tokens if reply.usage else None,
        "candidates_drawn": sharpening.candidates_drawn if sharpening else None,
        "selected_logprob_sum": sharpening.selected_logprob_sum if sharpening else None,
        "selected_num_tokens": sharpening.selected_num_tokens if sharpening else None,
    }


async def collect_strategy(
    client: AsyncWhetstoneClient,
    task: Task,
    items: Sequence[Item],
    strategy: str,
    *,
    concurrency: int,
    out: Path,
) -> tuple[int, int, float]:
    """Ask one strategy about every item not yet cached; (collected, failed, seconds)."""
    request = strategy_request(strategy, task)
    path = strategy_path(out, task.name, strategy)
    done = strategy_cached_ids(path, request, task.max_tokens)
    todo = [item for item in items if item.id not in done]
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"{task.name} {strategy}", unit="item")
    failures: list[str] = []

    async def one(item: Item) -> None:
        async with gate:
            try:
                reply = await client.chat(item.messages, max_tokens=task.max_tokens, seed=item_seed(item),
                                          **request)
            except (WhetstoneError, ValueError) as exc:
                log.warning("%s %s failed: %s", strategy, item.id, exc)
                failures.append(item.id)
                return
        append_record(path, answer_record(task, item, strategy, request, task.max_tokens, reply))
        bar.update(1)

    try:
        await asyncio.gather(*(one(item) for item in todo))
    finally:
        bar.close()
    return len(todo) - len(failures), len(failures), time.perf_counter() - started


async def collect_strategies(
    url: str,
    task: Task,
    items: Sequence[Item],
    strategies: Sequence[str],
    *,
    concurrency: int,
    out: Path,
    server: str | None,
) -> None:
    """Collect every strategy in turn for one task and log each run."""
    async with AsyncWhetstoneClient(url, timeout=REQUEST_TIMEOUT, max_retries=3) as client:
        for strategy in strategies:
            collected, failed, seconds = await collect_strategy(
                client, task, items, strategy, concurrency=concurrency, out=out
            )
            log.info("%s %s: %d collected, %d failed, %.0f s",
                     task.name, strategy, collected, failed, seconds)
            append_record(strategy_runs_path(out), {
                "task": task.name, "strategy": strategy, "requested": len(items), "collected": collected,
                "failed": failed, "seconds": round(seconds, 1), "server": server,
                "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            })


def uncached_answers(out: Path, task: Task, items: Sequence[Item], strategies: Sequence[str]) -> int:
    """How many (item, strategy) answers are not in the cache yet."""
    missing = 0
    for strategy in strategies:
        done = strategy_cached_ids(strategy_path(out, task.name, strategy), strategy_request(strategy, task),
                                   task.max_tokens)
        missing += sum(item.id not in done for item in items)
    return missing
