"""The response's `sharpening` summary: what sharpening did for a request, and each candidate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from server.jobs import SharpenedResult
from server.sharpening import CandidateStatus


class CandidateReport(BaseModel):
    """One candidate in the response's `sharpening.candidates`."""

    index: int
    text: str
    score: float
    logprob_sum: float
    num_tokens: int
    token_ids: list[int]
    finish_reason: str | None
    status: Literal["finished", "pruned", "truncated", "paused"]
    parent: int | None = Field(None, description="The candidate whose prefix this fork continues.")
    prefix_tokens: int = Field(0, description="Tokens inherited from the parent (not generated).")
    temperature: float | None = Field(None, description="The temperature its tokens were drawn at.")


class SharpeningSummary(BaseModel):
    """What sharpening did for this request."""

    strategy: str
    n: int
    length_penalty: float
    selected_index: int | None
    selected_score: float | None
    selected_logprob_sum: float | None = None
    selected_num_tokens: int | None = None
    candidates_drawn: int
    candidates_finished: int
    candidates_pruned: int
    candidates_truncated: int
    candidates_paused: int = 0
    generated_tokens: int
    candidate_temperatures: list[float] = Field(
        default_factory=list, description="The temperatures the candidates were drawn at (0 is greedy)."
    )
    forks: int = 0
    resamplings: int | None = None
    mh_proposals: int | None = None
    mh_accepted: int | None = None
    normaliser_error_bound: float | None = None
    max_total_tokens: int | None = Field(None, description="The token budget the request ran under.")
    stopped_by: str | None = Field(
        None,
        description="The rule that ended the drawing early (budget, load, deadline, ...); null when it "
        "ran its course.",
    )
    load: str | None = Field(
        None, description="The load mode the request ran under: spare or wait (null for strategy none)."
    )
    candidates_cut: int = Field(
        0, description="Of the pruned candidates, those the load policy stopped (not their score)."
    )
    candidates: list[CandidateReport] | None = None
    prompts: list[SharpeningSummary] | None = Field(
        None, description="Legacy completions with several prompts: each prompt's own summary."
    )


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
