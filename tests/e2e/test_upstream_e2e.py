"""Upstream mode end to end: whetstone (no engine of its own) in front of vLLM's real OpenAI server.

One vLLM server (the CPU build, eager) is started for this module. A second vLLM server is too
heavy for two cores, so the two-upstream test pairs it with the fake vLLM server of
tests/fake_upstream.py in its own process, which is killed mid-load.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.common.servers import WHETSTONE_CPU_ENV, WHETSTONE_CPU_FLAGS, vllm_command
from clients.processes import free_port, spawned, spawned_process
from tests.e2e.test_dropin_legacy_e2e import reference_logprobs
from tests.e2e.test_foundation_e2e import reference_model, rescore

MODEL = "SmolLM2-135M-Instruct"
LONG_PROMPT = [{"role": "user", "content": "Count from 1 to 400, one number per line."}]


@pytest.fixture(scope="module")
def vllm_url(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's own OpenAI server on the embedded model (eager, whetstone's CPU settings)."""
    port = free_port()
    flags = [*WHETSTONE_CPU_FLAGS, "--max-model-len", "2048", "--served-model-name", MODEL]
    command = vllm_command(
        str(model_dir), port, kv_cache_bytes=1024**3, enforce_eager=True, flags=flags
    )
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with spawned(command, f"http://127.0.0.1:{port}", log, env=WHETSTONE_CPU_ENV) as url:
        yield url


def whetstone_upstream(upstreams: list[str], log: Path, *flags: str) -> Any:
    """A whetstone server in upstream mode (a light process: no engine, no model)."""
    port = free_port()
    # no tie tolerance: selection is checked against the exact best score
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--tie-tolerance", "0"]
    for url in upstreams:
        command += ["--upstream", url]
    return spawned(command + list(flags), f"http://127.0.0.1:{port}", log, startup_timeout=120)


