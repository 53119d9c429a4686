"""Routes against the app with a fake engine: shapes, numbers, errors."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from tests.conftest import ClientFactory
from tests.fakes import DeadEngine, FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


def engine_with_a_clear_winner() -> FakeEngine:
    """Candidate 0 stops early with high likelihood; the others ramble with low likelihood."""
    return FakeEngine(scripts=[Script([-0.1, -0.1])] + [Script([-2.0] * 20) for _ in range(3)])


async def test_chat_returns_the_highest_scoring_candidate(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0, -1.0]), Script([-0.2, -0.3]), Script([-3.0])])
    async with make_client(engine) as client:
        body = {"messages": HELLO, "sharpening": {"n": 3, "return_candidates": True}}
        r = await client.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    s = data["sharpening"]
    assert s["strategy"] == "best_of_n" and s["n"] == 3
    assert s["selected_index"] == 1
    assert s["selected_score"] == pytest.approx(-0.5)
    assert data["choices"][0]["message"]["content"] == "t0 "
    assert data["choices"][0]["finish_reason"] == "stop"
    cands = s["candidates"]
    assert [c["index"] for c in cands] == [0, 1, 2]
    assert cands[1]["token_ids"] == [10, 2] and cands[1]["num_tokens"] == 2
    assert cands[1]["logprob_sum"] == pytest.approx(-0.5)
    assert data["usage"]["completion_tokens"] == sum(c["num_tokens"] for c in cands)
    assert data["usage"]["completion_tokens"] == s["generated_tokens"]
    assert data["usage"]["total_tokens"] == (
        data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )


async def test_a_score_within_the_tie_tolerance_loses_to_the_lower_index(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0, -1.0]), Script([-0.2, -0.3]), Script([-3.0])])
    async with make_client(engine, tie_tolerance=2.0) as client:
        health = (await client.get("/health")).json()
        r = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 3}})
    assert health["tie_tolerance"] == 2.0
    assert r.json()["sharpening"]["selected_index"] == 0  # -2.0 ties with -0.5 at tolerance 2


async def test_candidates_are_separate_engine_requests_with_seed_plus_index(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        body = {"messages": HELLO, "temperature": 0.7, "sharpening": {"n": 4, "seed": 100}}
        assert (await client.post(CHAT, json=body)).status_code == 200
    ids = [rid for rid, _ in engine.requests]
    assert len(set(ids)) == 4
    assert sorted(spec.seed for _, spec in engine.requests) == [100, 101, 102, 103]
    assert {spec.temperature for _, spec in engine.requests} == {0.7}


async def test_by_default_one_candidate_is_greedy_and_the_rest_cooler_than_one(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine()
    async with make_client(engine, default_n=5) as client:
        r = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"return_candidates": True}})
    summary = r.json()["sharpening"]
    assert summary["n"] == 5 and len(engine.requests) == 5
    temperatures = {request_id: spec.temperature for request_id, spec in engine.requests}
    assert sorted(temperatures.values()) == [0.0, 0.4, 0.4, 0.4, 0.4]
    assert [t for i, t in temperatures.items() if i.endswith("-0")] == [0.0]  # candidate 0 is greedy
    assert summary["candidate_temperatures"] == [0.0, 0.4]
    assert [c["temperature"] for c in summary["candidates"]] == [0.0, 0.4, 0.4, 0.4, 0.4]


@pytest.mark.parametrize(
    ("body", "settings", "temperatures"),
    [
        ({"temperature": 1.0}, {}, {1.0}),  # the paper's setting: one field away
        ({"temperature": 0.0}, {}, {0.0}),
        ({"temperature": 1.0, "sharpening": {"greedy_candidate": True}}, {}, {0.0, 1.0}),
        ({"sharpening": {"greedy_candidate": False}}, {}, {0.4}),
        ({}, {"candidate_temperature": 0.6}, {0.0, 0.6}),
        ({}, {"greedy_candidate": False}, {0.4}),
        ({"sharpening": {"strategy": "power", "alpha": 4.0}}, {}, {1.0}),  # claims pi^alpha: draws from pi
        ({"sharpening": {"strategy": "none"}}, {}, {1.0}),
    ],
)
async def test_candidate_temperatures_follow_the_request_then_the_server(
    make_client: ClientFactory, body: dict, settings: dict, temperatures: set[float]
) -> None:
    engine = FakeEngine()
    async with make_client(engine, **settings) as client:
        r = await client.post(CHAT, json={"messages": HELLO, "max_tokens": 4} | body)
    assert r.status_code == 200, r.text
    assert {spec.temperature for _, spec in engine.requests} == temperatures
    assert r.json()["sharpening"]["candidate_temperatures"] == sorted(temperatures)


@pytest.mark.parametrize(
    "sharpening",
    [
        {},
        {"n": 6},
        {"strategy": "rejection", "threshold": -1.0},
        {"strategy": "beam"},
        {"strategy": "majority", "adaptive": True, "answer_pattern": "(t.)"},
        {"strategy": "confidence", "answer_pattern": "(t.)"},
        {"strategy": "power", "alpha": 4.0},
    ],
)
async def test_at_temperature_zero_one_greedy_decode_stands_for_all_candidates(
    make_client: ClientFactory, sharpening: dict
) -> None:
    engine = FakeEngine()
    body = {"messages": HELLO, "max_tokens": 4, "temperature": 0, "sharpening": sharpening}
    async with make_client(engine) as client:
        r = await client.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    summary = r.json()["sharpening"]
    assert [spec.temperature for _, spec in engine.requests] == [0.0]
    assert summary["n"] == 1 and summary["candidates_drawn"] == 1
    assert summary["candidate_temperatures"] == [0.0]


async def test_at_temperature_zero_several_choices_still_draw_as_many_candidates(
    make_client: ClientFactory,
) -> None:
    engine = FakeEngine()
    body = {"messages": HELLO, "max_tokens": 4, "temperature": 0, "n": 2, "sharpening": {"n": 3}}
    async with make_client(engine) as client:
        r = await client.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    assert len(r.json()["choices"]) == 2 and len(engine.requests) == 3


async def test_beam_decides_every_16_tokens_unless_told(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        for sharpening, round_tokens in (({}, 16), ({"checkpoint_tokens": 5}, 5)):
            engine.requests.clear()
            body = {"messages": HELLO, "max_tokens": 40, "sharpening": {"strategy": "beam", **sharpening}}
            r = await client.post(CHAT, json=body)
            assert r.status_code == 200, r.text
            assert engine.requests[0][1].max_tokens == round_tokens


async def test_pruning_aborts_losers_and_keeps_the_winner(make_client: ClientFactory) -> None:
    engine = engine_with_a_clear_winner()
    async with make_client(engine) as client:
        body = {"messages": HELLO, "max_tokens": 20, "sharpening": {"n": 4, "return_candidates": True}}
        pruned = (await client.post(CHAT, json=body)).json()["sharpening"]
        body["sharpening"]["prune"] = False
        full = (await client.post(CHAT, json=body)).json()["sharpening"]
    assert pruned["selected_index"] == full["selected_index"] == 0
    assert pruned["candidates_pruned"] == 3 and full["candidates_pruned"] == 0
    assert pruned["generated_tokens"] < full["generated_tokens"]
    statuses = [c["status"] for c in pruned["candidates"]]
    assert statuses == ["finished", "pruned", "pruned", "pruned"]
    assert engine.aborted  # the engine was told


async def test_strategy_none_is_one_plain_generation(make_client: ClientFactory) -> None:
    engine = FakeEngine()
    async with make_client(engine) as client:
        body = {"messages": HELLO, "temperature": 0, "sharpening": {"strategy": "none", "n": 8}}
        s = (await client.post(CHAT, json=body)).json()["sharpening"]
    assert s["strategy"] == "none" and s["n"] == 1 and s["candidates_drawn"] == 1
    assert s["selected_score"] == pytest.approx(-1.1)
    assert len(engine.requests) == 1 and engine.requests[0][1].temperature == 0


async def test_truncated_candidates_are_reported(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 10)])
    async with make_client(engine) as client:
        body = {"messages": HELLO, "max_tokens": 3, "sharpening": {"n": 2}}
        data = (await client.post(CHAT, json=body)).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["sharpening"]["candidates_truncated"] == 2
    assert data["usage"]["completion_tokens"] == 6


async def test_openai_n_returns_top_candidates_as_choices(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-1.0]), Script([-0.5]), Script([-2.0]), Script([-0.7])])
    async with make_client(engine) as client:
        body = {"messages": HELLO, "n": 2, "sharpening": {"n": 4, "return_candidates": True}}
        data = (await client.post(CHAT, json=body)).json()
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert data["sharpening"]["selected_index"] == 1
    scores = {c["index"]: c["score"] for c in data["sharpening"]["candidates"]}
    assert sorted(scores, key=scores.get, reverse=True)[:2] == [1, 3]  # type: ignore[arg-type]


async def test_legacy_best_of_means_mean_token_score(make_client: ClientFactory) -> None:
    # candidate 0: sum -1.0 over 2 tokens (mean -0.5); candidate 1: sum -0.9 over 1 token
    engine = FakeEngine(scripts=[Script([-0.5, -0.5]), Script([-0.9])])
    async with make_client(engine) as client:
        r = await client.post("/v1/completions", json={"prompt": "2+2=", "best_of": 2})
        plain = await client.post(
            "/v1/completions", json={"prompt": "2+2=", "best_of": 1, "sharpening": {"n": 2}}
        )
    s = r.json()["sharpening"]
    assert r.json()["object"] == "text_completion"
    assert s["length_penalty"] == 1.0 and s["n"] == 2 and s["selected_index"] == 0
    assert plain.json()["sharpening"]["selected_index"] == 1


async def test_completion_accepts_token_id_prompts(make_client: ClientFactory) -> None:
    async with make_client() as client:
        r = await client.post("/v1/completions", json={"prompt": [1, 5, 9]})
    assert r.status_code == 200
    assert r.json()["usage"]["prompt_tokens"] == 3


async def test_stream_sends_chunks_summary_usage_and_done(make_client: ClientFactory) -> None:
    async with make_client() as client:
        body = {
            "messages": HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
            "sharpening": {"n": 2},
        }
        r = await client.post(CHAT, json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "t0 t1 "
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert chunks[-1]["sharpening"]["n"] == 2
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_stream_failure_ends_with_error_event_then_done(make_client: ClientFactory) -> None:
    engine = FakeEngine(fail_with=RuntimeError("boom"))
    async with make_client(engine) as client:
        r = await client.post(CHAT, json={"messages": HELLO, "stream": True})
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["error"]["type"] == "server_error"
    assert events[-1] == "[DONE]"
    assert "boom" not in r.text  # no internals leak


BAD_REQUESTS = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"messages": HELLO, "temperature": 3}, "temperature"),
    ({"messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"messages": HELLO, "max_tokens": 100000}, "max_tokens"),
    ({"messages": HELLO, "sharpening": {"strategy": "annealing"}}, "sharpening.strategy"),
    ({"messages": HELLO, "sharpening": {"n": 1000}}, "sharpening.n"),
    ({"messages": HELLO, "sharpening": {"nn": 3}}, "sharpening.nn"),
    ({"messages": HELLO, "sharpening": {"strategy": "rejection"}}, "sharpening.threshold"),
    (
        {"messages": HELLO, "sharpening": {"strategy": "majority", "answer_pattern": "("}},
        "sharpening.answer_pattern",
    ),
    ({"messages": HELLO, "n": 3, "sharpening": {"n": 2}}, "n"),
    ({"messages": "hello"}, "messages"),
    # JSON parsers accept Infinity and NaN; alpha=Infinity once made power sampling loop forever
    ({"messages": HELLO, "sharpening": {"strategy": "power", "alpha": math.inf}}, "sharpening.alpha"),
    (
        {"messages": HELLO, "sharpening": {"strategy": "rejection", "threshold": math.nan}},
        "sharpening.threshold",
    ),
    ({"messages": HELLO, "temperature": math.nan}, "temperature"),
]


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
async def test_bad_input_is_a_400_naming_the_field(
    make_client: ClientFactory, body: dict, param: str
) -> None:
    async with make_client() as client:
        # json.dumps writes Infinity/NaN as JavaScript does (httpx's json= refuses them)
        r = await client.post(CHAT, content=json.dumps(body), headers={"content-type": "application/json"})
        assert (await client.get("/health")).status_code == 200  # still serving
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert err["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [(CHAT, {"messages": [{"role": "user", "content": "x" * 600}]}, "messages"),
     ("/v1/completions", {"prompt": "x" * 600}, "prompt")],
)
async def test_a_prompt_longer_than_the_context_names_its_own_field(
    make_client: ClientFactory, path: str, body: dict, param: str
) -> None:
    async with make_client(FakeEngine(max_model_len=2)) as client:  # fake chat prompts are 2 tokens
        r = await client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["param"] == param


async def test_malformed_json_is_a_400(make_client: ClientFactory) -> None:
    async with make_client() as client:
        r = await client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]["message"]


async def test_unknown_model_is_404_and_unknown_fields_are_ignored(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        r = await client.post(CHAT, json={"messages": HELLO, "model": "gpt-9"})
        ok = await client.post(CHAT, json={"messages": HELLO, "model": "fake-model", "foo": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert ok.status_code == 200


async def test_api_key_guards_v1_but_not_health(make_client: ClientFactory) -> None:
    async with make_client(api_key="sekrit") as client:
        none = await client.post(CHAT, json={"messages": HELLO})
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        right = await client.get("/v1/models", headers={"Authorization": "Bearer sekrit"})
        health = await client.get("/health")
    assert none.status_code == 401 and wrong.status_code == 401
    assert none.json()["error"]["code"] == "invalid_api_key"
    assert right.status_code == 200 and health.status_code == 200


async def test_dead_engine_gives_503(make_client: ClientFactory) -> None:
    async with make_client(DeadEngine()) as client:
        health = await client.get("/health")
        chat = await client.post(CHAT, json={"messages": HELLO})
    assert health.status_code == 503 and chat.status_code == 503
    assert chat.json()["error"]["type"] == "service_unavailable"


async def test_a_candidate_the_engine_aborts_by_itself_is_a_503(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.5, -0.5, -0.5, -0.1])], self_aborted_candidates={1})
    async with make_client(engine) as client:
        chat = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 3}})
        engine.self_aborted_candidates.clear()
        again = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 3}})
        metrics = (await client.get("/metrics")).text
    assert chat.status_code == 503 and chat.json()["error"]["type"] == "service_unavailable"
    assert "aborted candidate 1 on its own" in chat.json()["error"]["message"]
    assert again.status_code == 200 and again.json()["sharpening"]["candidates_pruned"] == 0
    assert 'whetstone_candidates_total{status="pruned"} 0.0' in metrics
    assert "whetstone_inflight_candidates 0.0" in metrics


async def test_models_version_and_metrics(make_client: ClientFactory) -> None:
    async with make_client(engine_with_a_clear_winner()) as client:
        await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 4}})
        models = (await client.get("/v1/models")).json()
        version = (await client.get("/version")).json()
        metrics = (await client.get("/metrics")).text
    assert models["data"][0]["id"] == "fake-model"
    assert version["model"] == "fake-model" and version["version"]
    assert 'whetstone_requests_total{endpoint="chat",status="200",strategy="best_of_n"} 1.0' in metrics
    assert 'whetstone_candidates_total{status="pruned"} 3.0' in metrics
    assert "whetstone_generated_tokens_total 5.0" in metrics
    assert "whetstone_prefix_cached_tokens_total 3.0" in metrics  # 3 siblings reuse 1 prompt token
    assert "whetstone_inflight_candidates 0.0" in metrics


async def test_chat_logprobs_in_openai_format(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.25, -0.5])])
    async with make_client(engine) as client:
        body = {"messages": HELLO, "logprobs": True, "top_logprobs": 2, "sharpening": {"n": 1}}
        choice = (await client.post(CHAT, json=body)).json()["choices"][0]
        plain = (await client.post(CHAT, json={"messages": HELLO})).json()["choices"][0]
    content = choice["logprobs"]["content"]
    assert [t["logprob"] for t in content] == [-0.25, -0.5]
    assert content[0]["token"] == "t0 " and content[0]["bytes"] == list(b"t0 ")
    assert [alt["token"] for alt in content[0]["top_logprobs"]] == ["t0 ", "alt"]
    assert plain["logprobs"] is None


async def test_completion_logprobs_in_legacy_format(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.25, -0.5, -0.1])])
    async with make_client(engine) as client:
        body = {"prompt": "hi", "logprobs": 1, "sharpening": {"n": 1}}
        lp = (await client.post("/v1/completions", json=body)).json()["choices"][0]["logprobs"]
    assert lp["tokens"] == ["t0 ", "t1 ", ""]
    assert lp["token_logprobs"] == [-0.25, -0.5, -0.1]
    assert lp["text_offset"] == [0, 3, 6]
    assert lp["top_logprobs"][0] == {"t0 ": -0.25}


async def test_admission_limit_gives_429_with_retry_after(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 50)], step_seconds=0.01)
    async with make_client(engine, max_inflight_requests=1) as client:
        first = asyncio.create_task(client.post(CHAT, json={"messages": HELLO}))
        while not engine.requests:
            await asyncio.sleep(0.01)
        second = await client.post(CHAT, json={"messages": HELLO})
        assert (await first).status_code == 200
        third = await client.post(CHAT, json={"messages": HELLO})
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert third.status_code == 200


async def test_candidate_limit_counts_candidates_in_flight(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1] * 50)], step_seconds=0.01)
    async with make_client(engine, max_inflight_candidates=10) as client:
        body = {"messages": HELLO, "sharpening": {"n": 8}}
        first = asyncio.create_task(client.post(CHAT, json=body))
        while not engine.requests:
            await asyncio.sleep(0.01)
        second = await client.post(CHAT, json=body)
        small = await client.post(CHAT, json={"messages": HELLO, "sharpening": {"n": 2}})
        await first
    assert second.status_code == 429 and small.status_code == 200


async def test_strategy_none_streams_live_token_by_token(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1, -0.2, -0.3, -0.4])])
    async with make_client(engine) as client:
        body = {"messages": HELLO, "stream": True, "logprobs": True, "sharpening": {"strategy": "none"}}
        r = await client.post(CHAT, json=body)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [e["choices"][0]["delta"].get("content") for e in events[1:-1]]
    assert pieces == ["t0 ", "t1 ", "t2 ", ""]  # one chunk per token; the stop token has no text
    logprobs = [e["choices"][0]["logprobs"]["content"][0]["logprob"] for e in events[1:-1]]
    assert logprobs == [-0.1, -0.2, -0.3, -0.4]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["sharpening"]["selected_num_tokens"] == 4


async def test_live_completion_stream_offsets_follow_the_text(make_client: ClientFactory) -> None:
    engine = FakeEngine(scripts=[Script([-0.1, -0.2, -0.3])])
    async with make_client(engine) as client:
        body = {"prompt": "hi", "stream": True, "logprobs": 0, "sharpening": {"strategy": "none"}}
        r = await client.post("/v1/completions", json=body)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    offsets = [e["choices"][0]["logprobs"]["text_offset"][0] for e in events[:-1]]
    assert offsets == [0, 3, 6]
