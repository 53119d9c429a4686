"""Selection strategies: which candidates to draw, when to stop, which one to return.

Each strategy is pure: it sees plain `Candidate` objects and never talks to an engine.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Protocol

from server.sharpening.candidate import Candidate, CandidateStatus
from server.sharpening.config import SharpeningConfig
from server.sharpening.patterns import extract_answer
from server.sharpening.scoring import candidate_score, rank

REJECTION_WAVE = 4


class Strategy(Protocol):
    """The decisions a strategy makes while a request's candidates are drawn."""

    prunes: bool

    def next_wave(self, drawn: list[Candidate]) -> int:
        """How many more candidates to draw now (0 = done drawing)."""

    def accepts(self, candidate: Candidate) -> bool:
        """True if this just-ended candidate ends the search at once."""

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """The candidate to return, or None when no candidate completed."""


class BestOfN:
    """Draw n candidates at once and return the highest-scoring one (the paper's BoN)."""

    def __init__(self, config: SharpeningConfig) -> None:
        self.n = config.candidate_count
        self.length_penalty = config.length_penalty
        self.prunes = config.prune

    def next_wave(self, drawn: list[Candidate]) -> int:
        """All n candidates in one wave."""
        return self.n if not drawn else 0

    def accepts(self, candidate: Candidate) -> bool:
        """Best-of-n never stops early (pruning does that job)."""
        return False

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """Finished beats truncated, then the highest score."""
        ranked = rank(candidates, self.length_penalty)
        return ranked[0] if ranked else None


class Rejection(BestOfN):
    """Verifier-threshold rejection sampling: draw in waves, take the first score >= threshold.

    After n candidates without an acceptable one, fall back to the best one seen.
    """

    def __init__(self, config: SharpeningConfig, wave: int = REJECTION_WAVE) -> None:
        super().__init__(config)
        assert config.threshold is not None
        self.threshold = config.threshold
        self.wave = wave
        self.accepted: Candidate | None = None

    def next_wave(self, drawn: list[Candidate]) -> int:
        """Waves of up to `wave` candidates until one is accepted or n were drawn."""
        if self.accepted is not None:
            return 0
        return min(self.wave, self.n - len(drawn))

    def accepts(self, candidate: Candidate) -> bool:
        """The first finished candidate that clears the threshold ends the search."""
        if (
            self.accepted is None
            and candidate.status is CandidateStatus.FINISHED
            and candidate_score(candidate, self.length_penalty) >= self.threshold
        ):
            self.accepted = candidate
        return self.accepted is candidate

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """The accepted candidate, else the best one drawn."""
        return self.accepted or super().select(candidates)


class Power(BestOfN):
    """Return a sample from the sharpened distribution pi^alpha / Z over the drawn candidates.

    The paper's RLHF-sharpening objective, maximise E[log pi(y|x)] - beta * KL(p || pi), has the
    optimum p*(y) proportional to pi(y) * exp(log pi(y) / beta) = pi(y)^(1 + 1/beta): pi^alpha
    with alpha = 1 + 1/beta. The candidates are draws from pi, so resampling them with weights
    pi(y)^(alpha - 1) (importance weights pi^alpha / pi) targets pi^alpha. The resampling is
    done by rejection: pick a candidate uniformly, accept it with probability
    exp((alpha - 1) * (logprob_sum - max logprob_sum)) <= 1, repeat. alpha = 1 returns a plain
    sample from pi; alpha -> infinity accepts only the maximum, i.e. best-of-n.
    Pruning would hide the weights of unfinished candidates, so this strategy never prunes.
    """

    def __init__(self, config: SharpeningConfig, rng: random.Random) -> None:
        super().__init__(config)
        assert config.alpha is not None
        self.alpha = config.alpha
        self.rng = rng
        self.prunes = False

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """One draw, proportional to exp((alpha - 1) * logprob_sum); finished ones preferred."""
        pool = [c for c in candidates if c.status is CandidateStatus.FINISHED]
        pool = pool or [c for c in candidates if c.completed]
        if not pool:
            return None
        return power_sample(pool, self.alpha, self.rng)


def power_sample(pool: list[Candidate], alpha: float, rng: random.Random) -> Candidate:
    """Rejection-sample one candidate with probability proportional to pi(y)^(alpha - 1)."""
    top = max(c.logprob_sum for c in pool)
    while True:
        candidate = pool[rng.randrange(len(pool))]
        if rng.random() < math.exp((alpha - 1.0) * (candidate.logprob_sum - top)):
            return candidate


class Majority(BestOfN):
    """Self-consistency: the most frequent extracted answer wins, ties broken by score.

    The returned candidate is the highest-scoring one with the winning answer; candidates
    whose text does not match `answer_pattern` count for nothing.
    """

    def __init__(self, config: SharpeningConfig) -> None:
        super().__init__(config)
        self.pattern = config.compiled_pattern()
        self.prunes = False

    def answer(self, candidate: Candidate) -> str | None:
        """The candidate's answer: the pattern's first group (or whole match), stripped."""
        return extract_answer(candidate.text, self.pattern)

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """Highest-scoring candidate of the most frequent answer; plain best when none match."""
        ranked = rank(candidates, self.length_penalty)
        answers = {c.index: self.answer(c) for c in ranked}
        votes = Counter(a for a in answers.values() if a is not None)
        if not votes:
            return ranked[0] if ranked else None
        top_votes = max(votes.values())
        # `ranked` is best first, so the first candidate with a top-voted answer breaks ties by score
        return next(c for c in ranked if self._votes_for(answers[c.index], votes) == top_votes)

    @staticmethod
    def _votes_for(answer: str | None, votes: Counter[str]) -> int:
        return votes[answer] if answer is not None else 0


class Plain(BestOfN):
    """Strategy `none`: one generation with the request's own sampling parameters."""


def build_strategy(config: SharpeningConfig, rng: random.Random | None = None) -> Strategy:
    """The strategy object for a resolved configuration."""
    if config.strategy == "rejection":
        return Rejection(config)
    if config.strategy == "power":
        return Power(config, rng or random.Random(config.seed))
    if config.strategy == "majority":
        return Majority(config)
    if config.strategy == "none":
        return Plain(config)
    return BestOfN(config)
