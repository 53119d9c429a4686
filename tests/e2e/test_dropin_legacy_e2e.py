"""Legacy completions, the Responses API and the tokenizer routes with real third-party clients.

The openai SDK, LangChain's legacy `OpenAI` and lm-evaluation-harness run against the session
server (real engine). Echoed prompt log-probabilities are checked against a transformers
float32 re-score of the prepared model.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from server.precision import score_bound
from tests.e2e.test_foundation_e2e import reference_model

logger = logging.getLogger(__name__)
MODEL = "SmolLM2-135M-Instruct"
TASKS = Path(__file__).parent / "lm_eval_tasks"
GREEDY = {"sharpening": {"strategy": "none"}}


@pytest.fixture(scope="module")
def client(server_url: str) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key="unused", timeout=300)


def reference_logprobs(model_dir: Path, ids: list[int]) -> list[float]:
    """log pi(x_t | x_<t) of every token after the first, under the float32 reference model."""
    import torch

    _, model = reference_model(model_dir)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    return [logprobs[t - 1, ids[t]].item() for t in range(1, len(ids))]


def echo_scores(server_url: str, prompts: list[str] | list[list[int]]) -> list[list[float | None]]:
    """Each prompt's echoed token log-probabilities (max_tokens 0: nothing generated)."""
    body = {"model": MODEL, "prompt": prompts, "echo": True, "max_tokens": 0, "logprobs": 1}
    r = httpx.post(f"{server_url}/v1/completions", json=body, timeout=300)
    assert r.status_code == 200, r.text
    return [c["logprobs"]["token_logprobs"] for c in sorted(r.json()["choices"], key=lambda c: c["index"])]


def test_batched_prompts_with_the_openai_sdk(client: OpenAI) -> None:
    prompts = ["The capital of France is", "One, two, three,", "Roses are red,"]
    r = client.completions.create(
        model=MODEL, prompt=prompts, max_tokens=8, temperature=0.8, seed=3, n=2,
        extra_body={"sharpening": {"n": 3, "prune": False, "return_candidates": True}},
    )
    assert [c.index for c in r.choices] == list(range(6))
    summary = (r.model_extra or {})["sharpening"]
    assert len(summary["prompts"]) == 3 and summary["candidates_drawn"] == 9
    assert r.usage is not None and r.usage.completion_tokens == summary["generated_tokens"]
    for i, own in enumerate(summary["prompts"]):
        # prompt i's choices are i*n and i*n+1: its own best candidate, then its runner-up
        ranked = sorted(own["candidates"], key=lambda c: (c["status"] != "finished", -c["score"], c["index"]))
        assert own["selected_index"] == ranked[0]["index"]
        assert [r.choices[2 * i].text, r.choices[2 * i + 1].text] == [c["text"] for c in ranked[:2]]


def test_echo_logprobs_equal_a_transformers_rescore(
    client: OpenAI, model_dir: Path, served_dtype: str
) -> None:
    tokenizer, _ = reference_model(model_dir)
    prompts = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of"]
    r = client.completions.create(
        model=MODEL, prompt=prompts, max_tokens=0, echo=True, logprobs=2, extra_body=GREEDY
    )
    for prompt, choice in zip(prompts, sorted(r.choices, key=lambda c: c.index), strict=True):
        assert choice.text == prompt and choice.logprobs is not None
        scores = choice.logprobs.token_logprobs
        ids = tokenizer.encode(prompt)
        assert scores is not None and len(scores) == len(ids) and scores[0] is None
        assert "".join(choice.logprobs.tokens or []) == prompt
        reference = reference_logprobs(model_dir, ids)
        got = [float(s) for s in scores[1:] if s is not None]
        # raw log-probabilities: the engine's dtype vs the float32 reference, as for candidate scores
        worst = max(abs(a - b) for a, b in zip(got, reference, strict=True))
        logger.info("echo (%s) vs float32 re-score: %d tokens, sum %.4f vs %.4f, worst token %.4f",
                    served_dtype, len(ids), sum(got), sum(reference), worst)
        assert sum(got) == pytest.approx(sum(reference), abs=score_bound(served_dtype, len(ids)))
        assert got == pytest.approx(reference, rel=0.03, abs=0.25)  # measured worst: 0.15
        top = choice.logprobs.top_logprobs or []
        assert top[0] is None and all(len(t) >= 1 for t in top[1:])