@pytest.fixture(scope="module")
def front_url(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """whetstone in front of the vLLM server, tokenizing through its /tokenize."""
    with whetstone_upstream([vllm_url], tmp_path_factory.mktemp("front") / "whetstone.log") as url:
        yield url


def vllm_metric(vllm_url: str, name: str) -> float:
    """The sum of a metric's samples on vLLM's /metrics."""
    text = httpx.get(f"{vllm_url}/metrics", timeout=10).text
    pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


def wait_for(condition: Any, seconds: float) -> bool:
    """Poll until `condition()` holds; False if it never did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_scores_equal_a_transformers_rescore(front_url: str, model_dir: Path) -> None:
    messages = [{"role": "user", "content": "Name three colors."}]
    body = {
        "model": MODEL,
        "messages": messages,
        "max_tokens": 40,
        "temperature": 0.8,
        "seed": 5,
        "sharpening": {"n": 4, "return_candidates": True, "prune": False},
    }
    reply = httpx.post(f"{front_url}/v1/chat/completions", json=body, timeout=120).json()
    summary = reply["sharpening"]
    cands = summary["candidates"]
    assert len(cands) == 4 and reply["usage"]["completion_tokens"] == sum(c["num_tokens"] for c in cands)
    eos = reference_model(model_dir)[0].eos_token_id
    for c in cands:
        if c["status"] == "finished":
            assert c["token_ids"][-1] == eos
        reference = rescore(model_dir, messages, c["token_ids"])
        assert c["logprob_sum"] == pytest.approx(reference, abs=0.02 * c["num_tokens"] + 0.1), c
    best = max((c for c in cands if c["status"] == "finished"), key=lambda c: c["score"])
    assert summary["selected_index"] == best["index"]


def test_echo_scores_the_prompt_on_the_upstream_like_a_transformers_rescore(
    front_url: str, model_dir: Path
) -> None:
    """What lm-evaluation-harness's loglikelihood requests send: echo, logprobs, max_tokens 0."""
    prompt = "Paris is the capital of France."
    body = {"model": MODEL, "prompt": prompt, "echo": True, "max_tokens": 0, "logprobs": 1}
    reply = httpx.post(f"{front_url}/v1/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    ids = reference_model(model_dir)[0].encode(prompt)
    assert choice["text"] == prompt and "".join(choice["logprobs"]["tokens"]) == prompt
    scores = choice["logprobs"]["token_logprobs"]
    assert len(scores) == len(ids) and scores[0] is None
    reference = reference_logprobs(model_dir, ids)
    assert scores[1:] == pytest.approx(reference, rel=0.03, abs=0.25)  # bf16 upstream, float32 reference
    assert all(len(top) == 1 for top in choice["logprobs"]["top_logprobs"][1:])


def test_structured_outputs_and_named_tools_reach_the_upstream(front_url: str) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    ask = {"model": MODEL, "max_tokens": 40, "seed": 3, "sharpening": {"n": 2}}
    structured = ask | {
        "messages": [{"role": "user", "content": "What is 2 + 3? Answer in JSON."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}},
    }
    reply = httpx.post(f"{front_url}/v1/chat/completions", json=structured, timeout=120).json()
    assert isinstance(json.loads(reply["choices"][0]["message"]["content"])["answer"], int)
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 12}},
                "required": ["city"],
            },
        },
    }
    named = ask | {
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [weather],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    reply = httpx.post(f"{front_url}/v1/chat/completions", json=named, timeout=120).json()
    call = reply["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and isinstance(json.loads(call["arguments"])["city"], str)
    auto = httpx.post(f"{front_url}/v1/chat/completions", json=named | {"tool_choice": "auto"}, timeout=60)
    assert auto.status_code == 400 and "tool-call parser" in auto.json()["error"]["message"]


def test_pruned_candidates_stop_on_the_upstream(front_url: str, vllm_url: str) -> None:
    before = vllm_metric(vllm_url, "vllm:generation_tokens_total")
    messages = [{"role": "user", "content": "Name three colors."}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 600, "seed": 1,
            "sharpening": {"n": 8, "return_candidates": True}}
    reply = httpx.post(f"{front_url}/v1/chat/completions", json=body, timeout=300).json()
    summary = reply["sharpening"]
    assert wait_for(lambda: vllm_metric(vllm_url, "vllm:num_requests_running") == 0, 3)
    pruned = summary["candidates_pruned"]
    upstream_tokens = vllm_metric(vllm_url, "vllm:generation_tokens_total") - before
    # every token vLLM generated reached whetstone, but for the few a pruned candidate
    # generates between its stream closing and vLLM aborting it
    assert summary["generated_tokens"] <= upstream_tokens <= summary["generated_tokens"] + 8 * pruned
    assert pruned > 0 and all(
        c["num_tokens"] < 600 for c in summary["candidates"] if c["status"] == "pruned"
    )


def test_a_client_disconnect_reaches_the_upstream(front_url: str, vllm_url: str) -> None:
    body = {"model": MODEL, "messages": LONG_PROMPT, "max_tokens": 1500, "stream": True,
            "temperature": 0, "sharpening": {"strategy": "none"}}
    before = vllm_metric(vllm_url, "vllm:generation_tokens_total")
    with httpx.Client(timeout=60) as http, http.stream(
        "POST", f"{front_url}/v1/chat/completions", json=body
    ) as response:
        lines = response.iter_lines()
        next(lines)  # the candidate is generating: its first token has been streamed
        running = wait_for(lambda: vllm_metric(vllm_url, "vllm:num_requests_running") == 1, 5)
        assert running, f"not generating any more: {[next(lines) for _ in range(6)]}"
    # the client is gone: whetstone cancels the candidate and closes its upstream stream
    assert wait_for(lambda: vllm_metric(vllm_url, "vllm:num_requests_running") == 0, 3)
    stopped_at = vllm_metric(vllm_url, "vllm:generation_tokens_total")
    time.sleep(1)
    assert vllm_metric(vllm_url, "vllm:generation_tokens_total") == stopped_at
    assert stopped_at - before < 1500  # it did not run to max_tokens


def test_killing_one_of_two_upstreams_mid_load(
    vllm_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = tmp_path_factory.mktemp("two")
    fake_port = free_port()
    fake_command = [sys.executable, "-m", "tests.fake_upstream", "--port", str(fake_port),
                    "--model", MODEL, "--step-seconds", "0.05"]
    fake_url = f"http://127.0.0.1:{fake_port}"
    with spawned_process(fake_command, fake_url, logs / "fake.log") as fake, whetstone_upstream(
        [vllm_url, fake_url], logs / "whetstone.log", "--tokenizer", str(model_dir),
        "--upstream-health-seconds", "0.5",
    ) as url:
        statuses = asyncio.run(load_while_killing(url, fake))
        health = httpx.get(f"{url}/health").json()
    before, after = statuses
    assert set(before) == {200}
    assert set(after) <= {200, 503} and after[-8:] == [200] * 8  # the vLLM upstream serves on
    assert 503 in after[:8]  # requests caught mid-generation on the killed upstream end cleanly
    assert [u["healthy"] for u in health["upstreams"]] == [True, False]


async def load_while_killing(url: str, fake: subprocess.Popen[bytes]) -> tuple[list[int], list[int]]:
    """Requests 8 at a time; the fake upstream is killed while the second batch runs."""
    # greedy: the fake upstream streams all 24 tokens (1.2 s), so the kill catches requests mid-way
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 24,
            "temperature": 0, "sharpening": {"n": 2}}

    async def ask(client: httpx.AsyncClient) -> int:
        response = await client.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            assert response.json()["error"]["type"] == "service_unavailable"
        return response.status_code

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        before = await asyncio.gather(*(ask(client) for _ in range(8)))
        during = [asyncio.create_task(ask(client)) for _ in range(8)]
        await asyncio.sleep(0.3)
        os.killpg(fake.pid, signal.SIGKILL)
        after = await asyncio.gather(*during)
        after += await asyncio.gather(*(ask(client) for _ in range(8)))
    return list(before), list(after)
