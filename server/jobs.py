"""What a request becomes (a job: tokens, sampling, how to choose) and what comes back (a result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.engines import SamplingSpec
from server.sharpening import Candidate, CandidateStatus, SharpeningConfig, Spend, TokenLogprob
from server.tools import Reply, ToolPlan


@dataclass(frozen=True)
class GenerationJob:
    """One request, tokenized and validated: what to generate and how to choose."""

    prompt_token_ids: list[int]
    sampling: SamplingSpec
    sharpening: SharpeningConfig
    choices: int = 1
    logprobs: bool = False
    prompt_source: str | list[Any] | None = None  # the prompt as the client sent it, for traces
    score_prompt: int | None = None  # echo + logprobs: score the prompt, with this many alternatives
    tools: ToolPlan | None = None  # how the chosen text becomes tool calls, when the request has tools

    @property
    def engine_requests(self) -> int:
        """Engine requests the job runs: its candidates (none for max_tokens 0), one to score the prompt."""
        drawn = self.sharpening.candidate_count if self.sampling.max_tokens > 0 else 0
        return drawn + (self.score_prompt is not None)

    @property
    def admitted_candidates(self) -> int:
        """What the job holds of the admission limit: under the `spare` load mode its primary only,
        since its extras take spare capacity alone (at most --load-capacity, server-wide)."""
        if self.sharpening.load == "spare" and self.sampling.max_tokens > 0:
            return 1 + (self.score_prompt is not None)
        return self.engine_requests


@dataclass(frozen=True)
class LegacyPrompt:
    """One prompt of a legacy completion request, and what echo shows of it."""

    job: GenerationJob
    text: str = ""  # the prompt as text, when echoed
    first_token: str = ""  # its first token as text (echo + logprobs list it with a null log-probability)


@dataclass(frozen=True)
class CompletionBatch:
    """A legacy completion request: its prompts, run side by side, choices indexed prompt by prompt."""

    prompts: list[LegacyPrompt]
    echo: bool = False

    @property
    def jobs(self) -> list[GenerationJob]:
        """One job per prompt, in order."""
        return [p.job for p in self.prompts]


@dataclass
class SharpenedResult:
    """The outcome of a job: every candidate drawn and the chosen ones, best first."""

    job: GenerationJob
    candidates: list[Candidate]
    choices: list[Candidate]
    scores: dict[int, float] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    prompt_tokens: list[TokenLogprob | None] | None = None  # the prompt's scores, when asked
    replies: list[Reply] | None = None  # per choice, when the request uses tools
    stopped_by: str | None = None  # the rule that ended the drawing early, if any
    cut: int = 0  # candidates the load policy stopped before their end

    @property
    def selected(self) -> Candidate | None:
        """The candidate returned as the first choice (None when nothing was generated)."""
        return self.choices[0] if self.choices else None

    @property
    def generated_tokens(self) -> int:
        """Every token generated for this request, all candidates included (forks' prefixes not)."""
        return sum(c.generated_tokens for c in self.candidates)

    @property
    def temperatures(self) -> list[float]:
        """The distinct temperatures the candidates were drawn at, lowest first."""
        return sorted({c.temperature for c in self.candidates if c.temperature is not None})

    @property
    def forks(self) -> int:
        """Candidates that continued another one's prefix."""
        return sum(1 for c in self.candidates if c.parent is not None)

    def count(self, status: CandidateStatus) -> int:
        """How many candidates ended with `status`."""
        return sum(1 for c in self.candidates if c.status is status)
