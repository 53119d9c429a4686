"""Build OpenAI response bodies and stream chunks from a sharpened result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from server.protocol import (
    AssistantMessage,
    CandidateReport,
    ChatChoice,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionResponse,
    SharpeningSummary,
    Usage,
)
from server.service import SharpenedResult
from server.sharpening import Candidate, CandidateStatus


def summary(result: SharpenedResult) -> SharpeningSummary:
    """The response's `sharpening` object."""
    config = result.job.sharpening
    selected = result.selected
    reports = None
    if config.return_candidates:
        reports = [
            CandidateReport(
                index=c.index,
                text=c.text,
                score=result.scores[c.index],
                logprob_sum=c.logprob_sum,
                num_tokens=c.num_tokens,
                token_ids=c.token_ids,
                finish_reason=c.finish_reason,
                status=c.status.value,
            )
            for c in result.candidates
        ]
    return SharpeningSummary(
        strategy=config.strategy,
        n=config.candidate_count,
        length_penalty=config.length_penalty,
        selected_index=selected.index,
        selected_score=result.scores[selected.index],
        candidates_drawn=len(result.candidates),
        candidates_finished=result.count(CandidateStatus.FINISHED),
        candidates_pruned=result.count(CandidateStatus.PRUNED),
        candidates_truncated=result.count(CandidateStatus.TRUNCATED),
        generated_tokens=result.generated_tokens,
        candidates=reports,
    )


def usage(result: SharpenedResult) -> Usage:
    """Token usage: the prompt once, every candidate's generated tokens."""
    prompt_tokens = len(result.job.prompt_token_ids)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=result.generated_tokens,
        total_tokens=prompt_tokens + result.generated_tokens,
    )


def chat_logprobs(candidate: Candidate) -> dict[str, Any]:
    """OpenAI chat `logprobs` of a choice (raw model log-probabilities)."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return {
        "content": [
            entry(t.token, t.logprob) | {"top_logprobs": [entry(tok, lp) for tok, lp in t.top]}
            for t in candidate.tokens
        ]
    }


def completion_logprobs(candidate: Candidate) -> dict[str, Any]:
    """Legacy completions `logprobs` of a choice (raw model log-probabilities)."""
    offsets, position = [], 0
    for t in candidate.tokens:
        offsets.append(position)
        position += len(t.token)
    return {
        "tokens": [t.token for t in candidate.tokens],
        "token_logprobs": [t.logprob for t in candidate.tokens],
        "top_logprobs": [dict(t.top) for t in candidate.tokens],
        "text_offset": offsets,
    }


def chat_response(result: SharpenedResult, request_id: str, model: str) -> ChatCompletionResponse:
    """A chat.completion body."""
    want = result.job.logprobs
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(content=c.text),
            finish_reason=c.finish_reason,
            logprobs=chat_logprobs(c) if want else None,
        )
        for i, c in enumerate(result.choices)
    ]
    return ChatCompletionResponse(
        id=request_id, model=model, choices=choices, usage=usage(result), sharpening=summary(result)
    )


def completion_response(result: SharpenedResult, request_id: str, model: str) -> CompletionResponse:
    """A text_completion body."""
    want = result.job.logprobs
    choices = [
        CompletionChoice(
            index=i,
            text=c.text,
            finish_reason=c.finish_reason,
            logprobs=completion_logprobs(c) if want else None,
        )
        for i, c in enumerate(result.choices)
    ]
    return CompletionResponse(
        id=request_id, model=model, choices=choices, usage=usage(result), sharpening=summary(result)
    )


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def chat_chunks(
    result: SharpenedResult, request_id: str, model: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """chat.completion.chunk objects for the chosen completions, the summary on the last."""
    base = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    for i, c in enumerate(result.choices):
        yield base | {
            "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        }
        content: dict[str, Any] = {"index": i, "delta": {"content": c.text}, "finish_reason": None}
        if result.job.logprobs:
            content["logprobs"] = chat_logprobs(c)
        yield base | {"choices": [content]}
    yield from _closing_chunks(base, result, include_usage, chat=True)


def completion_chunks(
    result: SharpenedResult, request_id: str, model: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """text_completion chunks for the chosen completions, the summary on the last."""
    base = {"id": request_id, "object": "text_completion", "created": int(time.time()), "model": model}
    for i, c in enumerate(result.choices):
        text: dict[str, Any] = {"index": i, "text": c.text, "finish_reason": None}
        if result.job.logprobs:
            text["logprobs"] = completion_logprobs(c)
        yield base | {"choices": [text]}
    yield from _closing_chunks(base, result, include_usage, chat=False)


def _closing_chunks(
    base: dict[str, Any], result: SharpenedResult, include_usage: bool, chat: bool
) -> Iterator[dict[str, Any]]:
    finals = []
    for i, c in enumerate(result.choices):
        body: dict[str, Any] = {"index": i, "finish_reason": c.finish_reason}
        if chat:
            body["delta"] = {}
        else:
            body["text"] = ""
        finals.append(body)
    last = base | {"choices": finals}
    tail = summary(result).model_dump(exclude_none=True)
    if include_usage:
        yield last
        yield base | {"choices": [], "usage": usage(result).model_dump(), "sharpening": tail}
    else:
        yield last | {"sharpening": tail}
