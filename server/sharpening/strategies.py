"""Selection strategies: which candidates to draw, when to stop, which one to return.

Each strategy is pure (see `contract`): it hears candidate events and returns decisions.
Best-of-n with exact pruning, rejection, power, majority and `none` draw whole candidates;
`smc`, `mcmc` and `confidence` (their own modules) also act during generation.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Decision, Draw, abort
from server.sharpening.patterns import extract_answer
from server.sharpening.pruning import PrunedDrawing, Pruner
from server.sharpening.scoring import candidate_score, rank

REJECTION_WAVE = 4


class BestOfN(PrunedDrawing):
    """Draw n candidates at once and return the highest-scoring one (the paper's BoN).

    With pruning on, a running candidate is aborted as soon as it can no longer be among the
    `keep` selected (see `Pruner`): checked on its own tokens and whenever another one ends.
    """

    def __init__(self, config: SharpeningConfig, max_tokens: int, keep: int = 1) -> None:
        super().__init__(max_tokens)
        self.n = config.candidate_count
        self.length_penalty = config.length_penalty
        self.greedy_candidate = config.greedy_candidate
        self.pruner = Pruner(config.length_penalty, config.prune, keep, config.tie_tolerance)

    def start(self) -> list[Decision]:
        """All n candidates in one wave."""
        return self.draw_fresh(self.n)

    def draw_fresh(self, count: int) -> list[Decision]:
        """Draw `count` fresh candidates with the request's sampling (candidate 0 greedily, if asked)."""
        draws: list[Decision] = []
        for _ in range(count):
            candidate = self.new()
            greedy = self.greedy_candidate and candidate.index == 0
            draws.append(Draw(candidate, temperature=0.0 if greedy else None))
        return draws

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Abort the candidate once its score bound falls below S*."""
        return abort([candidate] if self.pruner.cannot_win(candidate) else [])

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """Update S* and abort every running candidate that can no longer win."""
        self.pruner.record(candidate)
        return abort(self.pruner.losers(self.running()))



class Rejection(BestOfN):
    """Verifier-threshold rejection sampling: draw in waves, take the first score >= threshold.

    After n candidates without an acceptable one, fall back to the best one seen.
    """

    def __init__(
        self, config: SharpeningConfig, max_tokens: int, keep: int = 1, wave: int = REJECTION_WAVE
    ) -> None:
        super().__init__(config, max_tokens, keep)
        assert config.threshold is not None
        self.threshold = config.threshold
        self.wave = wave
        self.accepted: Candidate | None = None

    def start(self) -> list[Decision]:
        """The first wave."""
        return self.draw_fresh(min(self.wave, self.n))

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """Accept the first finished candidate over the threshold (aborting the rest), or go on."""
        if self.accepted is not None:
            return []
        if (
            candidate.status is CandidateStatus.FINISHED
            and candidate_score(candidate, self.length_penalty) >= self.threshold
        ):
            self.accepted = candidate
            return abort(self.running())
        decisions = super().on_end(candidate)
        if not self.running():  # the wave is over: the next one, up to n in all
            decisions += self.draw_fresh(min(self.wave, self.n - len(self.drawn)))
        return decisions

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

    def __init__(self, config: SharpeningConfig, max_tokens: int, rng: random.Random) -> None:
        super().__init__(config, max_tokens)
        assert config.alpha is not None
        self.alpha = config.alpha
        self.rng = rng
        self.pruner.enabled = False

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

    def __init__(self, config: SharpeningConfig, max_tokens: int) -> None:
        super().__init__(config, max_tokens)
        self.pattern = config.compiled_pattern()
        self.pruner.enabled = False

    def answer(self, candidate: Candidate) -> str | None:
        """The candidate's answer: the pattern's first group (or whole match), stripped."""
        return extract_answer(candidate.text, self.pattern)

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """Highest-scoring candidate of the most frequent answer; plain best when none match."""
        ranked = rank(candidates, self.length_penalty, self.pruner.tie_tolerance)
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
