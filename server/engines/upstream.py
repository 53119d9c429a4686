"""One vLLM OpenAI-compatible server reached over HTTP: tokenize, stream one candidate, probe, health."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from server.engines.base import CandidateUpdate, EngineError, EngineInputError, SamplingSpec
from server.sharpening import TokenLogprob

logger = logging.getLogger(__name__)

PROBE_PROMPT = "The three primary colors are"
PROBE_TOKENS = 12
PROBE_TEMPERATURE = 0.5
PROBE_TOLERANCE = 0.02  # per token; the same engine scores the same tokens the same way
IDENTITY = {"accept-encoding": "identity"}  # candidate streams are read as raw bytes
HEALTH_TIMEOUT_SECONDS = 5.0
CALL_TIMEOUT_SECONDS = 60.0  # /v1/models and /tokenize; candidate streams wait as long as they need


class UpstreamUnreachable(EngineError):
    """The upstream could not be reached, or failed before sending anything for a request."""


class StreamDropped(UpstreamUnreachable):
    """The upstream took the request but closed the connection before its first event: a kept-alive
    connection it had just closed, or a dying server."""


class UpstreamRefused(EngineError):
    """An upstream that answers but must not serve (another model, or processed log-probabilities)."""


class ProcessedLogprobs(UpstreamRefused):
    """The upstream returns processed (temperature/top-k) log-probabilities, not raw ones."""


@dataclass(frozen=True)
class ModelInfo:
    """What an upstream serves."""

    name: str
    max_model_len: int


def completion_body(
    model: str, prompt: list[int], sampling: SamplingSpec, stream_interval: int = 1
) -> dict[str, Any]:
    """A streaming /v1/completions request drawing one candidate with the request's own sampling."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
        "logprobs": sampling.top_logprobs,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
    }
    if sampling.top_k:
        body["top_k"] = sampling.top_k
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    body |= constraint_fields(sampling)
    if stream_interval > 1:
        body["stream_interval"] = stream_interval
    return body


