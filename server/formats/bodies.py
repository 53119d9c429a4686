"""OpenAI response bodies of a sharpened result: chat, legacy completions, usage and log-probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.formats.models import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionResponse,
    Usage,
)
from server.formats.summary import batch_summary, summary
from server.jobs import CompletionBatch, SharpenedResult
from server.sharpening import TokenLogprob
from server.tools import Reply


def usage(*results: SharpenedResult) -> Usage:
    """Token usage: each prompt once, every candidate's generated tokens."""
    prompt_tokens = sum(len(r.job.prompt_token_ids) for r in results)
    generated = sum(r.generated_tokens for r in results)
    return Usage(
        prompt_tokens=prompt_tokens, completion_tokens=generated, total_tokens=prompt_tokens + generated
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


def completion_logprobs(tokens: Sequence[TokenLogprob | str], offset: int = 0) -> dict[str, Any]:
    """Legacy completions `logprobs` of some tokens, text offsets counted from `offset`.

    A bare string is a token without a log-probability: an echoed prompt's first token.
    """
    offsets, position = [], offset
    for t in tokens:
        offsets.append(position)
        position += len(t if isinstance(t, str) else t.token)
    return {
        "tokens": [t if isinstance(t, str) else t.token for t in tokens],
        "token_logprobs": [None if isinstance(t, str) else t.logprob for t in tokens],
        "top_logprobs": [None if isinstance(t, str) else dict(t.top) for t in tokens],
        "text_offset": offsets,
    }


@dataclass(frozen=True)
class LegacyChoice:
    """One choice of a legacy completion, echo applied: its index is prompt * n + rank."""

    index: int
    text: str
    tokens: list[TokenLogprob | str]
    finish_reason: str | None


def legacy_choices(batch: CompletionBatch, results: Sequence[SharpenedResult]) -> list[LegacyChoice]:
    """Every prompt's choices in OpenAI's order, the prompt (and its scores) first when echoed."""
    choices = []
    for i, (prompt, result) in enumerate(zip(batch.prompts, results, strict=True)):
        echoed: list[TokenLogprob | str] = []
        if result.prompt_tokens is not None:
            echoed = [prompt.first_token, *(t for t in result.prompt_tokens[1:] if t is not None)]
        n = prompt.job.choices
        if not result.choices:  # max_tokens 0: the prompt alone
            choices += [LegacyChoice(i * n + j, prompt.text, echoed, "length") for j in range(n)]
            continue
        choices += [
            LegacyChoice(i * n + j, prompt.text + c.text, [*echoed, *c.tokens], c.finish_reason)
            for j, c in enumerate(result.choices)
        ]
    return choices


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


def completion_response(
    batch: CompletionBatch, results: Sequence[SharpenedResult], request_id: str, model: str
) -> CompletionResponse:
    """A text_completion body: every prompt's choices, usage and sharpening summed over prompts."""
    want = batch.jobs[0].logprobs
    choices = [
        CompletionChoice(
            index=c.index,
            text=c.text,
            finish_reason=c.finish_reason,
            logprobs=completion_logprobs(c.tokens) if want else None,
        )
        for c in legacy_choices(batch, results)
    ]
    return CompletionResponse(
        id=request_id,
        model=model,
        choices=choices,
        usage=usage(*results),
        sharpening=batch_summary(results),
    )
