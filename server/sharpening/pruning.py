"""Exact branch-and-bound pruning: abort candidates that can no longer be selected."""

from __future__ import annotations

from server.sharpening.candidate import Candidate, CandidateStatus
from server.sharpening.contract import Drawing
from server.sharpening.scoring import candidate_score, rank, score_upper_bound


class Pruner:
    """Tracks the finished scores and tells which running candidates cannot make the top `keep`.

    A running candidate ends either finished, with a score at most its upper bound, or
    truncated, which never beats a finished one. So once its bound is below the `keep`-th
    best finished score S* it cannot be among the `keep` selected, and aborting it leaves
    the selection unchanged. Ranking counts scores within `tie_tolerance` of the best as ties
    won by the lower index, so only a bound below S* - tie_tolerance is beaten: a candidate
    within the tolerance might still win its tie, or decide which one wins. `keep` is 1 for
    plain best-of-n, k when k choices are returned.
    """

    def __init__(
        self, length_penalty: float, enabled: bool = True, keep: int = 1, tie_tolerance: float = 0.0
    ) -> None:
        if not 0.0 <= length_penalty <= 1.0:
            raise ValueError("exact pruning needs length_penalty in [0, 1]")
        self.length_penalty = length_penalty
        self.tie_tolerance = tie_tolerance
        self.enabled = enabled
        self.keep = keep
        self._top_scores: list[float] = []  # the best `keep` finished scores, best first
        self.cutoff: float | None = None  # S*: the keep-th best, None until keep have finished

    def record(self, candidate: Candidate) -> None:
        """Take note of a candidate that has just ended (S* is updated here, not per token)."""
        if candidate.status is CandidateStatus.FINISHED:
            scores = [*self._top_scores, candidate_score(candidate, self.length_penalty)]
            self._top_scores = sorted(scores, reverse=True)[: self.keep]
            if len(self._top_scores) == self.keep:
                self.cutoff = self._top_scores[-1]

    def bound(self, candidate: Candidate) -> float:
        """The highest score `candidate` can still reach (its pruning bound)."""
        return score_upper_bound(candidate.logprob_sum, candidate.max_tokens, self.length_penalty)

    def beaten(self, candidate: Candidate) -> bool:
        """True when pruning is on and `candidate`, whatever its status, cannot reach S* - tie_tolerance."""
        return (
            self.enabled
            and self.cutoff is not None
            and self.bound(candidate) < self.cutoff - self.tie_tolerance
        )

    def cannot_win(self, candidate: Candidate) -> bool:
        """True when the running `candidate` can no longer be selected."""
        return candidate.status is CandidateStatus.RUNNING and self.beaten(candidate)

    def losers(self, candidates: list[Candidate]) -> list[Candidate]:
        """The running candidates among `candidates` that can no longer be selected."""
        return [c for c in candidates if self.cannot_win(c)]


class PrunedDrawing(Drawing):
    """A strategy that returns the best-ranked candidate and prunes against S* with its `pruner`."""

    length_penalty: float
    pruner: Pruner

    def bound(self, candidate: Candidate) -> float:
        """The pruning bound: the best score `candidate` can still reach."""
        return self.pruner.bound(candidate)

    def cutoff(self) -> float | None:
        """S*, the score running candidates are pruned against (None while pruning is off)."""
        return self.pruner.cutoff if self.pruner.enabled else None

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """Finished beats truncated, then the highest score."""
        ranked = rank(candidates, self.length_penalty, self.pruner.tie_tolerance)
        return ranked[0] if ranked else None
