"""A candidate completion as the selection logic sees it: tokens, raw log-probabilities, status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token as text, its raw log-probability and the top alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class CandidateStatus(StrEnum):
    """Where a candidate's generation stands."""

    RUNNING = "running"
    FINISHED = "finished"  # stopped on its own (end-of-sequence or a stop string)
    TRUNCATED = "truncated"  # cut off by its token limit
    PRUNED = "pruned"  # aborted because it could no longer be selected


@dataclass
class Candidate:
    """One sampled completion; `logprob_sum` is the raw model log-likelihood of `token_ids`."""

    index: int
    max_tokens: int
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)
    logprob_sum: float = 0.0
    finish_reason: str | None = None
    status: CandidateStatus = CandidateStatus.RUNNING

    @property
    def num_tokens(self) -> int:
        """Generated tokens so far (the end-of-sequence token included when it stopped)."""
        return len(self.token_ids)

    @property
    def done(self) -> bool:
        """True once the candidate will not grow any more."""
        return self.status is not CandidateStatus.RUNNING

    @property
    def completed(self) -> bool:
        """True for candidates that ran to their end (finished or truncated), i.e. selectable."""
        return self.status in (CandidateStatus.FINISHED, CandidateStatus.TRUNCATED)

    def extend(
        self,
        token_ids: list[int],
        logprobs: list[float],
        text: str,
        tokens: list[TokenLogprob] | None = None,
    ) -> None:
        """Append newly generated tokens with their raw log-probabilities and text."""
        self.token_ids.extend(token_ids)
        self.logprob_sum += sum(logprobs)
        self.text += text
        self.tokens.extend(tokens or ())

    def finish(self, finish_reason: str | None) -> None:
        """Mark the candidate as ended by the engine: `length` means truncated, else finished."""
        self.finish_reason = finish_reason
        self.status = CandidateStatus.TRUNCATED if finish_reason == "length" else CandidateStatus.FINISHED

    def prune(self) -> None:
        """Mark the candidate as aborted before its end."""
        self.status = CandidateStatus.PRUNED
