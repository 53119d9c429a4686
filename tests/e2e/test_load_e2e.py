"""Load-aware sharpening on the real engine: all candidates at rest, greedy's share under a burst,
and full sharpening for a request that asks for it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]
BURST = 16  # twice the default --load-capacity of 8 sequences


def ask(url: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/chat/completions", json={"messages": MESSAGES, **fields}, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()


def burst(url: str, **fields: Any) -> list[dict[str, Any]]:
    """BURST requests at once (well past what the engine runs side by side); every reply."""
    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(lambda _: ask(url, max_tokens=48, **fields), range(BURST)))


def counter(url: str, name: str, labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


def test_at_rest_the_default_draws_every_candidate(server_url: str) -> None:
    summary = ask(server_url, max_tokens=48)["sharpening"]
    assert summary["load"] == "spare"
    assert summary["candidates_drawn"] == 8 and summary["candidate_temperatures"] == [0.0, 0.4]
    assert summary["stopped_by"] in (None, "deadline")  # the deadline may cut extras still running


def test_under_a_burst_every_request_answers_and_load_cuts_the_extras(server_url: str) -> None:
    before = counter(server_url, "whetstone_load_requests_total", 'extent="primary_only",mode="spare"')
    replies = burst(server_url)
    summaries = [r["sharpening"] for r in replies]
    assert all(r["choices"][0]["message"]["content"] for r in replies)
    assert all(s["load"] == "spare" and s["stopped_by"] == "load" for s in summaries), summaries
    ran = [s["candidates_drawn"] - s["candidates_cut"] for s in summaries]
    assert sum(1 for n in ran if n == 1) >= BURST - 2  # almost every request: greedy's work alone
    for reply, summary in zip(replies, summaries, strict=True):  # the numbers stay true
        assert reply["usage"]["completion_tokens"] == summary["generated_tokens"]
    after = counter(server_url, "whetstone_load_requests_total", 'extent="primary_only",mode="spare"')
    assert after - before == sum(1 for n in ran if n == 1)


def test_a_request_asking_for_sharpening_keeps_its_candidates_under_load(server_url: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        crowd = pool.submit(burst, server_url)
        full = ask(server_url, max_tokens=48, sharpening={"n": 8, "load": "wait"})
        crowd.result()
    summary = full["sharpening"]
    assert summary["load"] == "wait" and summary["candidates_drawn"] == 8
    assert summary["candidates_cut"] == 0 and summary["stopped_by"] is None
