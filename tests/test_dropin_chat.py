"""Structured outputs, tool calls and the vLLM sampling fields on the fake engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.engines import OutputConstraint, ParsedToolCalls
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": CITY}}
TIME = {"type": "function", "function": {"name": "get_time"}}


def constraints(engine: FakeEngine) -> list[OutputConstraint | None]:
    """The constraint of every candidate the engine drew."""
    return [spec.constraint for _, spec in engine.requests]


async def post(make_client: ClientFactory, engine: FakeEngine, body: dict[str, Any], **settings: Any) -> Any:
    """POST a chat request with 3 candidates; returns the response."""
    async with make_client(engine, default_n=3, **settings) as client:
        return await client.post(CHAT, json={"messages": HELLO} | body)


# -- sampling fields ------------------------------------------------------------------------------


async def test_vllm_sampling_fields_reach_every_candidate(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    body = {
        "logit_bias": {"5": 10, "7": -100},
        "min_tokens": 2,
        "repetition_penalty": 1.3,
        "stop_token_ids": [9],
        "ignore_eos": True,
    }
    assert (await post(make_client, engine, body)).status_code == 200
    specs = [spec for _, spec in engine.requests]
    assert len(specs) == 3
    for spec in specs:
        assert spec.logit_bias == {5: 10.0, 7: -100.0}
        assert (spec.min_tokens, spec.repetition_penalty, spec.stop_token_ids, spec.ignore_eos) == (
            2,
            1.3,
            (9,),
            True,
        )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 101}}, "logit_bias.5"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"structured_outputs": {"regex": "a", "choice": ["a"]}}, "structured_outputs"),
        ({"structured_outputs": {"whitespace_pattern": " "}}, "structured_outputs.whitespace_pattern"),
        ({"structured_outputs": {"regex": "(unclosed"}}, "structured_outputs.regex"),
        ({"structured_outputs": {"json": "not a schema"}}, "structured_outputs.json"),
        (
            {"response_format": {"type": "json_object"}, "structured_outputs": {"regex": "a"}},
            "structured_outputs",
        ),
    ],
)
async def test_bad_sampling_and_constraint_fields_are_400s_naming_the_field(
    make_client: ClientFactory, body: dict[str, Any], param: str
) -> None:
    r = await post(make_client, FakeEngine(), body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


# -- structured outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"response_format": {"type": "json_object"}}, OutputConstraint("json_object")),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "c", "schema": CITY, "strict": True},
                }
            },
            OutputConstraint("json", CITY),
        ),
        ({"structured_outputs": {"json": CITY}}, OutputConstraint("json", CITY)),
        ({"structured_outputs": {"regex": r"\d+"}}, OutputConstraint("regex", r"\d+")),
        ({"structured_outputs": {"choice": ["a", "b"]}}, OutputConstraint("choice", ["a", "b"])),
        ({"structured_outputs": {"grammar": "root ::= 'a'"}}, OutputConstraint("grammar", "root ::= 'a'")),
        ({"structured_outputs": {"json_object": True}}, OutputConstraint("json_object")),
        ({"response_format": {"type": "text"}}, None),
    ],
)
async def test_every_candidate_is_constrained(
    make_client: ClientFactory, body: dict[str, Any], expected: OutputConstraint | None
) -> None:
    engine = FakeEngine()
    r = await post(make_client, engine, body)
    assert r.status_code == 200, r.text
    assert constraints(engine) == [expected] * 3


@pytest.mark.parametrize("strategy", ["best_of_n", "none", "majority", "power", "rejection"])
async def test_constrained_streams_carry_the_constrained_text(
    make_client: ClientFactory, strategy: str
) -> None:
    engine = FakeEngine(constrained_texts=['{"city": "Oslo"}'])
    sharpening: dict[str, Any] = {"strategy": strategy, "n": 2}
    sharpening |= {
        "majority": {"answer_pattern": "(Oslo)"},
        "power": {"alpha": 4.0},
        "rejection": {"threshold": -5.0},
    }.get(strategy, {})
    body = {"stream": True, "response_format": {"type": "json_object"}, "sharpening": sharpening}
    async with make_client(engine) as client:
        r = await client.post(CHAT, json={"messages": HELLO} | body)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    assert json.loads(text) == {"city": "Oslo"}
    assert all(c is not None for c in constraints(engine))


# -- tool calls -----------------------------------------------------------------------------------


async def test_named_tool_call_is_constrained_to_the_functions_parameters(make_client: ClientFactory) -> None:
    engine = FakeEngine(constrained_texts=['{"city": "Paris"}'])
    body = {
        "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    r = await post(make_client, engine, body)
    assert r.status_code == 200, r.text
    assert constraints(engine) == [OutputConstraint("json", CITY)] * 3
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_required_picks_among_candidate_calls_by_likelihood(make_client: ClientFactory) -> None:
    texts = [
        '{"name": "get_time", "arguments": {}}',
        '{"name": "get_weather", "arguments": {"city": "Rome"}}',
    ]
    engine = FakeEngine(scripts=[Script([-2.0, -2.0]), Script([-0.1, -0.1])], constrained_texts=texts)
    r = await post(make_client, engine, {"tools": [WEATHER, TIME], "tool_choice": "required"})
    assert len(set(map(repr, constraints(engine)))) == 1  # every candidate: one schema
    schema = constraints(engine)[0].spec  # type: ignore[union-attr]
    assert [option["properties"]["name"] for option in schema["anyOf"]] == [
        {"const": "get_weather"},
        {"const": "get_time"},
    ]
    assert schema["anyOf"][0]["properties"]["arguments"] == CITY
    (call,) = r.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    assert r.json()["sharpening"]["selected_index"] == 1


async def test_streamed_tool_call_is_one_tool_calls_delta(make_client: ClientFactory) -> None:
    engine = FakeEngine(constrained_texts=['{"name": "get_weather", "arguments": {"city": "Oslo"}}'])
    body = {"tools": [WEATHER], "tool_choice": "required", "stream": True}
    r = await post(make_client, engine, body)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    deltas = [e["choices"][0] for e in events if e.get("choices")]
    calls = [c["delta"]["tool_calls"] for c in deltas if c["delta"].get("tool_calls")]
    assert calls == [
        [
            {
                "index": 0,
                "id": calls[0][0]["id"],
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ]
    ]
    assert deltas[-1]["finish_reason"] == "tool_calls"
    assert r.text.rstrip().endswith("data: [DONE]")


async def test_auto_needs_a_parser_and_says_how_to_enable_it(make_client: ClientFactory) -> None:
    r = await post(make_client, FakeEngine(), {"tools": [WEATHER]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "tool_choice" and "--tool-call-parser" in error["message"]


async def test_auto_with_a_parser_parses_the_chosen_text(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    found = ParsedToolCalls("Sure.", [("get_weather", '{"city": "Oslo"}'), ("get_time", "{}")])
    seen: list[str] = []
    engine.parse_tool_calls = lambda text, tools: seen.append(text) or found  # type: ignore[method-assign]
    body = {"tools": [WEATHER], "tool_choice": "auto", "parallel_tool_calls": False}
    r = await post(make_client, engine, body, tool_call_parser="hermes")
    assert r.status_code == 200 and constraints(engine) == [None] * 3
    assert {spec.skip_special_tokens for _, spec in engine.requests} == {False}  # tool markers stay
    assert seen == ["t0 t1 "]  # the chosen candidate's free text
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "Sure." and choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_weather"]


def test_the_fake_parser_reads_hermes_tags() -> None:
    text = 'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    assert FakeEngine().parse_tool_calls(text, [WEATHER]) == ParsedToolCalls(
        "Sure. ", [("get_weather", '{"city": "Oslo"}')]
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}], "tool_choice": "required"}, "tools.0.type"),
        (
            {"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
            "response_format",
        ),
    ],
)
async def test_tool_mistakes_are_400s(make_client: ClientFactory, body: dict[str, Any], param: str) -> None:
    r = await post(make_client, FakeEngine(), body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


async def test_tool_choice_none_renders_tools_but_generates_text(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    r = await post(make_client, engine, {"tools": [WEATHER], "tool_choice": "none"})
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "t0 t1 ", "tool_calls": None}
    assert constraints(engine) == [None] * 3
    assert engine.chats[-1][1] == [WEATHER]


async def test_tool_messages_round_trip_to_the_template(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    messages = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    async with make_client(engine, default_n=1) as client:
        r = await client.post(CHAT, json={"messages": messages})
    assert r.status_code == 200, r.text
    rendered = engine.chats[-1][0]
    assert rendered[1]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
        }
    ]
    assert rendered[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
