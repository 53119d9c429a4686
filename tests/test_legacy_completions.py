"""Legacy /v1/completions on the fake engine: prompt lists, echo, prompt scoring, streaming."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.fakes import FakeEngine, Script

URL = "/v1/completions"


def events(text: str) -> list[Any]:
    """The JSON events of a server-sent event stream, [DONE] last."""
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [*(json.loads(d) for d in data[:-1]), data[-1]]


async def test_a_prompt_list_gives_each_prompt_its_own_choices_in_openai_order(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine(scripts=[Script([-1.0, -1.0, -1.0]), Script([-0.2, -0.3]), Script([-5.0])])
    async with make_client(engine) as client:
        body = {"prompt": ["ab", "cde", "f"], "n": 2, "sharpening": {"n": 3}}
        r = await client.post(URL, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3, 4, 5]
    # every prompt is sharpened on its own: the best candidate (script 1) first, then script 0
    assert [c["text"] for c in data["choices"]] == ["t0 ", "t0 t1 "] * 3
    assert data["usage"]["prompt_tokens"] == 3 + 4 + 2  # the fake adds one start token
    assert data["usage"]["completion_tokens"] == 3 * (3 + 2 + 1)
    s = data["sharpening"]
    assert s["candidates_drawn"] == 9 and s["selected_index"] is None
    assert [p["selected_index"] for p in s["prompts"]] == [1, 1, 1]
    assert len(engine.requests) == 9 and len({rid for rid, _ in engine.requests}) == 9


async def test_prompts_run_side_by_side_and_are_admitted_as_one_request(make_client: ClientFactory) -> None:
    engine = FakeEngine(step_seconds=0.05)
    async with make_client(engine, max_inflight_requests=1) as client:
        body = {"prompt": ["a", "b", "c", "d"], "sharpening": {"n": 2}}
        task = asyncio.ensure_future(client.post(URL, json=body))
        service = client.app.state.service  # type: ignore[attr-defined]
        while service.admission.requests == 0:
            await asyncio.sleep(0.005)
        assert (service.admission.requests, service.admission.candidates) == (1, 8)
        assert len(engine.requests) == 8  # every prompt's candidates at once
        busy = await client.post(URL, json={"prompt": "x"})
        r = await task
    assert r.status_code == 200 and len(r.json()["choices"]) == 4
    assert busy.status_code == 429
    assert service.admission.requests == 0 and service.admission.candidates == 0


async def test_echo_prepends_the_prompt_text(make_client: ClientFactory) -> None:
    async with make_client() as client:
        echo = {"echo": True, "sharpening": {"n": 1}}
        texts = await client.post(URL, json={"prompt": ["Hi", "yo"]} | echo)
        ids = await client.post(URL, json={"prompt": [[1, 5], [7]]} | echo)
    assert [c["text"] for c in texts.json()["choices"]] == ["Hit0 t1 ", "yot0 t1 "]
    # token-id prompts echo their decoded text
    assert [c["text"] for c in ids.json()["choices"]] == ["<1><5>t0 t1 ", "<7>t0 t1 "]


async def test_echo_with_logprobs_lists_the_prompt_scores_then_the_completion(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine(scripts=[Script([-0.5, -0.25])])
    async with make_client(engine) as client:
        body = {"prompt": [1, 7, 9], "echo": True, "logprobs": 1, "sharpening": {"n": 1}}
        r = await client.post(URL, json=body)
    logprobs = r.json()["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["<1>", "<7>", "<9>", "t0 ", ""]
    assert logprobs["token_logprobs"] == pytest.approx([None, -0.1, -0.2, -0.5, -0.25])
    assert logprobs["top_logprobs"][0] is None
    assert logprobs["top_logprobs"][1] == {"<7>": -0.1}
    assert logprobs["text_offset"] == [0, 3, 6, 9, 12]
    assert len(engine.scored) == 1


async def test_max_tokens_zero_with_echo_scores_the_prompt_without_generating(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        body = {"prompt": [[1, 2, 3], [1, 4]], "echo": True, "max_tokens": 0, "logprobs": 0}
        r = await client.post(URL, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert engine.requests == []  # no candidate drawn
    assert [c["text"] for c in data["choices"]] == ["<1><2><3>", "<1><4>"]
    assert [c["finish_reason"] for c in data["choices"]] == ["length", "length"]
    assert data["choices"][1]["logprobs"]["token_logprobs"] == pytest.approx([None, -0.1])
    assert data["choices"][0]["logprobs"]["top_logprobs"] == [None, {}, {}]
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}
    assert data["sharpening"]["candidates_drawn"] == 0


async def test_echo_without_logprobs_scores_nothing(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        r = await client.post(URL, json={"prompt": "ab", "echo": True, "max_tokens": 0})
    assert r.json()["choices"][0]["text"] == "ab" and engine.scored == []


async def test_streaming_several_prompts_streams_each_choice_with_its_index(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        body = {
            "prompt": ["a", "b"],
            "echo": True,
            "stream": True,
            "stream_options": {"include_usage": True},
            "sharpening": {"strategy": "none"},
        }
        r = await client.post(URL, json=body)
    chunks = events(r.text)
    assert chunks[-1] == "[DONE]"
    texts = {c["choices"][0]["index"]: c["choices"][0]["text"] for c in chunks[:2]}
    assert texts == {0: "at0 t1 ", 1: "bt0 t1 "}
    assert [c["finish_reason"] for c in chunks[2]["choices"]] == ["stop", "stop"]
    assert chunks[3]["usage"]["completion_tokens"] == 6
    assert len(chunks[3]["sharpening"]["prompts"]) == 2


async def test_one_plain_prompt_with_strategy_none_still_streams_live(make_client: ClientFactory) -> None:
    async with make_client() as client:
        body = {"prompt": ["a"], "stream": True, "sharpening": {"strategy": "none"}}
        r = await client.post(URL, json=body)
    pieces = [c["choices"][0]["text"] for c in events(r.text)[:-1] if c["choices"]]
    assert pieces[:2] == ["t0 ", "t1 "]  # token by token


BAD = [
    ({"prompt": []}, "prompt"),
    ({"prompt": ["a", ""]}, "prompt.1"),
    ({"prompt": ["a", []]}, "prompt"),
    ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
    ({"prompt": ["a", "x" * 600]}, "prompt.1"),
    ({"prompt": ["a"] * 9, "sharpening": {"n": 8}}, "prompt"),  # 72 candidates > max_candidates 64
    ({"prompt": [1, "a"]}, "prompt"),
]


@pytest.mark.parametrize(("body", "param"), BAD)
async def test_bad_prompts_are_a_400_naming_the_prompt(
    make_client: ClientFactory, body: dict[str, Any], param: str
) -> None:
    async with make_client() as client:
        r = await client.post(URL, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(param)
