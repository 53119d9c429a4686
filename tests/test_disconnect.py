"""A client that goes away gets every one of its candidates aborted in the engine."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.conftest import live_server
from tests.fakes import FakeEngine, Script

BODY = {
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 400,
    "sharpening": {"n": 6, "prune": False},
}


def inflight_candidates(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(r"^whetstone_inflight_candidates (\S+)$", text, re.M)
    assert match
    return float(match.group(1))


def wait_for_zero_inflight(url: str, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if inflight_candidates(url) == 0:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"candidates still in flight after {within}s")


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_aborts_every_candidate(stream: bool) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 400)], step_seconds=0.01)
    with live_server(engine) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json=BODY | {"stream": stream}, timeout=0.5)
        gone = time.monotonic()
        assert wait_for_zero_inflight(url, within=3.0) - gone < 1.5
        assert len(engine.aborted) == 6
        assert all(n < 400 for n in engine.generated.values())  # none ran to the end
        # and the server keeps serving
        ok = httpx.post(f"{url}/v1/chat/completions", json=BODY | {"max_tokens": 3}, timeout=30)
        assert ok.status_code == 200
        assert 'whetstone_candidates_total{status="aborted"} 6.0' in httpx.get(f"{url}/metrics").text
