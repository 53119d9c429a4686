"""The foundation end to end: the openai SDK against a real server with the real engine."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from server.precision import score_bound

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=120)


def sharpening_of(response: Any) -> dict[str, Any]:
    """The `sharpening` extension of an SDK response."""
    extra = response.model_extra or {}
    return dict(extra["sharpening"])


def test_health_models_and_metrics(server_url: str) -> None:
    assert httpx.get(f"{server_url}/health").status_code == 200
    models = httpx.get(f"{server_url}/v1/models").json()
    assert models["data"][0]["id"] == "SmolLM2-135M-Instruct"
    metrics = httpx.get(f"{server_url}/metrics").text
    assert "whetstone_inflight_candidates" in metrics


def test_default_request_is_sharpened(client: OpenAI) -> None:
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=QUESTION, max_tokens=48)
    s = sharpening_of(r)
    assert s["strategy"] == "best_of_n" and s["n"] == 8
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.completion_tokens == s["generated_tokens"]


def test_greedy_is_deterministic(client: OpenAI) -> None:
    def greedy() -> tuple[str, float]:
        r = client.chat.completions.create(
            model="SmolLM2-135M-Instruct",
            messages=QUESTION,
            temperature=0,
            max_tokens=32,
            extra_body={"sharpening": {"strategy": "none"}},
        )
        s = sharpening_of(r)
        assert s["strategy"] == "none" and s["n"] == 1 and s["candidates_drawn"] == 1
        return r.choices[0].message.content or "", s["selected_score"]

    first, second = greedy(), greedy()
    assert first[0] == second[0]
    assert first[1] == pytest.approx(second[1], abs=1e-3)


@cache
def reference_model(model_dir: Path) -> tuple[Any, Any]:
    """The prepared model in transformers, float32: an independent verifier."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return AutoTokenizer.from_pretrained(model_dir), model


def position_logprobs(model_dir: Path, messages: Any, completion: list[int]) -> Any:
    """log pi(. | x, y_<t) for each completion position under the float32 reference model."""
    import torch

    tokenizer, model = reference_model(model_dir)
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    ids = torch.tensor([list(prompt) + completion])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return logprobs[len(prompt) - 1 : len(prompt) - 1 + len(completion)]


def rescore(model_dir: Path, messages: list[dict[str, str]], completion: list[int]) -> float:
    """Sum of log pi(y_t | x, y_<t) for the completion tokens under the reference model."""
    rows = position_logprobs(model_dir, messages, completion)
    return sum(rows[i, tok].item() for i, tok in enumerate(completion))


def test_best_of_n_reports_true_scores_and_picks_the_best(
    client: OpenAI, model_dir: Path, served_dtype: str
) -> None:
    messages = [{"role": "user", "content": "Name three colors."}]
    r = client.chat.completions.create(
        model="SmolLM2-135M-Instruct",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=40,
        temperature=0.8,
        seed=5,
        extra_body={"sharpening": {"n": 4, "return_candidates": True, "prune": False}},
    )
    s = sharpening_of(r)
    cands = s["candidates"]
    assert len(cands) == 4 and s["n"] == 4
    finished = [c for c in cands if c["status"] == "finished"]
    pool = finished or cands
    best = max(pool, key=lambda c: (c["score"], -c["index"]))
    assert s["selected_index"] == best["index"]
    assert s["selected_score"] == pytest.approx(best["score"])
    assert r.choices[0].message.content == best["text"]
    assert r.usage is not None
    assert r.usage.completion_tokens == sum(c["num_tokens"] for c in cands)
    eos = reference_model(model_dir)[0].eos_token_id
    for c in cands:
        assert c["num_tokens"] == len(c["token_ids"])
        assert c["score"] == pytest.approx(c["logprob_sum"])  # length_penalty 0
        if c["status"] == "finished":
            assert c["token_ids"][-1] == eos  # the stop token is scored too
        reference = rescore(model_dir, messages, c["token_ids"])
        # raw log-likelihood (temperature 1), the engine's dtype vs the float32 reference
        assert c["logprob_sum"] == pytest.approx(reference, abs=score_bound(served_dtype, c["num_tokens"])), c
