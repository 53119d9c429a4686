"""The classical maximiser's anchor: vLLM's own beam search through its OpenAI server.

Each anchor prompt goes to vLLM's /v1/completions as the token ids whetstone's chat template
renders, with `use_beam_search` and `n` = the width; the best beam's tokens are then re-scored by
the same server through `prompt_logprobs` (raw log-probabilities), so its log-likelihood is
measured exactly as whetstone measures its own answers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.common.servers import prepared_model_dir, vllm_command
from clients.processes import free_port, spawned


@dataclass(frozen=True)
class AnchorAnswer:
    """vLLM beam search's answer to one prompt, re-scored."""

    prompt_set: str
    prompt: int
    latency: float
    logprob_sum: float
    num_tokens: int
    finish_reason: str | None
    text: str


def beam_search(http: httpx.Client, model: str, prompt: list[int], width: int, max_tokens: int,
                length_penalty: float) -> tuple[dict[str, Any], float]:
    """vLLM's best beam (token ids, text, finish reason) and the request's latency."""
    started = time.perf_counter()
    reply = http.post("/v1/completions", json={
        "model": model, "prompt": prompt, "max_tokens": max_tokens, "n": width,
        "use_beam_search": True, "length_penalty": length_penalty, "return_token_ids": True,
    })
    reply.raise_for_status()
    return reply.json()["choices"][0], time.perf_counter() - started


def raw_logprob_sum(http: httpx.Client, model: str, prompt: list[int], answer: list[int]) -> float:
    """The raw log-likelihood of `answer` after `prompt`, from vLLM's prompt log-probabilities."""
    reply = http.post("/v1/completions", json={
        "model": model, "prompt": prompt + answer, "max_tokens": 1, "prompt_logprobs": 0,
        "temperature": 0.0,
    })
    reply.raise_for_status()
    positions = reply.json()["choices"][0]["prompt_logprobs"][len(prompt):]
    return sum(float(step[str(token)]["logprob"]) for step, token in zip(positions, answer, strict=True))


def end_of_sequence(model_dir: str) -> int:
    """The model's end-of-sequence token id (its generation_config.json's first one)."""
    eos = json.loads((Path(model_dir) / "generation_config.json").read_text())["eos_token_id"]
    return int(eos[0] if isinstance(eos, list) else eos)


def anchor_answers(
    prompts: dict[str, list[list[int]]], width: int, max_tokens: int, length_penalty: float, log_path: Path
) -> list[AnchorAnswer]:
    """Start vLLM's server, beam-search every prompt, re-score the best beams, stop the server."""
    model, port = prepared_model_dir(), free_port()
    eos = end_of_sequence(model)
    answers = []
    with spawned(vllm_command(model, port), f"http://127.0.0.1:{port}", log_path) as url, \
            httpx.Client(base_url=url, timeout=1800) as http:
        beam_search(http, model, prompts[next(iter(prompts))][0], width, 8, length_penalty)  # warm-up
        steps = [(name, i) for name, ids in prompts.items() for i in range(len(ids))]
        for name, i in tqdm(steps, desc="vLLM beam search", unit="req"):
            choice, latency = beam_search(http, model, prompts[name][i], width, max_tokens, length_penalty)
            tokens = [int(t) for t in choice["token_ids"]]
            if choice.get("finish_reason") == "stop" and tokens[-1:] != [eos]:
                tokens.append(eos)  # whetstone scores a stopped answer's end-of-sequence token too
            answers.append(AnchorAnswer(
                name, i, latency, raw_logprob_sum(http, model, prompts[name][i], tokens), len(tokens),
                choice.get("finish_reason"), choice["text"],
            ))
    return answers
