"""Engine faults and shutdown on the real engine: kill -9 the engine core under load, then SIGTERM.

The module runs its own server (its engine is killed on purpose), started after the session one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from server.precision import detect_precision
from tests.e2e.conftest import spawned_server

REQUEST_END_BUDGET_S = 10
RECOVERY_BUDGET_S = 300
MESSAGES = [{"role": "user", "content": "Write a long story about a cat who learns to sail."}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    log_path = tmp_path_factory.mktemp("resilience") / "server.log"
    with spawned_server(log_path, "--shutdown-timeout", "60", dtype="auto") as spawned:
        yield spawned


def test_health_and_metrics_report_the_dtype_the_rule_picks_here(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """With --dtype auto the server runs what the rule picks for this host's CPU, and says why."""
    url, _ = server
    expected = detect_precision()
    health = httpx.get(f"{url}/health").json()
    assert (health["dtype"], health["dtype_reason"]) == (expected.dtype, expected.reason)
    assert f'dtype="{expected.dtype}"' in httpx.get(f"{url}/metrics").text


def engine_processes(session: int) -> list[psutil.Process]:
    """Every vLLM process of the server's session, orphans included (they keep the session id)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if os.getsid(proc.pid) == session and (proc.info["name"] or "").startswith("VLLM::"):
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def living(processes: list[psutil.Process]) -> list[str]:
    """Names of the processes that are alive (not exited, not zombies)."""
    names = []
    for proc in processes:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                names.append(proc.name())
        except psutil.NoSuchProcess:
            continue
    return sorted(names)


def inflight_candidates(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("whetstone_inflight_candidates "))
    return float(line.split()[-1])


async def one_request(client: httpx.AsyncClient, stream: bool) -> tuple[int, str, float]:
    """(status, how it ended, seconds after the kill it ended); streams report their last event."""
    body = {
        "messages": MESSAGES,
        "max_tokens": 400,
        "stream": stream,
        "sharpening": {"strategy": "best_of_n", "n": 4, "prune": False},
    }
    if not stream:
        response = await client.post("/v1/chat/completions", json=body)
        kind = response.json().get("error", {}).get("type", "ok")
        return response.status_code, kind, time.monotonic()
    events = []
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]", events[-3:]
    last = json.loads(events[-2])
    kind = last["error"]["type"] if "error" in last else "ok"
    return response.status_code, kind, time.monotonic()


async def test_engine_kill_under_load_heals_without_leaks(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = server
    before = engine_processes(proc.pid)
    names_before = living(before)
    assert "VLLM::EngineCore" in names_before
    async with httpx.AsyncClient(base_url=url, timeout=RECOVERY_BUDGET_S) as client:
        tasks = [asyncio.create_task(one_request(client, stream=i % 2 == 1)) for i in range(8)]
        deadline = time.monotonic() + 120
        while inflight_candidates(url) < 8:  # every request is generating
            assert time.monotonic() < deadline, "requests never started generating"
            await asyncio.sleep(0.2)
        core = next(p for p in before if p.name() == "VLLM::EngineCore")
        killed_at = time.monotonic()
        core.send_signal(signal.SIGKILL)
        outcomes = await asyncio.gather(*tasks)
    for status, kind, ended_at in outcomes:
        assert status in (200, 503)
        assert kind in ("ok", "service_unavailable")
        assert ended_at - killed_at < REQUEST_END_BUDGET_S
    assert any(kind == "service_unavailable" for _, kind, _ in outcomes)

    deadline = time.monotonic() + RECOVERY_BUDGET_S
    while (health := httpx.get(f"{url}/health", timeout=5)).status_code != 200:
        assert health.status_code == 503 and "engine" in health.json()["error"]["message"]
        assert time.monotonic() < deadline, "the engine did not come back"
        await asyncio.sleep(1)
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"messages": MESSAGES, "max_tokens": 16, "sharpening": {"n": 2}},
        timeout=120,
    )
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
    assert 'whetstone_engine_restarts_total 1.0' in httpx.get(f"{url}/metrics").text
    assert inflight_candidates(url) == 0
    # the dead engine left nothing behind: the same processes as before, none of them zombies
    after = engine_processes(proc.pid)
    assert living(after) == names_before
    assert not {p.pid for p in before} & {p.pid for p in after}  # the dead engine's processes are gone


def test_sigterm_drains_the_request_in_flight(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = server
    body = {"messages": MESSAGES, "max_tokens": 96, "sharpening": {"n": 4, "prune": False}}
    with httpx.Client(base_url=url, timeout=120) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/v1/chat/completions", json=body)
        deadline = time.monotonic() + 60
        while inflight_candidates(url) < 4:
            assert time.monotonic() < deadline, "the request never started generating"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        response = pending.result(timeout=120)
    assert response.status_code == 200
    summary = response.json()["sharpening"]
    assert summary["candidates_finished"] + summary["candidates_truncated"] == 4  # none cut short
    # uvicorn re-raises the SIGTERM once it has stopped gracefully: the process ends by that signal
    assert proc.wait(timeout=90) in (0, -signal.SIGTERM)
    assert living(engine_processes(proc.pid)) == []
