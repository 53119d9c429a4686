"""The field rule: every OpenAI SDK request field is decided, and refused fields really are 400s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai.types import completion_create_params as legacy_params
from openai.types.chat import completion_create_params as chat_params
from pydantic import BaseModel

from server.requests.fields import (
    CHAT_FIELDS,
    COMPLETION_FIELDS,
    EXTENSION_FIELDS,
    FieldRule,
    Treatment,
    markdown_table,
)
from server.requests.openai import ChatCompletionRequest, CompletionRequest
from tests.conftest import ClientFactory

HELLO = [{"role": "user", "content": "hello"}]
API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def sdk_fields(module: Any) -> set[str]:
    """Every request field the installed openai SDK can send to an endpoint."""
    return set(module.CompletionCreateParamsStreaming.__annotations__) | set(
        module.CompletionCreateParamsNonStreaming.__annotations__
    )


@pytest.mark.parametrize(
    ("module", "rules"),
    [(chat_params, CHAT_FIELDS), (legacy_params, COMPLETION_FIELDS)],
    ids=["chat", "legacy"],
)
def test_every_sdk_field_is_decided_and_nothing_else_is_listed(
    module: Any, rules: dict[str, FieldRule]
) -> None:
    fields = sdk_fields(module)
    assert "stream" in fields and "model" in fields  # the derivation still sees the SDK's fields
    assert sorted(fields - rules.keys()) == [], "new SDK fields: decide them in server/requests/fields.py"
    assert sorted(rules.keys() - fields) == []


@pytest.mark.parametrize(
    ("model", "rules"),
    [(ChatCompletionRequest, CHAT_FIELDS), (CompletionRequest, COMPLETION_FIELDS)],
    ids=["chat", "legacy"],
)
def test_honoured_fields_are_declared_and_the_others_reach_the_extras(
    model: type[BaseModel], rules: dict[str, FieldRule]
) -> None:
    declared = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    for name, rule in (rules | EXTENSION_FIELDS).items():
        assert (name in declared) == (rule.treatment is Treatment.HONOURED), name


REFUSED_VALUES: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "function_call": {"name": "f"},
    "reasoning_effort": "high",
    "verbosity": "low",
    "web_search_options": {},
    "moderation": {"model": "omni-moderation-latest"},
    "suffix": "and then?",
}
NO_OP_VALUES: dict[str, Any] = {
    "metadata": {"team": "a"},
    "store": True,
    "service_tier": "auto",
    "prediction": {"type": "content", "content": "Paris"},
    "prompt_cache_key": "k",
    "prompt_cache_options": {"mode": "auto"},
    "prompt_cache_retention": "24h",
    "safety_identifier": "user-1",
    "user": "user-1",
    "unknown_vendor_field": {"anything": 1},
}


def body_for(rules: dict[str, FieldRule]) -> tuple[str, dict[str, Any]]:
    """The path and a minimal valid body of the endpoint these rules belong to."""
    if rules is CHAT_FIELDS:
        return "/v1/chat/completions", {"messages": HELLO}
    return "/v1/completions", {"prompt": "hello"}


def test_every_refused_field_has_a_test_value() -> None:
    refused = {
        n for r in (CHAT_FIELDS, COMPLETION_FIELDS) for n, f in r.items() if f.treatment is Treatment.REFUSED
    }
    assert refused == set(REFUSED_VALUES)


@pytest.mark.parametrize("rules", [CHAT_FIELDS, COMPLETION_FIELDS], ids=["chat", "legacy"])
async def test_refused_fields_are_400s_naming_them_unless_at_their_default(
    make_client: ClientFactory, rules: dict[str, FieldRule]
) -> None:
    path, body = body_for(rules)
    refused = {n: r for n, r in rules.items() if r.treatment is Treatment.REFUSED}
    async with make_client(default_n=2) as client:
        for name, rule in refused.items():
            r = await client.post(path, json=body | {name: REFUSED_VALUES[name]})
            assert r.status_code == 400, name
            error = r.json()["error"]
            assert error["param"] == name and name in error["message"] and rule.note in error["message"]
            for accepted in rule.accepts:
                assert (await client.post(path, json=body | {name: accepted})).status_code == 200, name


@pytest.mark.parametrize("rules", [CHAT_FIELDS, COMPLETION_FIELDS], ids=["chat", "legacy"])
async def test_no_op_and_unknown_fields_are_accepted(
    make_client: ClientFactory, rules: dict[str, FieldRule]
) -> None:
    path, body = body_for(rules)
    values = {n: v for n, v in NO_OP_VALUES.items() if n in rules or n not in CHAT_FIELDS | COMPLETION_FIELDS}
    async with make_client(default_n=2) as client:
        r = await client.post(path, json=body | values)
    assert r.status_code == 200, r.text


def test_the_api_doc_shows_the_code_tables() -> None:
    doc = API_DOC.read_text()
    for rules in (CHAT_FIELDS, COMPLETION_FIELDS, EXTENSION_FIELDS):
        assert markdown_table(rules) in doc, (
            "paste markdown_table(...) of server.requests.fields into docs/api.md"
        )
