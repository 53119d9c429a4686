"""Client-supplied answer patterns cannot stall the server: every request answers, /health stays fast."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from tests.conftest import live_server
from tests.fakes import FakeEngine, Script
from tests.sharpening.test_patterns import PATHOLOGICAL

# Backtracking on the event loop would stall /health for minutes; the budget leaves room for a
# loaded 2-core CI machine (a full garbage collection or a neighbour process can take a second)
HEALTH_BUDGET_S = 3.0
HEALTH_TYPICAL_S = 0.25
# 40 words, then a character no \w matches: Python's `re` does not finish `^(\w+\s?)*$` on
# this in minutes (25 words already take longer than any test budget)
LONG_TEXT = Script([-0.1] * 42, words=("hello ",) * 40 + ("!",))
REFUSED = [r"(\w+)\s\1", r"(?=(\w+\s?)*)x", "(" * 600 + ")" * 600]


async def probe_health(url: str, stop: asyncio.Event) -> list[float]:
    """Time /health every 50 ms until `stop` is set."""
    waits = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            assert (await client.get("/health")).status_code == 200
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    return waits


async def test_pathological_patterns_answer_while_health_stays_fast() -> None:
    # tokens come at an engine's pace, so the server's loop is idle but for the requests' own work
    engine = FakeEngine(scripts=[LONG_TEXT], step_seconds=0.01)
    with live_server(engine, default_n=4) as url:
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_health(url, stop))
        await asyncio.sleep(0.2)  # the prober's connection is open before the load starts
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def ask(pattern: str) -> int:
                body = {
                    "messages": [{"role": "user", "content": "say hello"}],
                    "max_tokens": 64,
                    "sharpening": {"strategy": "majority", "answer_pattern": pattern},
                }
                response = await client.post("/v1/chat/completions", json=body)
                if response.status_code == 400:
                    assert response.json()["error"]["param"] == "sharpening.answer_pattern"
                return response.status_code

            statuses = await asyncio.gather(*(ask(p) for p in PATHOLOGICAL + REFUSED))
        stop.set()
        waits = await prober
    assert statuses == [200] * len(PATHOLOGICAL) + [400] * len(REFUSED)
    assert len(waits) >= 3
    assert max(waits) < HEALTH_BUDGET_S, f"/health waited {max(waits):.3f} s"
    typical = statistics.median(waits)
    assert typical < HEALTH_TYPICAL_S, f"/health typically waited {typical:.3f} s"
