"""The whole app in upstream mode over fake vLLM servers: answers, pruning, failures, light imports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.cli import build_parser, settings_from
from server.config import Settings
from server.engines.pool import UpstreamPool
from server.engines.upstream import UpstreamRefused
from tests.conftest import serve_app
from tests.fake_upstream import EOS, FakeUpstream

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 32, "seed": 0}


@asynccontextmanager
async def upstream_client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app in upstream mode (its lifespan run), over ASGI."""
    app = create_app(Settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream(step_seconds=0.01)
    with serve_app(fake) as url:
        yield fake, url


async def test_best_of_n_over_an_upstream_scores_and_prunes(
    upstream: tuple[FakeUpstream, str],
) -> None:
    fake, url = upstream
    async with upstream_client(upstreams=[url]) as client:
        body = CHAT | {"temperature": 1.0, "sharpening": {"n": 4, "return_candidates": True}}
        reply = (await client.post("/v1/chat/completions", json=body)).json()
        summary = reply["sharpening"]
        cands = {c["index"]: c for c in summary["candidates"]}
        # candidate i draws with seed i: 3 + 4 i tokens, EOS last, raw logprob -0.1 * (1 + (i + p) % 7)
        assert cands[0]["status"] == "finished" and cands[0]["token_ids"][-1] == EOS
        assert cands[0]["logprob_sum"] == pytest.approx(-0.6)
        assert summary["selected_index"] == 0 and summary["candidates_pruned"] == 3
        pruned = [c for c in cands.values() if c["status"] == "pruned"]
        assert all(c["num_tokens"] < 3 + 4 * c["index"] for c in pruned)  # stopped before their end
        deadline = time.monotonic() + 3
        while fake.disconnected < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert fake.disconnected == 3 and fake.running == 0  # each pruned stream was closed upstream
        # the prompt is the upstream's /tokenize of the chat: BOS, one id per message, assistant header
        assert [b["prompt"] for b in fake.bodies[-4:]] == [[1, 100 + len("hi"), 3]] * 4


async def test_echo_with_logprobs_scores_the_prompt_on_the_upstream(
    upstream: tuple[FakeUpstream, str],
) -> None:
    fake, url = upstream
    async with upstream_client(upstreams=[url]) as client:
        body = {"prompt": [[1, 7, 9], [1, 4]], "echo": True, "max_tokens": 0, "logprobs": 1}
        probes = len(fake.bodies)  # the start-up probe's completions
        reply = await client.post("/v1/completions", json=body)
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["choices"]
    # the echoed text is the upstream's /detokenize; scores are its prompt_logprobs, as they came
    assert first["text"] == "<1><7><9>"
    assert first["logprobs"]["tokens"] == ["<1>", "<7>", "<9>"]
    assert first["logprobs"]["token_logprobs"] == [None, -3.5, -4.5]
    assert first["logprobs"]["top_logprobs"] == [None, {"<99>": -0.01}, {"<99>": -0.01}]
    assert second["logprobs"]["token_logprobs"] == [None, -2.0]
    scoring = fake.bodies[probes:]  # nothing was generated: one scoring request per prompt
    assert [b["prompt"] for b in scoring] == [[1, 7, 9], [1, 4]]
    assert all(b["prompt_logprobs"] == 1 and not b.get("stream") for b in scoring)


async def test_health_and_metrics_report_each_upstream(
    upstream: tuple[FakeUpstream, str],
) -> None:
    _, url = upstream
    async with upstream_client(upstreams=[url]) as client:
        health = (await client.get("/health")).json()
        assert health["upstreams"] == [{"url": url, "healthy": True, "inflight_candidates": 0, "failures": 0}]
        metrics = (await client.get("/metrics")).text
        assert f'whetstone_upstream_healthy{{upstream="{url}"}} 1.0' in metrics
        assert f'whetstone_upstream_inflight_candidates{{upstream="{url}"}} 0.0' in metrics
        models = (await client.get("/v1/models")).json()
        assert models["data"][0]["id"] == "fake-model" and models["data"][0]["max_model_len"] == 2048


async def test_an_upstream_dying_mid_request_gives_503_and_health_follows(
    upstream: tuple[FakeUpstream, str],
) -> None:
    fake, url = upstream
    async with upstream_client(upstreams=[url], upstream_health_seconds=0.05) as client:
        fake.break_after = 2
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "service_unavailable"
        fake.healthy = False  # two failed checks in a row take it out
        deadline = time.monotonic() + 3
        while (down := await client.get("/health")).status_code == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert down.status_code == 503 and "upstreams" in down.json()["error"]["message"]
        fake.break_after = None
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 503  # no upstream serves until the health checks let it back


async def test_a_processed_logprobs_upstream_stops_the_start() -> None:
    fake = FakeUpstream(processed=True)
    with serve_app(fake) as url:
        app = create_app(Settings(upstreams=[url]))
        with pytest.raises(UpstreamRefused, match="raw_logprobs"):
            async with app.router.lifespan_context(app):
                pass


def test_upstream_flags_repeat_and_env_takes_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", "--upstream", "http://a:1", "--upstream", "http://b:2"])
    assert settings_from(args).upstreams == ["http://a:1", "http://b:2"]
    monkeypatch.setenv("WHETSTONE_UPSTREAMS", "http://a:1, http://b:2")
    assert Settings().upstreams == ["http://a:1", "http://b:2"]
    monkeypatch.setenv("WHETSTONE_UPSTREAMS", '["http://c:3"]')
    assert Settings().upstreams == ["http://c:3"]
    assert isinstance(create_app(Settings()).state.service.engine, UpstreamPool)


LIGHT_IMPORTS = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Blocker(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"vllm", "torch", "transformers"}:
                raise ImportError(f"upstream mode imported {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    from server.app import create_app
    from server.config import Settings
    from training.cli import build_parser

    build_parser().parse_args(["serve", "--upstream", "http://127.0.0.1:9"])  # the console script

    app = create_app(Settings(upstreams=["http://127.0.0.1:9"]))
    print(type(app.state.service.engine).__name__)
    """
)


def test_upstream_mode_imports_neither_vllm_nor_torch_nor_transformers() -> None:
    done = subprocess.run([sys.executable, "-c", LIGHT_IMPORTS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "UpstreamPool"


async def test_upstream_mode_serves_over_real_http(upstream: tuple[FakeUpstream, str]) -> None:
    _, url = upstream
    with serve_app(create_app(Settings(upstreams=[url]))) as whetstone:
        async with httpx.AsyncClient(base_url=whetstone, timeout=10) as client:
            body = CHAT | {"stream": True, "sharpening": {"strategy": "none"}, "temperature": 0}
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) > 10  # greedy runs to max_tokens: one event per token, streamed live


async def test_upstream_mode_refuses_to_load_adapters(upstream: tuple[FakeUpstream, str]) -> None:
    _, url = upstream
    key = {"Authorization": "Bearer k"}
    async with upstream_client(upstreams=[url], api_key="k") as client:
        for path, body in (("load", {"lora_name": "a", "lora_path": "/a"}), ("unload", {"lora_name": "a"})):
            r = await client.post(f"/v1/{path}_lora_adapter", json=body, headers=key)
            assert r.status_code == 400 and r.json()["error"]["code"] == "upstream_mode"
            assert "upstream servers load their own" in r.json()["error"]["message"]
