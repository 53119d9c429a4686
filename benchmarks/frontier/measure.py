"""Run every prompt through every way on a whetstone server, one request at a time, interleaved."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.frontier.ways import Messages, Record
from clients import WhetstoneClient

SEED = 1000  # prompt i of a set is seeded SEED + i, the same for every way


def measure(
    url: str,
    ways: dict[str, dict[str, Any]],
    prompt_sets: dict[str, list[Messages]],
    max_tokens: int,
    repeats: int = 1,
) -> list[Record]:
    """One record per (way, prompt); ways are interleaved prompt by prompt so drift hits all alike.

    With `repeats` > 1 every request is timed that many times (all ways once, then again) and its
    latency is the median; the answer is the first run's (a seeded request repeats its answer).
    """
    records = []
    with WhetstoneClient(url, timeout=1800) as client:
        for body in ways.values():  # one-off costs (compilation of new batch shapes) before timing
            client.chat([{"role": "user", "content": "Hi"}], max_tokens=8, **body)
        prompts = [(name, i) for name, messages in prompt_sets.items() for i in range(len(messages))]
        progress = tqdm(total=len(prompts) * len(ways) * repeats, desc="requests", unit="req")
        for name, i in prompts:
            runs: dict[str, list[tuple[float, Any]]] = {way: [] for way in ways}
            for _ in range(repeats):
                for way, body in ways.items():
                    started = time.perf_counter()
                    result = client.chat(prompt_sets[name][i], max_tokens=max_tokens, seed=SEED + i, **body)
                    runs[way].append((time.perf_counter() - started, result))
                    progress.update()
            records += [record(way, name, i, timed) for way, timed in runs.items()]
        progress.close()
    return records


def record(way: str, prompt_set: str, prompt: int, timed: list[tuple[float, Any]]) -> Record:
    """A Record of one request's timed runs: the first run's answer, the median latency."""
    latencies = tuple(latency for latency, _ in timed)
    result = timed[0][1]
    summary, usage = result.sharpening, result.usage
    assert summary is not None and usage is not None
    assert summary.selected_logprob_sum is not None and summary.selected_num_tokens is not None
    return Record(
        way, prompt_set, prompt, statistics.median(latencies), summary.selected_logprob_sum,
        summary.selected_num_tokens, usage.completion_tokens, result.finish_reason, result.text, latencies,
    )


def prompt_token_ids(url: str, prompt_sets: dict[str, list[Messages]]) -> dict[str, list[list[int]]]:
    """Every prompt as the token ids the server's chat template renders (for the anchor's requests)."""
    with httpx.Client(base_url=url, timeout=60) as http:

        def ids(messages: Messages) -> list[int]:
            reply = http.post("/tokenize", json={"messages": messages})
            reply.raise_for_status()
            return [int(t) for t in reply.json()["tokens"]]

        return {name: [ids(m) for m in prompts] for name, prompts in prompt_sets.items()}
