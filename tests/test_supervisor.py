"""The engine supervisor: restart a dead engine within limits, or give up; /health tells why."""

from __future__ import annotations

import asyncio

import pytest

from server.engines import EngineError
from server.metrics import Metrics
from server.supervisor import EngineSupervisor, RestartBudget
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script


class HealingEngine(FakeEngine):
    """A fake engine that serves again after each start, failing the first `bad_starts` starts."""

    def __init__(self, bad_starts: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.starts = 0
        self.bad_starts = bad_starts

    async def start(self) -> None:
        self.starts += 1
        if 1 < self.starts <= 1 + self.bad_starts:
            raise RuntimeError("out of memory")
        self.healthy, self.fail_with = True, None


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_budget_allows_limit_restarts_per_window() -> None:
    now = [0.0]
    budget = RestartBudget(2, 60.0, first_backoff=1.0, clock=lambda: now[0])
    assert budget.take() and budget.backoff() == 1.0
    assert budget.take() and budget.backoff() == 2.0
    assert not budget.take()
    now[0] = 61.0
    assert budget.take()


async def test_dead_engine_is_restarted_and_counted() -> None:
    engine, metrics = HealingEngine(bad_starts=1), Metrics()
    supervisor = EngineSupervisor(engine, metrics, "restart", RestartBudget(3, 60.0, first_backoff=0.01))
    await engine.start()
    watcher = asyncio.create_task(supervisor.watch())
    engine.healthy = False
    await wait_for(lambda: supervisor.state == "restarting")
    assert "restarting" in supervisor.describe()
    await wait_for(lambda: supervisor.state == "serving" and engine.healthy)
    watcher.cancel()
    assert engine.starts == 3  # the first restart failed, the second worked
    assert metrics.engine_restarts._value.get() == 1


async def test_supervisor_gives_up_after_the_budget() -> None:
    engine = HealingEngine(bad_starts=10)
    supervisor = EngineSupervisor(engine, Metrics(), "restart", RestartBudget(2, 60.0, first_backoff=0.01))
    gave_up = asyncio.Event()
    supervisor.on_give_up = gave_up.set
    await engine.start()
    engine.healthy = False
    await asyncio.wait_for(supervisor.watch(), timeout=5)
    assert gave_up.is_set() and supervisor.gave_up
    assert engine.starts == 3
    assert "restart failed: out of memory" in supervisor.describe()


async def test_policy_exit_gives_up_at_once() -> None:
    engine = HealingEngine()
    supervisor = EngineSupervisor(engine, Metrics(), "exit")
    engine.healthy = False
    await asyncio.wait_for(supervisor.watch(), timeout=5)
    assert supervisor.gave_up and engine.starts == 0


async def test_requests_fail_fast_then_serve_after_restart(make_client: ClientFactory) -> None:
    engine = HealingEngine(scripts=[Script([-0.1] * 50)], step_seconds=0.01)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 60}
    async with make_client(engine, default_n=4) as client:
        supervisor: EngineSupervisor = client.app.state.supervisor  # type: ignore[attr-defined]
        supervisor.budget = RestartBudget(3, 60.0, first_backoff=0.3)
        in_flight = asyncio.create_task(client.post("/v1/chat/completions", json=body))
        await asyncio.sleep(0.1)
        engine.healthy, engine.fail_with = False, EngineError("engine core died")
        response = await asyncio.wait_for(in_flight, timeout=5)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "service_unavailable"
        await wait_for(lambda: supervisor.state == "restarting")
        health = await client.get("/health")
        assert health.status_code == 503
        assert "restarting" in health.json()["error"]["message"]
        assert health.json()["error"]["code"] == "engine_restarting"
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 503
        await wait_for(lambda: supervisor.state == "serving")
        assert (await client.get("/health")).status_code == 200
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "whetstone_engine_restarts_total 1.0" in metrics


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_body_gets_413(make_client: ClientFactory, chunked: bool) -> None:
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}'

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    async with make_client(max_request_bytes=4096) as client:
        content = chunks() if chunked else big
        response = await client.post(
            "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
        small = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        assert (await client.post("/v1/chat/completions", json=small)).status_code == 200


async def test_event_loop_lag_is_sampled(make_client: ClientFactory) -> None:
    async with make_client() as client:
        await asyncio.sleep(0.35)
        metrics = (await client.get("/metrics")).text
        count = next(
            line for line in metrics.splitlines() if line.startswith("whetstone_event_loop_lag_seconds_count")
        )
        assert float(count.split()[-1]) >= 2
