"""Structured outputs, tool calls and the field rule, end to end with the openai SDK and LangChain."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openai import BadRequestError, OpenAI
from pydantic import BaseModel

from server.precision import score_bound
from tests.e2e.test_foundation_e2e import position_logprobs, reference_model

MODEL = "SmolLM2-135M-Instruct"
FEW = {"sharpening": {"n": 3, "seed": 7}}
CAPITAL: Any = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "enum": ["UTC", "CET", "PST"]}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
    },
}
ASK_WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


def sharpening_of(response: Any) -> dict[str, Any]:
    """The `sharpening` extension of an SDK response."""
    return dict((response.model_extra or {})["sharpening"])


def schema_of(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameter schema."""
    return dict(tool["function"]["parameters"])


# -- structured outputs ---------------------------------------------------------------------------


def test_parse_returns_a_parsed_pydantic_object(client: OpenAI) -> None:
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a city in Japan and its country as JSON."}],
        response_format=City,
        max_tokens=60,
        extra_body=FEW,
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert parsed == City.model_validate_json(r.choices[0].message.content or "")
    assert sharpening_of(r)["candidates_drawn"] == 3


def test_json_object_is_a_json_object(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give the name of a cat as a JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=200,  # the default's cooler candidates write longer objects than temperature-1 ones
        extra_body=FEW,
    )
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


def test_structured_outputs_choice_and_streamed_regex(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=CAPITAL,
        max_tokens=8,
        extra_body=FEW | {"structured_outputs": {"choice": ["Paris", "London", "Rome"]}},
    )
    assert r.choices[0].message.content in {"Paris", "London", "Rome"}
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a phone number."}],
        max_tokens=16,
        stream=True,
        extra_body=FEW | {"structured_outputs": {"regex": r"\d{3}-\d{4}"}},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert re.fullmatch(r"\d{3}-\d{4}", text), text


def test_bad_schema_and_bad_regex_are_400s_naming_the_field(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as bad_regex:
        client.chat.completions.create(
            model=MODEL, messages=CAPITAL, extra_body={"structured_outputs": {"regex": "(unclosed"}}
        )
    assert bad_regex.value.body["param"] == "structured_outputs.regex"  # type: ignore[index]
    with pytest.raises(BadRequestError) as bad_schema:
        client.chat.completions.create(
            model=MODEL,
            messages=CAPITAL,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}},
        )
    assert bad_schema.value.body["param"] == "response_format.json_schema.schema"  # type: ignore[index]


def test_a_refused_field_is_a_400_naming_it(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=CAPITAL, reasoning_effort="high")
    assert refused.value.body["param"] == "reasoning_effort"  # type: ignore[index]


# -- tool calls -----------------------------------------------------------------------------------


def test_named_tool_call(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=ASK_WEATHER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=40,
        extra_body=FEW,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), schema_of(WEATHER_TOOL))  # type: ignore[union-attr]


def test_required_tool_call_streamed(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What time is it in Berlin?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice="required",
        max_tokens=96,
        stream=True,
        extra_body=FEW,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                entry["name"] += delta.function.name or ""  # type: ignore[union-attr]
                entry["arguments"] += delta.function.arguments or ""  # type: ignore[union-attr]
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    (call,) = calls.values()
    tool = {"get_weather": WEATHER_TOOL, "get_time": TIME_TOOL}[call["name"]]
    jsonschema.validate(json.loads(call["arguments"]), schema_of(tool))


def test_auto_without_a_parser_says_how_to_enable_it(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as auto:
        client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER_TOOL])
    assert auto.value.body["param"] == "tool_choice"  # type: ignore[index]
    assert "--tool-call-parser" in auto.value.body["message"]  # type: ignore[index]


def test_tool_results_round_trip(client: OpenAI) -> None:
    arguments = '{"city": "Paris"}'
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    messages: Any = [
        *ASK_WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 degrees."},
    ]
    r = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=24,
        extra_body=FEW,
    )
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls


# -- scores stay raw (or say exactly what they are) -----------------------------------------------


def greedy_candidate(client: OpenAI, messages: Any, max_tokens: int = 16, **extra: Any) -> dict[str, Any]:
    """The one candidate of a greedy request, with its token ids and raw logprob_sum."""
    r = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        temperature=0,
        max_tokens=max_tokens,
        extra_body={"sharpening": {"strategy": "none", "return_candidates": True}} | extra,
    )
    (candidate,) = sharpening_of(r)["candidates"]
    return dict(candidate)


def test_logit_bias_changes_the_text_but_not_the_score(client: OpenAI, model_dir: Path) -> None:
    tokenizer = reference_model(model_dir)[0]
    (favoured,) = tokenizer.encode("Banana", add_special_tokens=False)[:1]
    plain = greedy_candidate(client, CAPITAL, max_tokens=4)
    biased = greedy_candidate(client, CAPITAL, max_tokens=4, logit_bias={str(favoured): 30})
    assert biased["token_ids"][0] == favoured and plain["token_ids"][0] != favoured
    rows = position_logprobs(model_dir, CAPITAL, biased["token_ids"])
    raw = sum(rows[i, tok].item() for i, tok in enumerate(biased["token_ids"]))
    # bf16 engine vs float32 reference on unlikely tokens; a biased score would be near 0 instead
    assert biased["logprob_sum"] == pytest.approx(raw, abs=0.05 * biased["num_tokens"] + 0.1)
    assert raw < -5


def test_constrained_scores_are_under_the_masked_distribution(
    client: OpenAI, model_dir: Path, served_dtype: str
) -> None:
    """Under a grammar, the reported log-probabilities are renormalized over the allowed tokens."""
    choices = ["Paris", "London", "Rome"]
    candidate = greedy_candidate(client, CAPITAL, structured_outputs={"choice": choices})
    tokens = candidate["token_ids"]
    tokenizer = reference_model(model_dir)[0]
    rows = position_logprobs(model_dir, CAPITAL, tokens)
    pieces = [tokenizer.decode([v]) for v in range(rows.shape[1])]
    stops = {tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])}
    masked, text = 0.0, ""
    for i, tok in enumerate(tokens):
        allowed = [
            v
            for v, piece in enumerate(pieces)
            if piece and any(c.startswith(text + piece) for c in choices) and v not in stops
        ]
        if text in choices:
            allowed += sorted(stops)
        masked += (rows[i, tok] - rows[i, allowed].logsumexp(0)).item()
        text += pieces[tok] if tok not in stops else ""
    unmasked = sum(rows[i, tok].item() for i, tok in enumerate(tokens))
    assert text in choices
    tolerance = score_bound(served_dtype, len(tokens))  # the engine's dtype against the float32 reference
    assert candidate["logprob_sum"] == pytest.approx(masked, abs=tolerance)
    assert candidate["logprob_sum"] > unmasked + 2 * tolerance  # clearly not the unconstrained one


# -- LangChain ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_model(server_url: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=f"{server_url}/v1",
        api_key="unused",
        model=MODEL,
        max_tokens=60,
        extra_body=FEW,
        max_retries=0,
    )


def test_langchain_invoke_stream_and_batch(chat_model: Any) -> None:
    assert chat_model.invoke("Say hello.").content
    assert "".join(str(chunk.content) for chunk in chat_model.stream("Say hello."))
    answers = chat_model.batch(["Say hello.", "Name a color."])
    assert len(answers) == 2 and all(a.content for a in answers)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output(chat_model: Any, method: str) -> None:
    structured = chat_model.with_structured_output(City, method=method)
    city = structured.invoke("Name a city in Italy and its country.")
    assert isinstance(city, City) and city.name and city.country
