"""The response's `sharpening` summary: what sharpening did for a request, and each candidate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
