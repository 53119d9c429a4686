"""POST /v1/responses on the fake engine: bodies, typed stream events, refused fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

URL = "/v1/responses"


async def test_a_text_input_gets_the_sharpened_answer_as_a_message(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0, -1.0]), Script([-0.2, -0.3, -0.1])])
    async with make_client(engine) as client:
        r = await client.post(URL, json={"input": "hi", "instructions": "be brief", "sharpening": {"n": 2}})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "response" and data["status"] == "completed"
    assert data["id"].startswith("resp_")
    message = data["output"][0]
    assert message["type"] == "message" and message["role"] == "assistant"
    part = {"type": "output_text", "text": "t0 t1 ", "annotations": [], "logprobs": []}
    assert message["content"][0] == part
    assert data["sharpening"]["selected_index"] == 1 and data["sharpening"]["n"] == 2
    assert data["usage"]["output_tokens"] == 2 + 3
    assert data["usage"]["input_tokens"] == 3  # start token + instructions + input (fake chat encoding)
    assert data["instructions"] == "be brief"


async def test_message_lists_and_sampling_fields_reach_the_engine(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        body = {
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "more"}]},
            ],
            "temperature": 0.3,
            "top_p": 0.9,
            "max_output_tokens": 2,
            "sharpening": {"strategy": "none"},
        }
        r = await client.post(URL, json=body)
    data = r.json()
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["usage"]["input_tokens"] == 4
    spec = engine.requests[0][1]
    assert (spec.temperature, spec.top_p, spec.max_tokens) == (0.3, 0.9, 2)


@pytest.mark.parametrize("strategy", ["none", "best_of_n"])
async def test_streams_are_the_documented_typed_events(make_client: ClientFactory, strategy: str) -> None:
    async with make_client() as client:
        body = {"input": "hi", "stream": True, "sharpening": {"strategy": strategy, "n": 1}}
        r = await client.post(URL, json=body)
    lines = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    events = [json.loads(line) for line in lines]  # no [DONE]: the Responses API does not send one
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "t0 t1 "
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "t0 t1 "
    assert final["usage"]["output_tokens"] == 3 and final["sharpening"]["candidates_drawn"] == 1


async def test_a_failure_mid_stream_is_an_error_event(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine(fail_with=RuntimeError("boom"))) as client:
        r = await client.post(URL, json={"input": "hi", "stream": True})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error" and "boom" not in r.text


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"tools": [{"type": "function", "name": "f"}]}, "tools"),
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"reasoning": {"effort": "low"}}, "reasoning"),
    ({"text": {"format": {"type": "json_object"}}}, "text.format.type"),
    ({"input": ""}, "input"),
    ({"input": [{"type": "function_call_output", "call_id": "1", "output": "x"}]}, "input"),
    ({"max_output_tokens": 100000}, "max_output_tokens"),
    ({"temperature": 5}, "temperature"),
    ({"model": "gpt-9"}, "model"),
    ({"max_tokens": 5}, "max_tokens"),
    ({"seed": 1}, "seed"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "messages"),
]


@pytest.mark.parametrize(("extra", "param"), REFUSED)
async def test_fields_it_cannot_honour_are_refused_by_name(
    make_client: ClientFactory, extra: dict[str, Any], param: str
) -> None:
    async with make_client() as client:
        r = await client.post(URL, json={"input": "hi"} | extra)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["param"].startswith(param)


async def test_no_op_fields_are_accepted(make_client: ClientFactory) -> None:
    async with make_client() as client:
        body = {"input": "hi", "store": False, "metadata": {"a": "b"}, "user": "u", "truncation": "disabled"}
        r = await client.post(URL, json=body)
    assert r.status_code == 200 and r.json()["metadata"] == {"a": "b"}


async def test_responses_are_counted_in_the_request_metrics(make_client: ClientFactory) -> None:
    async with make_client() as client:
        await client.post(URL, json={"input": "hi", "sharpening": {"n": 2}})
        metrics = (await client.get("/metrics")).text
    assert 'whetstone_requests_total{endpoint="responses",status="200",strategy="best_of_n"} 1.0' in metrics
