"""Assembling server-sent event streams into completions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from clients.errors import InvalidResponse, StreamError
from clients.sse import StreamCollector


def event(payload: dict[str, Any]) -> str:
    """One `data:` line."""
    return "data: " + json.dumps(payload)


def feed_all(lines: list[str]) -> StreamCollector:
    """A collector fed every line until [DONE]."""
    collector = StreamCollector(time.perf_counter())
    for line in lines:
        if collector.feed(line):
            break
    return collector


def test_chat_chunks_comments_and_blank_lines() -> None:
    collector = feed_all([
        ": keep-alive",
        event({"id": "c1", "model": "m", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}),
        "",
        event({"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
        "event: message",
        "data:" + json.dumps({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9,
                                        "total_tokens": 12},
               "sharpening": {"strategy": "best_of_n", "n": 4, "selected_index": 2,
                              "selected_score": -1.5}}),
        "data: [DONE]",
        event({"choices": [{"index": 0, "delta": {"content": "ignored"}}]}),
    ])
    result = collector.result()
    assert (result.id, result.model, result.text) == ("c1", "m", "Hello")
    assert result.finish_reason == "length"
    assert result.usage is not None and result.usage.total_tokens == 12
    assert result.sharpening is not None and result.sharpening.selected_score == -1.5
    assert result.time_to_first_token is not None and result.time_to_first_token <= result.latency


def test_completion_chunks_with_two_choices() -> None:
    collector = feed_all([
        event({"choices": [{"index": 1, "text": "b", "finish_reason": None}]}),
        event({"choices": [{"index": 0, "text": "a", "finish_reason": None}]}),
        event({"choices": [{"index": 0, "text": "", "finish_reason": "stop"},
                           {"index": 1, "text": "", "finish_reason": "stop"}]}),
        "data: [DONE]",
    ])
    result = collector.result()
    assert result.text == "a" and result.choices == ("a", "b")
    assert result.usage is None and result.sharpening is None


def test_an_error_event_raises_with_its_fields() -> None:
    collector = StreamCollector(time.perf_counter())
    error = {"error": {"message": "engine died", "type": "service_unavailable",
                       "param": None, "code": "x"}}
    with pytest.raises(StreamError) as raised:
        collector.feed(event(error))
    assert raised.value.message == "engine died" and raised.value.code == "x"
    assert raised.value.body == error


@pytest.mark.parametrize(
    "lines",
    [
        [event({"choices": [{"index": 0, "delta": {"content": "cut"}}]})],
        ["data: [DONE]"],
    ],
    ids=["no-done", "no-choices"],
)
def test_incomplete_streams_are_invalid(lines: list[str]) -> None:
    with pytest.raises(InvalidResponse):
        feed_all(lines).result()


def test_a_data_line_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidResponse):
        StreamCollector(time.perf_counter()).feed("data: {oops")
