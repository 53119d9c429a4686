"""Every strategy against the real engine: well-formed summaries, the rule each one promises."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from server.engines.vllm import CPU_BLOCK_TOKENS

CHAT = "/v1/chat/completions"
ARITHMETIC = [{"role": "user", "content": "What is 7 + 5? Reply with just the number."}]
SHORT = [{"role": "user", "content": "Describe the color blue in one sentence."}]
STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]


def sharpen(url: str, messages: list[dict[str, str]], max_tokens: int, **sharpening: Any) -> dict:
    body = {
        "messages": messages,
        "max_tokens": max_tokens,
        "seed": 1234,
        "sharpening": {"return_candidates": True} | sharpening,
    }
    r = httpx.post(url + CHAT, json=body, timeout=300)
    assert r.status_code == 200, r.text
    data = r.json()
    s = data["sharpening"]
    cands = s["candidates"]
    assert len(cands) == s["candidates_drawn"]
    assert data["usage"]["completion_tokens"] == sum(c["num_tokens"] for c in cands)
    counts = Counter(c["status"] for c in cands)
    assert (counts["finished"], counts["pruned"], counts["truncated"]) == (
        s["candidates_finished"],
        s["candidates_pruned"],
        s["candidates_truncated"],
    )
    chosen = next(c for c in cands if c["index"] == s["selected_index"])
    assert data["choices"][0]["message"]["content"] == chosen["text"]
    assert chosen["status"] != "pruned"
    return data


def best(cands: list[dict], key: str = "score") -> dict:
    finished = [c for c in cands if c["status"] == "finished"] or cands
    return max(finished, key=lambda c: (c[key], -c["index"]))


def metric(url: str, name: str) -> float:
    """One sample of the server's /metrics (0 when not yet exported)."""
    text = httpx.get(url + "/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def inflight_candidates(url: str) -> float:
    return metric(url, "whetstone_inflight_candidates")


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_pruned_candidates_could_not_have_won_and_really_stopped(
    server_url: str, length_penalty: float
) -> None:
    max_tokens = 64
    s = sharpen(server_url, SHORT, max_tokens, n=8, length_penalty=length_penalty)["sharpening"]
    cands = s["candidates"]
    assert s["selected_index"] == best(cands)["index"]
    for c in cands:
        if c["status"] == "pruned":
            # pruned when its bound fell below a finished score <= the selected score
            assert c["logprob_sum"] / max_tokens**length_penalty < s["selected_score"]
            assert c["num_tokens"] < max_tokens
    assert inflight_candidates(server_url) == 0


def test_candidates_share_the_prompt_through_the_prefix_cache(server_url: str) -> None:
    """Siblings prefill only the prompt's last partial KV block; the rest comes from the cache."""
    fresh = f"Request {uuid.uuid4()}: describe, in one short sentence, what a lighthouse keeper does all day."
    before = metric(server_url, "whetstone_prefix_cached_tokens_total")
    data = sharpen(server_url, [{"role": "user", "content": fresh}], 8, n=8)
    prompt_tokens = data["usage"]["prompt_tokens"]
    whole_blocks = prompt_tokens // CPU_BLOCK_TOKENS * CPU_BLOCK_TOKENS
    assert whole_blocks >= CPU_BLOCK_TOKENS
    cached = metric(server_url, "whetstone_prefix_cached_tokens_total") - before
    assert 7 * whole_blocks <= cached <= 8 * prompt_tokens


def test_pruning_generates_fewer_tokens_than_full_best_of_n(server_url: str) -> None:
    pruned = sharpen(server_url, SHORT, 64, n=8)["sharpening"]
    full = sharpen(server_url, SHORT, 64, n=8, prune=False)["sharpening"]
    assert full["candidates_pruned"] == 0
    assert pruned["candidates_pruned"] > 0
    assert pruned["generated_tokens"] < full["generated_tokens"]


def test_rejection_with_an_easy_threshold_stops_at_the_first_wave(server_url: str) -> None:
    s = sharpen(server_url, ARITHMETIC, 48, strategy="rejection", n=8, threshold=-1e9)["sharpening"]
    assert s["strategy"] == "rejection" and s["candidates_drawn"] == 4
    chosen = next(c for c in s["candidates"] if c["index"] == s["selected_index"])
    assert chosen["status"] == "finished" and chosen["score"] >= -1e9


def test_rejection_with_an_impossible_threshold_falls_back_to_the_best(server_url: str) -> None:
    s = sharpen(server_url, ARITHMETIC, 48, strategy="rejection", n=6, threshold=1.0, prune=False)[
        "sharpening"
    ]
    assert s["candidates_drawn"] == 6
    assert s["selected_index"] == best(s["candidates"])["index"]


def test_power_with_huge_alpha_is_best_of_n(server_url: str) -> None:
    s = sharpen(server_url, ARITHMETIC, 48, strategy="power", n=6, alpha=1e6)["sharpening"]
    assert s["strategy"] == "power" and s["candidates_pruned"] == 0
    assert s["selected_index"] == best(s["candidates"], key="logprob_sum")["index"]


def test_power_returns_a_finished_candidate(server_url: str) -> None:
    s = sharpen(server_url, ARITHMETIC, 48, strategy="power", n=6, alpha=2.0)["sharpening"]
    chosen = next(c for c in s["candidates"] if c["index"] == s["selected_index"])
    assert chosen["status"] == "finished" or s["candidates_finished"] == 0


def test_majority_returns_the_best_candidate_of_the_most_frequent_answer(server_url: str) -> None:
    pattern = r"(\d+)"
    s = sharpen(server_url, ARITHMETIC, 48, strategy="majority", n=8, answer_pattern=pattern)["sharpening"]
    cands = s["candidates"]
    assert s["candidates_pruned"] == 0
    answers = {c["index"]: (m.group(1) if (m := re.search(pattern, c["text"])) else None) for c in cands}
    votes = Counter(a for a in answers.values() if a is not None)
    chosen = answers[s["selected_index"]]
    assert chosen is not None and votes[chosen] == max(votes.values())
    same_answer = [c for c in cands if answers[c["index"]] == chosen]
    finished_same = [c for c in same_answer if c["status"] == "finished"] or same_answer
    assert s["selected_score"] == pytest.approx(max(c["score"] for c in finished_same))


def test_invalid_regex_is_a_400(server_url: str) -> None:
    r = httpx.post(
        server_url + CHAT,
        json={"messages": ARITHMETIC, "sharpening": {"strategy": "majority", "answer_pattern": "(["}},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "sharpening.answer_pattern"


def test_client_disconnect_aborts_candidates_in_the_engine(server_url: str) -> None:
    aborted = 'whetstone_candidates_total{status="aborted"}'
    before = metric(server_url, aborted)
    body = {"messages": STORY, "max_tokens": 1500, "sharpening": {"n": 8, "prune": False}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server_url + CHAT, json=body, timeout=2.0)
    deadline = time.monotonic() + 5
    while inflight_candidates(server_url) > 0:
        assert time.monotonic() < deadline, "candidates still running 5 s after the disconnect"
        time.sleep(0.1)
    assert metric(server_url, aborted) > before


def test_concurrent_seeded_requests_keep_the_engine_alive(server_url: str) -> None:
    """Seeded prompts that overflow one prefill step together; on CPU that used to kill vLLM.

    vLLM rewinds a seeded request's generator after a partial (chunked) prefill and CPU
    generators cannot rewind; with chunked prefill on, this exact load returns 503s.
    """

    async def one(client: httpx.AsyncClient, i: int) -> int:
        document = " ".join(f"word{i}_{k}" for k in range(300))  # ~700 distinct tokens each
        body = {"messages": [{"role": "user", "content": f"Summarise: {document}"}],
                "max_tokens": 4, "seed": 11 + i, "sharpening": {"n": 2, "prune": False}}
        r = await client.post(server_url + CHAT, json=body, timeout=300)
        return r.status_code

    async def six_at_once() -> list[int]:
        async with httpx.AsyncClient() as client:
            return list(await asyncio.gather(*(one(client, i) for i in range(6))))

    assert asyncio.run(six_at_once()) == [200] * 6
    assert httpx.get(server_url + "/health").status_code == 200
