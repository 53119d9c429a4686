"""Run every prompt through every way on a whetstone server, one request at a time, interleaved."""

from __future__ import annotations

import time
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.frontier.ways import Messages, Record
from clients import WhetstoneClient

SEED = 1000  # prompt i of a set is seeded SEED + i, the same for every way


def measure(
    url: str, ways: dict[str, dict[str, Any]], prompt_sets: dict[str, list[Messages]], max_tokens: int
) -> list[Record]:
    """One record per (way, prompt); ways are interleaved prompt by prompt so drift hits all alike."""
    records = []
    with WhetstoneClient(url, timeout=1800) as client:
        for body in ways.values():  # one-off costs (compilation of new batch shapes) before timing
            client.chat([{"role": "user", "content": "Hi"}], max_tokens=8, **body)
        steps = [(name, i, way) for name, prompts in prompt_sets.items()
                 for i in range(len(prompts)) for way in ways]
        for name, i, way in tqdm(steps, desc="requests", unit="req"):
            started = time.perf_counter()
            result = client.chat(prompt_sets[name][i], max_tokens=max_tokens, seed=SEED + i, **ways[way])
            latency = time.perf_counter() - started
            summary, usage = result.sharpening, result.usage
            assert summary is not None and usage is not None
            assert summary.selected_logprob_sum is not None and summary.selected_num_tokens is not None
            records.append(Record(
                way, name, i, latency, summary.selected_logprob_sum, summary.selected_num_tokens,
                usage.completion_tokens, result.finish_reason, result.text,
            ))
    return records


def prompt_token_ids(url: str, prompt_sets: dict[str, list[Messages]]) -> dict[str, list[list[int]]]:
    """Every prompt as the token ids the server's chat template renders (for the anchor's requests)."""
    with httpx.Client(base_url=url, timeout=60) as http:

        def ids(messages: Messages) -> list[int]:
            reply = http.post("/tokenize", json={"messages": messages})
            reply.raise_for_status()
            return [int(t) for t in reply.json()["tokens"]]

        return {name: [ids(m) for m in prompts] for name, prompts in prompt_sets.items()}
