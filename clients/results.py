"""Typed results of whetstone requests, parsed from OpenAI-shaped JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clients.errors import InvalidResponse


@dataclass(frozen=True)
class Usage:
    """Token counts; completion_tokens counts every candidate generated for the request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Candidate:
    """One candidate the server drew (present with `return_candidates`)."""

    index: int
    text: str
    score: float
    logprob_sum: float
    num_tokens: int
    status: str
    finish_reason: str | None
    token_ids: tuple[int, ...]


@dataclass(frozen=True)
class Sharpening:
    """The response's `sharpening` summary: what the server drew and which one it chose."""

    strategy: str
    n: int
    length_penalty: float
    selected_index: int | None
    selected_score: float | None
    selected_logprob_sum: float | None
    selected_num_tokens: int | None
    candidates_drawn: int
    candidates_finished: int
    candidates_pruned: int
    candidates_truncated: int
    generated_tokens: int
    candidates: tuple[Candidate, ...] | None
    stopped_by: str | None = None  # the rule that ended the drawing early (budget, certificate, ...)

    @property
    def selected(self) -> Candidate | None:
        """The chosen candidate, when candidates were returned."""
        for candidate in self.candidates or ():
            if candidate.index == self.selected_index:
                return candidate
        return None


@dataclass(frozen=True)
class Completion:
    """A chat or text completion: the chosen text plus how it was made and how long it took."""

    id: str
    model: str
    text: str
    finish_reason: str | None
    usage: Usage | None
    sharpening: Sharpening | None
    latency: float
    time_to_first_token: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Model:
    """One entry of GET /v1/models."""

    id: str
    owned_by: str
    max_model_len: int | None


def parse_usage(data: Any) -> Usage | None:
    """Usage from its JSON object, or None when absent."""
    if not isinstance(data, dict):
        return None
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens", 0)),
        completion_tokens=int(data.get("completion_tokens", 0)),
        total_tokens=int(data.get("total_tokens", 0)),
    )


def parse_candidate(data: dict[str, Any]) -> Candidate:
    """One candidate from its JSON object."""
    return Candidate(
        index=int(data["index"]),
        text=str(data.get("text", "")),
        score=float(data["score"]),
        logprob_sum=float(data["logprob_sum"]),
        num_tokens=int(data["num_tokens"]),
        status=str(data.get("status", "")),
        finish_reason=data.get("finish_reason"),
        token_ids=tuple(int(t) for t in data.get("token_ids") or ()),
    )


def parse_sharpening(data: Any) -> Sharpening | None:
    """The sharpening summary from its JSON object, or None when absent."""
    if not isinstance(data, dict):
        return None
    try:
        candidates = data.get("candidates")
        score = data.get("selected_score")
        logprob_sum = data.get("selected_logprob_sum")
        num_tokens = data.get("selected_num_tokens")
        return Sharpening(
            strategy=str(data["strategy"]),
            n=int(data["n"]),
            length_penalty=float(data.get("length_penalty", 0.0)),
            selected_index=data.get("selected_index"),
            selected_score=None if score is None else float(score),
            selected_logprob_sum=None if logprob_sum is None else float(logprob_sum),
            selected_num_tokens=None if num_tokens is None else int(num_tokens),
            candidates_drawn=int(data.get("candidates_drawn", 0)),
            candidates_finished=int(data.get("candidates_finished", 0)),
            candidates_pruned=int(data.get("candidates_pruned", 0)),
            candidates_truncated=int(data.get("candidates_truncated", 0)),
            generated_tokens=int(data.get("generated_tokens", 0)),
            candidates=None if candidates is None else tuple(map(parse_candidate, candidates)),
            stopped_by=None if data.get("stopped_by") is None else str(data["stopped_by"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidResponse(f"malformed sharpening summary: {exc!r}") from exc


def choice_text(choice: dict[str, Any]) -> str:
    """A choice's text: `message.content` for chat, `text` for legacy completions."""
    message = choice.get("message")
    if isinstance(message, dict):
        return str(message.get("content") or "")
    return str(choice.get("text") or "")


def parse_completion(
    data: Any, latency: float, time_to_first_token: float | None = None
) -> Completion:
    """A Completion from a chat.completion or text_completion body."""
    try:
        choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
        first = choices[0]
        return Completion(
            id=str(data.get("id", "")),
            model=str(data.get("model", "")),
            text=choice_text(first),
            finish_reason=first.get("finish_reason"),
            usage=parse_usage(data.get("usage")),
            sharpening=parse_sharpening(data.get("sharpening")),
            latency=latency,
            time_to_first_token=time_to_first_token,
            choices=tuple(choice_text(c) for c in choices),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidResponse(f"not a completion body: {exc!r}") from exc


def parse_models(data: Any) -> list[Model]:
    """The model list of GET /v1/models."""
    try:
        return [
            Model(id=str(m["id"]), owned_by=str(m.get("owned_by", "")),
                  max_model_len=m.get("max_model_len"))
            for m in data["data"]
        ]
    except (KeyError, TypeError) as exc:
        raise InvalidResponse(f"not a model list: {exc!r}") from exc
