"""Build OpenAI response bodies and stream chunks from a sharpened result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.jobs import CompletionBatch, SharpenedResult
from server.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionResponse,
    Usage,
)
from server.sharpening import CandidateStatus, TokenLogprob
from server.summary import CandidateReport, SharpeningSummary
from server.tools import Reply


def summary(result: SharpenedResult) -> SharpeningSummary:
    """The response's `sharpening` object."""
    config = result.job.sharpening
    selected = result.selected
    selected_score = None if selected is None else result.scores[selected.index]
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
                parent=c.parent,
                prefix_tokens=c.prefix_tokens,
                temperature=c.temperature,
            )
            for c in result.candidates
        ]
    spend, smc, mcmc = result.spend, config.strategy == "smc", config.strategy == "mcmc"
    return SharpeningSummary(
        strategy=config.strategy,
        n=config.candidate_count,
        length_penalty=config.length_penalty,
        selected_index=None if selected is None else selected.index,
        selected_score=selected_score,
        selected_logprob_sum=None if selected is None else selected.logprob_sum,
        selected_num_tokens=None if selected is None else selected.num_tokens,
        candidates_drawn=len(result.candidates),
        candidates_finished=result.count(CandidateStatus.FINISHED),
        candidates_pruned=result.count(CandidateStatus.PRUNED),
        candidates_truncated=result.count(CandidateStatus.TRUNCATED),
        candidates_paused=result.count(CandidateStatus.PAUSED),
        generated_tokens=result.generated_tokens,
        candidate_temperatures=result.temperatures,
        forks=result.forks,
        resamplings=spend.resamplings if smc else None,
        mh_proposals=spend.mh_proposals if mcmc else None,
        mh_accepted=spend.mh_accepted if mcmc else None,
        normaliser_error_bound=spend.normaliser_error if smc or mcmc else None,
        max_total_tokens=config.max_total_tokens,
        stopped_by=result.stopped_by,
        load=None if config.strategy == "none" else config.load,
        candidates_cut=result.cut,
        candidates=reports,
    )


def batch_summary(results: Sequence[SharpenedResult]) -> SharpeningSummary:
    """The `sharpening` object of one or more prompts' results: several add up, each listed in `prompts`."""
    if len(results) == 1:
        return summary(results[0])
    each = [summary(r) for r in results]
    return SharpeningSummary(
        strategy=each[0].strategy,
        n=each[0].n,
        length_penalty=each[0].length_penalty,
        selected_index=None,
        selected_score=None,
        candidates_drawn=sum(s.candidates_drawn for s in each),
        candidates_finished=sum(s.candidates_finished for s in each),
        candidates_pruned=sum(s.candidates_pruned for s in each),
        candidates_truncated=sum(s.candidates_truncated for s in each),
        candidates_cut=sum(s.candidates_cut for s in each),
        generated_tokens=sum(s.generated_tokens for s in each),
        candidate_temperatures=sorted({t for s in each for t in s.candidate_temperatures}),
        max_total_tokens=each[0].max_total_tokens,  # each prompt's own budget
        prompts=each,
    )


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
