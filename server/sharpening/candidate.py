"""A candidate completion as the selection logic sees it: tokens, raw log-probabilities, status."""

from __future__ import annotations

import math
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
    PAUSED = "paused"  # stopped at a strategy's checkpoint; forks carry its prefix on


@dataclass
class Candidate:
    """One sampled completion; `logprob_sum` is the raw model log-likelihood of `token_ids`.

    A fork starts with the first `prefix_tokens` tokens of candidate `parent` (inherited, not
    generated again). `cuts` maps the token counts where the text can be cut to the text length.
    """

    index: int
    max_tokens: int
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)
    logprob_sum: float = 0.0
    finish_reason: str | None = None
    status: CandidateStatus = CandidateStatus.RUNNING
    parent: int | None = None
    prefix_tokens: int = 0
    cuts: dict[int, int] = field(default_factory=lambda: {0: 0})
    temperature: float | None = None  # what the engine drew its tokens at (set when drawn)

    @property
    def num_tokens(self) -> int:
        """Tokens of the sequence so far (a fork's prefix and the end-of-sequence token included)."""
        return len(self.token_ids)

    @property
    def generated_tokens(self) -> int:
        """Tokens the engine generated for this candidate (a fork's inherited prefix excluded)."""
        return self.num_tokens - self.prefix_tokens

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
        self.cuts[self.num_tokens] = len(self.text)

    def fork(self, index: int, keep: int) -> Candidate:
        """A new candidate `index` that continues from this one's first `keep` tokens (a cut)."""
        if keep == self.num_tokens:
            logprob_sum = self.logprob_sum
        else:
            logprob_sum = math.fsum(t.logprob for t in self.tokens[:keep])
        return Candidate(
            index=index,
            max_tokens=self.max_tokens,
            token_ids=self.token_ids[:keep],
            text=self.text[: self.cuts[keep]],
            tokens=self.tokens[:keep],
            logprob_sum=logprob_sum,
            parent=self.index,
            prefix_tokens=keep,
            cuts={k: v for k, v in self.cuts.items() if k <= keep},
        )

    def finish(self, finish_reason: str | None) -> None:
        """Mark the candidate as ended by the engine: `length` means truncated, else finished."""
        self.finish_reason = finish_reason
        self.status = CandidateStatus.TRUNCATED if finish_reason == "length" else CandidateStatus.FINISHED

    def prune(self) -> None:
        """Mark the candidate as aborted before its end."""
        self.status = CandidateStatus.PRUNED

    def pause(self) -> None:
        """Mark the candidate as stopped at a checkpoint its strategy asked for."""
        self.finish_reason = "length"
        self.status = CandidateStatus.PAUSED
