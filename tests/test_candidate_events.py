"""Candidate events (`sharpening.stream_candidates`): shapes, numbers, coalescing, SDK compatibility."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from server.formats.candidate_events import EVENT_INTERVAL_S, CandidateBatcher
from server.race import RaceEvent
from server.sharpening import Candidate
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]
Event = tuple[str | None, Any]


def parse_sse(text: str) -> list[Event]:
    """(event name, JSON data or '[DONE]') for every event of a stream."""
    events: list[Event] = []
    for block in text.strip().split("\n\n"):
        name, data = None, ""
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def winner_and_ramblers() -> FakeEngine:
    """Candidate 0 stops after two likely tokens; the others ramble on unlikely ones."""
    return FakeEngine(scripts=[Script([-0.1, -0.1])] + [Script([-2.0] * 20) for _ in range(3)])


def stream_body(**sharpening: Any) -> dict[str, Any]:
    """A streamed best-of-4 chat request with every candidate returned in the summary."""
    return {"messages": HELLO, "max_tokens": 20, "stream": True,
            "sharpening": {"n": 4, "return_candidates": True} | sharpening}


def entries(events: list[Event]) -> list[dict[str, Any]]:
    """Every candidate entry of every candidate event, in order."""
    return [entry for name, data in events if name == "candidate" for entry in data["candidates"]]


async def test_candidate_events_report_progress_pruning_and_the_selection(
    make_client: ClientFactory,
) -> None:
    async with make_client(winner_and_ramblers()) as client:
        r = await client.post(CHAT, json=stream_body(stream_candidates=True))
    events = parse_sse(r.text)
    summary = next(d for n, d in events if n is None and isinstance(d, dict) and "sharpening" in d)
    summary = summary["sharpening"]
    final = {c["index"]: c for c in summary["candidates"]}
    seen = entries(events)
    for index, candidate in final.items():
        mine = [e for e in seen if e["index"] == index and e["status"] != "selected"]
        assert "".join(e["text"] for e in mine) == candidate["text"]
        last = mine[-1]
        assert last["status"] == candidate["status"]
        assert last["num_tokens"] == candidate["num_tokens"]
        assert last["logprob_sum"] == pytest.approx(candidate["logprob_sum"])
    pruned = [e for e in seen if e["status"] == "pruned"]
    pruned_in_summary = {i for i, c in final.items() if c["status"] == "pruned"}
    assert {e["index"] for e in pruned} == {1, 2, 3} == pruned_in_summary
    for entry in pruned:  # cut at the token count the summary reports, below the cutoff S*
        assert entry["num_tokens"] == final[entry["index"]]["num_tokens"] < 20
        assert entry["bound"] == pytest.approx(-2.0 * entry["num_tokens"])
        assert entry["bound"] < -0.2
    cutoffs = [d["cutoff"] for n, d in events if n == "candidate"]
    assert cutoffs[-1] == pytest.approx(-0.2)  # S* = candidate 0's score once it finished
    selected = [e for e in seen if e["status"] == "selected"]
    assert [(e["index"], e["choice"]) for e in selected] == [(summary["selected_index"], 0)]
    assert selected[0]["score"] == pytest.approx(summary["selected_score"])
    names = [n for n, d in events]
    assert names.index("candidate") < names.index(None)  # progress arrives before the answer
    assert events[-1] == (None, "[DONE]")
    for name, data in events:
        if name == "candidate":  # an empty OpenAI chunk to anyone who reads it as one
            assert data["object"] == "chat.completion.chunk" and data["choices"] == []


async def test_without_the_flag_the_stream_is_unchanged(make_client: ClientFactory) -> None:
    async with make_client(winner_and_ramblers()) as client:
        plain = parse_sse((await client.post(CHAT, json=stream_body())).text)
        watched = parse_sse((await client.post(CHAT, json=stream_body(stream_candidates=True))).text)
    assert all(name is None for name, _ in plain)

    def chunks(events: list[Event]) -> list[Any]:
        drop = ("id", "created")
        return [{k: v for k, v in d.items() if k not in drop} if isinstance(d, dict) else d
                for name, d in events if name is None]

    assert chunks(plain) == chunks(watched)


async def test_live_strategy_none_interleaves_events_with_token_chunks(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine(scripts=[Script([-0.5] * 6)], step_seconds=0.02)) as client:
        body = {"messages": HELLO, "stream": True,
                "sharpening": {"strategy": "none", "stream_candidates": True}}
        events = parse_sse((await client.post(CHAT, json=body)).text)
    names = [n for n, _ in events]
    first_candidate, last_delta = names.index("candidate"), len(names) - 3  # before closing + [DONE]
    assert first_candidate < last_delta  # interleaved, not all at the end
    text = "".join(c["choices"][0]["delta"].get("content", "") for n, c in events
                   if n is None and isinstance(c, dict) and c.get("choices"))
    assert "".join(e["text"] for e in entries(events)) == text == "t0 t1 t2 t3 t4 "
    assert entries(events)[-1]["status"] == "selected"


async def test_progress_is_coalesced_not_one_event_per_token(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0] * 40, stops=False)], step_seconds=0.004)
    async with make_client(engine) as client:
        body = {"messages": HELLO, "max_tokens": 40, "stream": True,
                "sharpening": {"n": 8, "stream_candidates": True}}
        started = time.monotonic()
        events = parse_sse((await client.post(CHAT, json=body)).text)
        elapsed = time.monotonic() - started
    batches = [d for n, d in events if n == "candidate"]
    # 320 token updates; at most one event per EVENT_INTERVAL_S, plus the last batch and the selection
    assert len(batches) <= elapsed / EVENT_INTERVAL_S + 3
    assert len(batches) < 40  # fewer events than one per engine step
    assert sum(len(b["candidates"]) for b in batches) < 8 * 40
    assert {e["index"] for b in batches for e in b["candidates"]} == set(range(8))


async def test_stream_candidates_without_stream_is_a_400(make_client: ClientFactory) -> None:
    async with make_client() as client:
        body = {"messages": HELLO, "sharpening": {"stream_candidates": True}}
        r = await client.post(CHAT, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "sharpening.stream_candidates"


async def test_openai_sdk_streams_the_same_answer_with_events_on(make_client: ClientFactory) -> None:
    async with make_client(winner_and_ramblers()) as client:
        transport = httpx.ASGITransport(app=client.app)  # type: ignore[attr-defined]
        http = httpx.AsyncClient(transport=transport, base_url="http://test")
        sdk = AsyncOpenAI(base_url="http://test/v1", api_key="unused", http_client=http)
        texts, extras = [], []
        for flag in (False, True):
            stream = await sdk.chat.completions.create(
                model="fake-model", messages=HELLO, max_tokens=20, stream=True,  # type: ignore[arg-type]
                extra_body={"sharpening": {"n": 4, "stream_candidates": flag}},
            )
            parts = []
            async for chunk in stream:
                parts += [c.delta.content or "" for c in chunk.choices]
                if chunk.model_extra and "candidates" in chunk.model_extra:
                    extras.append(chunk.model_extra["candidates"])
            texts.append("".join(parts))
        await http.aclose()
    assert texts[0] == texts[1] == "t0 "
    assert extras and extras[-1][0]["status"] == "selected"


def test_batcher_merges_text_per_candidate_and_spaces_events() -> None:
    woken: list[int] = []
    batcher = CandidateBatcher(0.0, lambda: woken.append(1), interval=60.0)
    candidate = Candidate(index=3, max_tokens=10)
    for text in ("a", "b"):
        candidate.extend([1], [-0.5], text)
        batcher.hear(RaceEvent(candidate, text, (), bound=candidate.logprob_sum, cutoff=None))
    assert woken == [1]  # one wake-up per batch
    assert batcher.wait_seconds() == 0.0
    batch = batcher.take()
    assert batch is not None
    assert batch["candidates"] == [{"index": 3, "status": "running", "text": "ab", "logprob_sum": -1.0,
                                    "num_tokens": 2, "score": -1.0, "bound": -1.0}]
    assert batcher.take() is None
    assert batcher.wait_seconds() > 59.0
