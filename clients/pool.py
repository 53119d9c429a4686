"""Run many requests: a closed-loop worker pool or an open-loop paced arrival process.

A job is `job(due)`: `due` is the time.perf_counter() at which it was meant to start, so a
job can count time spent queueing for a free slot as part of its latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Literal, TypeVar

T = TypeVar("T")
Job = Callable[[float], Awaitable[T]]
Arrival = Literal["poisson", "fixed"]
ARRIVALS: tuple[Arrival, ...] = ("poisson", "fixed")


async def run_closed_loop(
    jobs: Iterable[Job[T]],
    concurrency: int,
    deadline: float | None = None,
    on_done: Callable[[T], None] | None = None,
) -> list[T]:
    """`concurrency` workers take jobs one after another until none are left or the deadline."""
    pending = iter(jobs)
    results: list[T] = []

    async def worker() -> None:
        while deadline is None or time.perf_counter() < deadline:
            job = next(pending, None)
            if job is None:
                return
            result = await job(time.perf_counter())
            results.append(result)
            if on_done is not None:
                on_done(result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def gaps(rate: float, arrival: Arrival, rng: random.Random) -> Iterator[float]:
    """Seconds between arrivals: exponential (a Poisson process) or constant, mean 1/rate."""
    while True:
        yield rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate


async def run_open_loop(
    jobs: Iterable[Job[T]],
    intervals: Iterator[float],
    limit: int,
    deadline: float | None = None,
    on_done: Callable[[T], None] | None = None,
) -> list[T]:
    """Start jobs on schedule whatever is still running; at most `limit` run at once."""
    slots = asyncio.Semaphore(limit)
    results: list[T] = []

    async def run(job: Job[T], due: float) -> None:
        async with slots:
            result = await job(due)
        results.append(result)
        if on_done is not None:
            on_done(result)

    tasks = []
    due = time.perf_counter()
    for job in jobs:
        if deadline is not None and due >= deadline:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(run(job, due)))
        due += next(intervals)
    await asyncio.gather(*tasks)
    return results