def test_echo_with_generation_scores_prompt_then_completion(client: OpenAI, model_dir: Path) -> None:
    r = client.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=5, echo=True, logprobs=0, extra_body=GREEDY
    )
    choice = r.choices[0]
    assert choice.text.startswith("Once upon a time") and choice.logprobs is not None
    tokens = choice.logprobs.tokens or []
    assert "".join(tokens) == choice.text
    scores = choice.logprobs.token_logprobs or []
    summary = (r.model_extra or {})["sharpening"]
    prompt_len = len(reference_model(model_dir)[0].encode("Once upon a time"))
    assert len(scores) == prompt_len + summary["selected_num_tokens"]
    assert sum(scores[prompt_len:]) == pytest.approx(summary["selected_logprob_sum"], abs=1e-3)


def test_streaming_several_prompts(client: OpenAI) -> None:
    stream = client.completions.create(
        model=MODEL, prompt=["Hello", "Goodbye"], max_tokens=6, stream=True, echo=True,
        extra_body={"sharpening": {"n": 2}},
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
    assert texts[0].startswith("Hello") and texts[1].startswith("Goodbye")


def test_langchain_legacy_openai_batch(server_url: str) -> None:
    from langchain_openai import OpenAI as LangChainOpenAI

    llm = LangChainOpenAI(
        model=MODEL, base_url=f"{server_url}/v1", api_key="unused", max_tokens=8, temperature=0.5,
        extra_body={"sharpening": {"n": 2}},
    )
    answers = llm.batch(["The sky is", "Water is", "Fire is"])
    assert len(answers) == 3 and all(isinstance(a, str) and a for a in answers)


def test_responses_create_and_stream(client: OpenAI) -> None:
    r = client.responses.create(
        model=MODEL, input="What is the capital of France?", instructions="Answer in one word.",
        max_output_tokens=16, temperature=0, extra_body=GREEDY,
    )
    assert r.status in ("completed", "incomplete") and r.output_text
    assert r.usage is not None and r.usage.output_tokens >= 1
    stream = client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "What is the capital of France?"}],
        instructions="Answer in one word.", max_output_tokens=16, temperature=0, stream=True,
        extra_body=GREEDY,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == r.output_text  # greedy: the same answer streamed


def test_tokenize_detokenize_and_model_by_id(server_url: str, model_dir: Path) -> None:
    tokenizer, _ = reference_model(model_dir)
    text = "Hello, whetstone!"
    r = httpx.post(f"{server_url}/tokenize", json={"prompt": text, "return_token_strs": True}).json()
    assert r["tokens"] == tokenizer.encode(text) and r["count"] == len(r["tokens"])
    assert r["max_model_len"] == 2048 and r["token_strs"] == tokenizer.convert_ids_to_tokens(r["tokens"])
    chat = [{"role": "user", "content": text}]
    c = httpx.post(f"{server_url}/tokenize", json={"messages": chat}).json()
    expected = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert c["tokens"] == list(expected)
    back = httpx.post(f"{server_url}/detokenize", json={"tokens": r["tokens"]}).json()
    assert back == {"prompt": text}
    assert httpx.get(f"{server_url}/v1/models/{MODEL}").json()["id"] == MODEL
    assert httpx.get(f"{server_url}/v1/models/gpt-4o").status_code == 404


def completion_requests(server_url: str) -> float:
    """How many /v1/completions requests the server has answered (its Prometheus counter)."""
    lines = httpx.get(f"{server_url}/metrics").text.splitlines()
    prefix = 'whetstone_requests_total{endpoint="completions"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def task_config(name: str) -> dict[str, Any]:
    """A shipped lm-eval task, its data file made absolute."""
    config = yaml.safe_load((TASKS / name).read_text())
    config["dataset_kwargs"]["data_files"]["test"] = str(TASKS / "capitals.jsonl")
    return dict(config)


