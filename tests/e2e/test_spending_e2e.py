"""Budgets and adaptive stopping on the real engine, through the openai SDK."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from tests.e2e.test_strategies_e2e import STORY, inflight_candidates

MODEL = "SmolLM2-135M-Instruct"
BUDGET = 60
# docs/budgets.md: a candidate running when the budget is spent may still bring the tokens of
# the engine steps already under way; on CPU that is one or two steps, a few tokens at most.
IN_FLIGHT_PER_CANDIDATE = 4
COUNTING = "1, 2, 3, 4, 5,"


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300, max_retries=0)


def budgeted(n: int = 8, **more: Any) -> dict[str, Any]:
    return {"sharpening": {"n": n, "max_total_tokens": BUDGET, "return_candidates": True} | more}


def test_a_budgeted_request_stops_at_its_budget(client: OpenAI, server_url: str) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=128, seed=7, extra_body=budgeted()  # type: ignore[arg-type]
    )
    s = (r.model_extra or {})["sharpening"]
    assert s["stopped_by"] == "budget" and s["max_total_tokens"] == BUDGET
    assert r.usage is not None and r.usage.completion_tokens == s["generated_tokens"]
    cut = [c for c in s["candidates"] if c["status"] == "truncated"]
    assert BUDGET <= r.usage.completion_tokens <= BUDGET + IN_FLIGHT_PER_CANDIDATE * len(cut)
    chosen = next(c for c in s["candidates"] if c["index"] == s["selected_index"])
    assert r.choices[0].message.content == chosen["text"] and chosen["status"] != "pruned"
    assert inflight_candidates(server_url) == 0


def test_a_budgeted_stream_ends_with_the_summary(client: OpenAI, server_url: str) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=STORY,  # type: ignore[arg-type]
        max_tokens=128,
        seed=7,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=budgeted(),
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    s = next(c.model_extra["sharpening"] for c in chunks if (c.model_extra or {}).get("sharpening"))
    usage = next(c.usage for c in chunks if c.usage is not None)
    assert s["stopped_by"] == "budget" and text
    assert BUDGET <= usage.completion_tokens <= BUDGET + IN_FLIGHT_PER_CANDIDATE * s["n"]
    assert inflight_candidates(server_url) == 0


@pytest.mark.parametrize(
    "sharpening",
    [{"strategy": "best_of_n"}, {"strategy": "majority", "answer_pattern": r"(\d+)"}],
    ids=["best_of_n", "majority"],
)
def test_an_adaptive_request_on_an_easy_prompt_draws_fewer_than_its_cap(
    client: OpenAI, server_url: str, sharpening: dict[str, Any]
) -> None:
    """Counting on: the next number is nearly certain, so the first waves settle it."""
    r = client.completions.create(
        model=MODEL,
        prompt=COUNTING,
        max_tokens=6,
        stop=[","],
        seed=3,
        extra_body={"sharpening": sharpening | {"n": 32, "adaptive": True, "return_candidates": True}},
    )
    s = (r.model_extra or {})["sharpening"]
    assert s["stopped_by"] in ("certificate", "missing_mass", "repeated_leader", "posterior"), s
    assert s["candidates_drawn"] < 32 and len(s["candidates"]) == s["candidates_drawn"]
    assert r.choices[0].text.strip() == "6"
    assert inflight_candidates(server_url) == 0
