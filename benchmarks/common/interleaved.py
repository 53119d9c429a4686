"""Sequential A/B timing: every prompt through every request shape, interleaved, one at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from clients import WhetstoneClient
from clients.results import Completion


def timed_requests(
    url: str, ways: dict[str, dict[str, Any]], prompts: list[str], max_tokens: int, timeout: float
) -> Iterator[tuple[str, int, float, Completion]]:
    """(way, prompt index, latency, result) for each prompt and way; prompt i is seeded 1000 + i.

    Interleaving spreads drift of a shared machine over every way alike; a warm-up request per
    way first pays the one-off costs.
    """
    with WhetstoneClient(url, timeout=timeout) as client:
        for body in ways.values():
            client.chat([{"role": "user", "content": "Hi"}], max_tokens=8, **body)
        steps = [(i, way) for i in range(len(prompts)) for way in ways]
        for i, way in tqdm(steps, desc="requests", unit="req"):
            started = time.perf_counter()
            result = client.chat(
                [{"role": "user", "content": prompts[i]}], max_tokens=max_tokens, seed=1000 + i, **ways[way]
            )
            yield way, i, time.perf_counter() - started, result
