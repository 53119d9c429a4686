"""The strategy/race contract: a strategy hears candidate events and answers with decisions.

A strategy is pure. It creates `Candidate` objects (fresh ones, or forks that carry a
prefix of another candidate) and asks the race to `Draw` them; it asks it to `Abort` running
ones. The race runs the draws against the engine and reports back, for every candidate:
`on_tokens` for each piece of generated tokens (with their raw log-probabilities and top-k)
and exactly one `on_end` when its engine request is over, whatever its status. The race is
done when no candidate runs and the last event asked for nothing more; `select` then picks.

Spending is decided here too, for every strategy alike. When the request's token budget is
spent the race `stop`s the strategy: running candidates are truncated where they stand (and
aborted in the engine), so are paused ones that nothing continues, and any later `Draw` is
refused (its candidate is marked pruned and never reaches the engine). `select` then answers
from what was drawn. A strategy may also stop drawing by itself (adaptive stopping); either
way `stopped_by` names the rule that ended the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob


@dataclass(frozen=True)
class Draw:
    """Generate `candidate` (a fresh one, or a fork continuing its inherited prefix)."""

    candidate: Candidate
    max_new_tokens: int | None = None  # pause after this many new tokens (a checkpoint)
    temperature: float | None = None  # None: the request's own temperature
    top_logprobs: int = 0  # alternatives per token the strategy needs to see


@dataclass(frozen=True)
class Abort:
    """Stop these candidates now; the running ones are marked pruned."""

    candidates: tuple[Candidate, ...]


Decision = Draw | Abort


@dataclass
class Spend:
    """What a strategy spent beyond plain draws (forks are counted by the candidates)."""

    resamplings: int = 0
    mh_proposals: int = 0
    mh_accepted: int = 0
    normaliser_error: float = 0.0  # largest bound on a log-weight / log-ratio from top-k normalisers


class Strategy(Protocol):
    """What the race needs from a strategy."""

    spend: Spend
    stopped_by: str | None  # the rule that ended the drawing early (None: it ran its course)

    def start(self) -> list[Decision]:
        """The first decisions of a request."""

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """New tokens of `candidate` (their `top` as the strategy asked for)."""

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """`candidate`'s engine request is over; its status says how it ended."""

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """The candidate to return, or None when no candidate completed."""

    def bound(self, candidate: Candidate) -> float:
        """The best score `candidate` can still reach (shown to observers)."""

    def cutoff(self) -> float | None:
        """The score a running candidate must still be able to reach to stay, if any (S*)."""

    def stop(self, reason: str) -> None:
        """The race stops drawing for `reason` (e.g. "budget"); later decisions to draw are refused."""


class Drawing:
    """Bookkeeping strategies share: numbering new candidates and forks, and who still runs."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.drawn: list[Candidate] = []
        self.spend = Spend()
        self.stopped_by: str | None = None

    def new(self) -> Candidate:
        """A fresh candidate with the next index."""
        candidate = Candidate(index=len(self.drawn), max_tokens=self.max_tokens)
        self.drawn.append(candidate)
        return candidate

    def fork(self, parent: Candidate, keep: int) -> Candidate:
        """A candidate with the next index that continues `parent`'s first `keep` tokens."""
        candidate = parent.fork(len(self.drawn), keep)
        self.drawn.append(candidate)
        return candidate

    def running(self) -> list[Candidate]:
        """The drawn candidates still generating."""
        return [c for c in self.drawn if c.status is CandidateStatus.RUNNING]

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Nothing to decide by default."""
        return []

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """Nothing to decide by default."""
        return []

    def bound(self, candidate: Candidate) -> float:
        """Log-probabilities only fall, so the best reachable sequence score is the current sum."""
        return candidate.logprob_sum

    def cutoff(self) -> float | None:
        """No cutoff: nothing is pruned on score unless a strategy says otherwise."""
        return None

    def stop(self, reason: str) -> None:
        """Remember the first rule that ended the drawing."""
        self.stopped_by = self.stopped_by or reason


def abort(candidates: list[Candidate]) -> list[Decision]:
    """An Abort decision for `candidates`, or none when the list is empty."""
    return [Abort(tuple(candidates))] if candidates else []
