"""Candidate events through the client libraries: the collector, watch_chat (async and blocking)."""

from __future__ import annotations

import json
import time

import pytest

from clients.client import WhetstoneClient
from clients.errors import InvalidResponse
from clients.results import Completion
from clients.sse import CandidateEvent, StreamCollector
from tests.clients.conftest import AsgiClientFactory, ServerFactory
from tests.fakes import FakeEngine, Script

HELLO = [{"role": "user", "content": "hello"}]


def race() -> FakeEngine:
    """Candidate 0 finishes after two likely tokens; candidates 1-3 ramble and get pruned."""
    return FakeEngine(scripts=[Script([-0.1, -0.1])] + [Script([-2.0] * 20) for _ in range(3)])


def test_collector_keeps_candidate_events_apart_from_the_answer() -> None:
    collector = StreamCollector(time.perf_counter())
    batch = {"choices": [], "cutoff": -0.5, "candidates": [
        {"index": 1, "status": "pruned", "text": "ab", "logprob_sum": -4.0, "num_tokens": 2,
         "score": -4.0, "bound": -4.0, "finish_reason": None}]}
    lines = ["event: candidate", "data: " + json.dumps(batch), "",
             "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"},
                                                 "finish_reason": "stop"}]}), "", "data: [DONE]"]
    for line in lines:
        collector.feed(line)
    assert collector.take_candidates() == [
        CandidateEvent(index=1, status="pruned", text="ab", logprob_sum=-4.0, num_tokens=2, score=-4.0,
                       cutoff=-0.5, bound=-4.0)]
    assert collector.take_candidates() == []
    assert collector.result().text == "hi"


def test_a_malformed_candidate_event_is_an_invalid_response() -> None:
    collector = StreamCollector(time.perf_counter())
    collector.feed("event: candidate")
    with pytest.raises(InvalidResponse, match="candidate event"):
        collector.feed('data: {"choices": [], "candidates": [{"index": 0}]}')


async def test_async_watch_chat_yields_events_then_the_completion(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(race()) as client:
        items = [item async for item in client.watch_chat(HELLO, max_tokens=20, sharpening={"n": 4})]
    *events, completion = items
    assert isinstance(completion, Completion) and completion.text == "t0 "
    assert all(isinstance(e, CandidateEvent) for e in events)
    pruned = {e.index: e.num_tokens for e in events if isinstance(e, CandidateEvent) and e.status == "pruned"}
    assert set(pruned) == {1, 2, 3} and all(0 < n < 20 for n in pruned.values())
    selected = [e for e in events if isinstance(e, CandidateEvent) and e.status == "selected"]
    assert completion.sharpening is not None
    assert [(e.index, e.choice) for e in selected] == [(completion.sharpening.selected_index, 0)]
    assert completion.sharpening.candidates_pruned == 3


def test_blocking_watch_chat_over_real_http(serve: ServerFactory) -> None:
    with serve(race()) as url, WhetstoneClient(url, max_retries=0) as client:
        items = list(client.watch_chat(HELLO, max_tokens=20, sharpening={"n": 4}))
        plain = client.chat(HELLO, max_tokens=20, sharpening={"n": 4}, stream=True)
    events = [i for i in items if isinstance(i, CandidateEvent)]
    texts = {e.index: "" for e in events}
    for e in events:
        texts[e.index] += e.text
    assert texts[0] == "t0 " and events[-1].status == "selected" and events[-1].cutoff == pytest.approx(-0.2)
    last = items[-1]
    assert isinstance(last, Completion) and last.text == plain.text == "t0 "