def constraint_fields(sampling: SamplingSpec) -> dict[str, Any]:
    """vLLM's own request fields for the constraints, biases and penalties that differ from its defaults."""
    fields: dict[str, Any] = {}
    if (constraint := sampling.constraint) is not None:
        spec = True if constraint.kind == "json_object" else constraint.spec
        fields["structured_outputs"] = {constraint.kind: spec}
    if sampling.logit_bias:
        fields["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias.items()}
    if sampling.min_tokens:
        fields["min_tokens"] = sampling.min_tokens
    if sampling.repetition_penalty != 1.0:
        fields["repetition_penalty"] = sampling.repetition_penalty
    if sampling.stop_token_ids:
        fields["stop_token_ids"] = list(sampling.stop_token_ids)
    if sampling.ignore_eos:
        fields["ignore_eos"] = True
    if not sampling.skip_special_tokens:
        fields["skip_special_tokens"] = False
    return fields


def parse_choice(choice: dict[str, Any], top: int) -> CandidateUpdate:
    """One streamed completion choice as new tokens with their log-probabilities."""
    token_ids: list[int] = choice.get("token_ids") or []
    logprobs = choice.get("logprobs") or {}
    values = logprobs.get("token_logprobs") or ()
    if len(values) != len(token_ids) or not all(isinstance(t, int) for t in token_ids):
        raise EngineError(
            f"the upstream sent {len(token_ids)} token ids with {len(values)} log-probabilities; "
            "it must accept return_token_ids and logprobs"
        )
    strings = logprobs.get("tokens") or [""] * len(token_ids)
    if top:
        tops = logprobs.get("top_logprobs") or [None] * len(token_ids)
        tokens = [
            TokenLogprob(text, float(value), alternatives(ranked, top))
            for text, value, ranked in zip(strings, values, tops, strict=True)
        ]
    else:
        tokens = [TokenLogprob(text, float(value)) for text, value in zip(strings, values, strict=True)]
    return CandidateUpdate(
        token_ids=token_ids,
        logprobs=[t.logprob for t in tokens],
        text=choice.get("text") or "",
        tokens=tokens,
        finish_reason=choice.get("finish_reason"),
        finished=choice.get("finish_reason") is not None,
    )


def scoring_body(model: str, prompt: list[int], top: int) -> dict[str, Any]:
    """A /v1/completions request for the raw log-probability of every prompt token (vLLM's
    `prompt_logprobs`; the one token it must generate is thrown away)."""
    return {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": top}


def parse_prompt_logprobs(choice: dict[str, Any], prompt: list[int], top: int) -> list[TokenLogprob | None]:
    """vLLM's `prompt_logprobs` (one dict per position, keyed by token id: logprob, rank,
    decoded_token; None for the first) as the prompt's scored tokens."""
    steps = choice.get("prompt_logprobs")
    if not isinstance(steps, list) or len(steps) != len(prompt):
        scored = len(steps) if isinstance(steps, list) else 0
        raise EngineError(f"the upstream scored {scored} of {len(prompt)} prompt tokens")
    tokens: list[TokenLogprob | None] = []
    for token, step in zip(prompt, steps, strict=True):
        if step is None:
            tokens.append(None)
            continue
        if str(token) not in step:
            raise EngineError("the upstream's prompt_logprobs lack a prompt token")
        ranked = sorted(step.values(), key=lambda entry: entry.get("rank") or 0)[:top] if top else []
        tokens.append(TokenLogprob(
            step[str(token)].get("decoded_token") or "",
            float(step[str(token)]["logprob"]),
            tuple((entry.get("decoded_token") or "", float(entry["logprob"])) for entry in ranked),
        ))
    return tokens


def alternatives(ranked: dict[str, float] | None, top: int) -> tuple[tuple[str, float], ...]:
    """The `top` most likely tokens of a position (OpenAI's dict also holds the sampled one)."""
    if not ranked:
        return ()
    best = sorted(ranked.items(), key=lambda item: item[1], reverse=True)[:top]
    return tuple((text, float(value)) for text, value in best)


async def sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """The `data:` payloads of a server-sent event stream (events end with a blank line).

    Read undecoded: the request asks for the identity encoding.
    """
    pending = b""
    async for piece in response.aiter_raw():
        *events, pending = (pending + piece).split(b"\n\n")
        for event in events:
            if event.startswith(b"data: "):
                yield event[6:]


def upstream_error(response: httpx.Response, body: bytes) -> Exception:
    """The error an upstream's refusal means: the client's input (4xx) or the upstream (5xx)."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")[:500]
    if 400 <= response.status_code < 500:
        return EngineInputError(message)
    return UpstreamUnreachable(f"upstream {response.url.host} answered {response.status_code}: {message}")


class Upstream:
    """A vLLM OpenAI server: each candidate is one streaming /v1/completions request."""

    def __init__(self, url: str, http: httpx.AsyncClient, stream_interval: int = 1) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self.stream_interval = stream_interval
        self.model = ModelInfo("", 0)

    async def _post(
        self, path: str, body: dict[str, Any], timeout: float | None = CALL_TIMEOUT_SECONDS
    ) -> Any:
        try:
            response = await self.http.post(self.url + path, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(f"upstream {self.url} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise upstream_error(response, response.content)
        return response.json()

    async def describe(self) -> ModelInfo:
        """Read the served model's name and context length from /v1/models."""
        try:
            response = await self.http.get(self.url + "/v1/models", timeout=CALL_TIMEOUT_SECONDS)
            response.raise_for_status()
            card = response.json()["data"][0]
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            raise UpstreamUnreachable(f"upstream {self.url}: /v1/models did not answer: {exc!r}") from exc
        self.model = ModelInfo(str(card["id"]), int(card.get("max_model_len") or 0))
        return self.model

    async def healthy(self) -> bool:
        """True when the upstream answers GET /health with 200."""
        try:
            response = await self.http.get(self.url + "/health", timeout=HEALTH_TIMEOUT_SECONDS)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    async def sequences(self) -> int | None:
        """Requests the upstream runs or queues now (vLLM's /metrics), None where it does not say."""
        try:
            response = await self.http.get(self.url + "/metrics", timeout=HEALTH_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            return None
        return queued_and_running(response.text) if response.status_code == 200 else None

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """The upstream's chat template applied (tools included) and tokenized (POST /tokenize)."""
        body: dict[str, Any] = {
            "model": self.model.name,
            "messages": list(messages),
            "add_generation_prompt": add_generation_prompt,
        }
        if tools:
            body["tools"] = list(tools)
        return [int(t) for t in (await self._post("/tokenize", body))["tokens"]]

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """A plain prompt tokenized by the upstream, special prefix tokens unless told not to."""
        body = {"model": self.model.name, "prompt": text, "add_special_tokens": add_special_tokens}
        return [int(t) for t in (await self._post("/tokenize", body))["tokens"]]

    async def decode(self, token_ids: Sequence[int]) -> str:
        """The text of some token ids, special tokens included (POST /detokenize)."""
        body = {"model": self.model.name, "tokens": list(token_ids)}
        return str((await self._post("/detokenize", body))["prompt"])

    async def score_prompt(self, prompt: list[int], top: int) -> list[TokenLogprob | None]:
        """The raw log-probability of every prompt token given the ones before it (None for the
        first), with the `top` most likely tokens at each position. It waits as long as a candidate
        would: the upstream may be busy generating."""
        answer = await self._post("/v1/completions", scoring_body(self.model.name, prompt, top), timeout=None)
        try:
            return parse_prompt_logprobs(answer["choices"][0], prompt, top)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EngineError(f"upstream {self.url} sent unreadable prompt_logprobs: {exc!r}") from exc

    async def stream_candidate(
        self, prompt: list[int], sampling: SamplingSpec, aborted: Callable[[], bool]
    ) -> AsyncIterator[CandidateUpdate]:
        """Stream one candidate; closing the stream when `aborted()` makes vLLM abort the request.

        Tokens are passed on as they come; the final update (finish reason, prompt tokens the
        upstream's prefix cache served) is sent once the upstream has closed the stream.
        """
        body = completion_body(self.model.name, prompt, sampling, self.stream_interval)
        last: CandidateUpdate | None = None
        received = False
        try:
            url = self.url + "/v1/completions"
            async with self.http.stream("POST", url, json=body, headers=IDENTITY) as response:
                if response.status_code != 200:
                    raise upstream_error(response, await response.aread())
                async for data in sse_data(response):
                    received = True
                    if aborted():
                        break  # leaving the block closes the connection: vLLM aborts the request
                    if data == b"[DONE]":
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise EngineError(f"upstream {self.url}: {chunk['error'].get('message')}")
                    if chunk.get("usage") and last is not None:
                        details = chunk["usage"].get("prompt_tokens_details") or {}
                        last.cached_prompt_tokens = int(details.get("cached_tokens") or 0)
                    for choice in chunk.get("choices") or ():
                        update = parse_choice(choice, sampling.top_logprobs)
                        if update.finished:
                            last = update
                        elif update.token_ids or update.text:
                            yield update
        except (httpx.HTTPError, ValueError) as exc:
            if received:
                failure: type[EngineError] = EngineError
            elif isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                failure = UpstreamUnreachable
            else:
                failure = StreamDropped
            raise failure(f"upstream {self.url} failed: {exc!r}") from exc
        if aborted():
            yield CandidateUpdate(finish_reason="abort", finished=True)
        elif last is None:
            raise EngineError(f"upstream {self.url} ended a stream without a finish reason")
        else:
            yield last

    async def check_raw_logprobs(self) -> None:
        """Refuse an upstream whose log-probabilities depend on the sampling temperature.

        The greedy continuation of a fixed prompt is drawn twice: at temperature 0, and at
        temperature 0.5 with top_k 1 (which forces the same tokens). Raw log-probabilities
        (vLLM's default `--logprobs-mode raw_logprobs`) agree; processed ones do not.
        """
        prompt = await self.encode(PROBE_PROMPT)
        greedy = await self._collect(prompt, SamplingSpec(PROBE_TOKENS, temperature=0.0))
        forced = await self._collect(
            prompt, SamplingSpec(PROBE_TOKENS, temperature=PROBE_TEMPERATURE, top_k=1, seed=0)
        )
        pairs = []
        for (token_a, value_a), (token_b, value_b) in zip(greedy, forced, strict=False):
            if token_a != token_b:
                break
            pairs.append((value_a, value_b))
        if not pairs:
            raise ProcessedLogprobs(f"upstream {self.url}: the log-probability probe drew no common tokens")
        worst = max(abs(a - b) for a, b in pairs)
        if worst > PROBE_TOLERANCE:
            raise ProcessedLogprobs(
                f"upstream {self.url} returns log-probabilities that change with the sampling "
                f"temperature (off by {worst:.3f} on the same tokens): scores would not be the raw "
                "model log-likelihood. Start vLLM with --logprobs-mode raw_logprobs (its default)"
            )

    async def _collect(self, prompt: list[int], sampling: SamplingSpec) -> list[tuple[int, float]]:
        steps: list[tuple[int, float]] = []
        async for update in self.stream_candidate(prompt, sampling, lambda: False):
            steps += zip(update.token_ids, update.logprobs, strict=True)
        return steps


LOAD_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


def queued_and_running(exposition: str) -> int | None:
    """vLLM's running plus waiting requests from its Prometheus text, None when it has neither."""
    total, seen = 0.0, False
    for line in exposition.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in LOAD_GAUGES:
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
            seen = True
    return int(total) if seen else None
