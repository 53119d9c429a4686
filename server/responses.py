"""Build OpenAI response bodies and stream chunks from a sharpened result."""

from __future__ import annotations

from collections.abc import Sequence
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
from server.sharpening import CandidateStatus, TokenLogprob
from server.tools import Reply


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
        selected_logprob_sum=selected.logprob_sum,
        selected_num_tokens=selected.num_tokens,
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


def chat_logprobs(tokens: Sequence[TokenLogprob]) -> dict[str, Any]:
    """OpenAI chat `logprobs` of some tokens (raw model log-probabilities)."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return {
        "content": [
            entry(t.token, t.logprob) | {"top_logprobs": [entry(tok, lp) for tok, lp in t.top]}
            for t in tokens
        ]
    }


def completion_logprobs(tokens: Sequence[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """Legacy completions `logprobs` of some tokens, text offsets counted from `offset`."""
    offsets, position = [], offset
    for t in tokens:
        offsets.append(position)
        position += len(t.token)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [dict(t.top) for t in tokens],
        "text_offset": offsets,
    }


def chat_replies(result: SharpenedResult) -> list[Reply]:
    """Each choice's assistant message: its tool calls when the request used tools, else its text."""
    return result.replies or [Reply(c.text, c.finish_reason) for c in result.choices]


def chat_response(result: SharpenedResult, request_id: str, model: str) -> ChatCompletionResponse:
    """A chat.completion body."""
    want = result.job.logprobs
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(content=reply.content, tool_calls=reply.tool_calls or None),
            finish_reason=reply.finish_reason,
            logprobs=chat_logprobs(c.tokens) if want else None,
        )
        for i, (c, reply) in enumerate(zip(result.choices, chat_replies(result), strict=True))
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
            logprobs=completion_logprobs(c.tokens) if want else None,
        )
        for i, c in enumerate(result.choices)
    ]
    return CompletionResponse(
        id=request_id, model=model, choices=choices, usage=usage(result), sharpening=summary(result)
    )
