"""The operational metrics the dashboard and the alert rules read: refusals, engine health, endings."""

from __future__ import annotations

import asyncio

from tests.conftest import ClientFactory
from tests.fakes import DeadEngine, FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


async def test_refusal_and_candidate_series_exist_before_any_traffic(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine()) as client:
        metrics = (await client.get("/metrics")).text
    for status in ("429", "503"):
        assert f'whetstone_refused_requests_total{{status="{status}"}} 0.0' in metrics
    for ending in ("finished", "truncated", "pruned", "paused", "aborted"):
        assert f'whetstone_candidates_total{{status="{ending}"}} 0.0' in metrics
    assert "whetstone_engine_serving 1.0" in metrics


async def test_a_dead_engine_reads_0_and_its_503s_are_counted(make_client: ClientFactory) -> None:
    async with make_client(DeadEngine()) as client:
        for _ in range(2):
            await client.post(CHAT, json={"messages": HELLO})
        metrics = (await client.get("/metrics")).text
    assert "whetstone_engine_serving 0.0" in metrics
    assert 'whetstone_refused_requests_total{status="503"} 2.0' in metrics
    assert 'whetstone_refused_requests_total{status="429"} 0.0' in metrics


async def test_429s_are_counted(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 50)], step_seconds=0.01)
    async with make_client(engine, max_inflight_requests=1) as client:
        first = asyncio.create_task(client.post(CHAT, json={"messages": HELLO}))
        while not engine.requests:
            await asyncio.sleep(0.01)
        refused = await client.post(CHAT, json={"messages": HELLO})
        await first
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 429
    assert 'whetstone_refused_requests_total{status="429"} 1.0' in metrics
    assert 'whetstone_requests_total{endpoint="chat",status="429",strategy="best_of_n"} 1.0' in metrics


async def test_health_and_the_build_info_show_the_dtype_and_why(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine(), dtype="float32") as client:
        health = (await client.get("/health")).json()
        metrics = (await client.get("/metrics")).text
    assert health["dtype"] == "float32" and health["dtype_reason"] == "set by --dtype"
    assert 'dtype="float32"' in metrics and "whetstone_build_info{" in metrics