def run_lm_eval(model: str, model_args: dict[str, Any], tasks: list[dict[str, Any]], **kwargs: Any) -> Any:
    """lm_eval.simple_evaluate, offline."""
    import lm_eval

    return lm_eval.simple_evaluate(
        model=model, model_args=model_args, tasks=tasks, log_samples=True, **kwargs
    )


def greedy_until(tokenizer: Any, model: Any, context: str, until: list[str], max_tokens: int) -> str:
    """The reference model's greedy continuation of `context`, cut before the first stop string."""
    import torch

    ids = torch.tensor([tokenizer.encode(context)])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False)
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    cuts = [text.index(stop) for stop in until if stop in text]
    return text[: min(cuts)] if cuts else text


def test_lm_eval_local_completions_loglikelihood_and_generation(
    server_url: str, model_dir: Path, served_dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = {
        "model": MODEL,
        "base_url": f"{server_url}/v1/completions",
        "tokenizer_backend": "huggingface",
        "tokenizer": str(model_dir),
        "max_retries": 1,
        "timeout": 300,
    }
    tasks = [task_config("capitals_mc.yaml"), task_config("capitals_gen.yaml")]
    before = completion_requests(server_url)
    out = run_lm_eval("local-completions", args, tasks, batch_size=4)
    # 24 scored choices and 6 generations, four prompts per request
    assert completion_requests(server_url) - before == 24 / 4 + 2
    logger.info("lm-eval local-completions: %s", {k: v for k, v in out["results"].items()})
    mc = out["results"]["whetstone_capitals_mc"]
    assert 0.0 <= mc["acc,none"] <= 1.0
    gen = out["results"]["whetstone_capitals_gen"]
    assert 0.0 <= gen["exact_match,none"] <= 1.0
    generations = [s["resps"][0][0] for s in out["samples"]["whetstone_capitals_gen"]]
    logger.info("lm-eval local-completions generations: %s", generations)
    # lm-eval generates greedily (temperature 0), so every candidate is the greedy continuation:
    # transformers' own greedy decoding, cut at the task's stop strings, is the expected answer
    # (this tiny model ends its turn right after "Answer:", so these are mostly empty strings)
    tokenizer, model = reference_model(model_dir)
    contexts = [s["arguments"][0][0] for s in out["samples"]["whetstone_capitals_gen"]]
    assert generations == [greedy_until(tokenizer, model, c, ["\n", "."], 8) for c in contexts]
    # lm-eval's log-likelihood of each choice is what /v1/completions echo returns for it, scored
    # alone here and in a batch of 4 by lm-eval: equal up to the bound of the dtype served
    sample = out["samples"]["whetstone_capitals_mc"][0]
    context = sample["arguments"][0][0]
    for (ctx, continuation), (loglikelihood, _) in zip(
        [a[:2] for a in sample["arguments"]], [r[0] for r in sample["resps"]], strict=True
    ):
        assert ctx == context
        whole = tokenizer.encode(ctx + continuation)  # lm-eval encodes the pair whole, then splits
        scores = echo_scores(server_url, [whole])[0]
        continuation_scores = [s for s in scores[len(tokenizer.encode(ctx)) :] if s is not None]
        ours = sum(continuation_scores)
        logger.info("lm-eval %r vs echo alone (%s): %.4f vs %.4f",
                    continuation, served_dtype, loglikelihood, ours)
        assert math.isfinite(loglikelihood)
        assert loglikelihood == pytest.approx(ours, abs=score_bound(served_dtype, len(continuation_scores)))


def test_lm_eval_local_chat_completions(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = {"model": MODEL, "base_url": f"{server_url}/v1/chat/completions", "max_retries": 1, "timeout": 300}
    out = run_lm_eval(
        "local-chat-completions", args, [task_config("capitals_gen.yaml")], apply_chat_template=True
    )
    result = out["results"]["whetstone_capitals_gen"]
    logger.info("lm-eval local-chat-completions: %s", result)
    assert 0.0 <= result["exact_match,none"] <= 1.0
    responses = [s["resps"][0][0] for s in out["samples"]["whetstone_capitals_gen"]]
    logger.info("lm-eval local-chat-completions generations: %s", responses)
    assert len(responses) == 6 and all(isinstance(r, str) and r.strip() for r in responses)
