"""Adaptive stopping: draw candidates in growing waves (n is the cap), stop once more cannot matter.

The first wave has `FIRST_WAVE` candidates (candidate 0 first) and each later one as many as
were drawn before, so the total doubles up to n. After every candidate's end a stopping rule
is asked; when it holds, the running candidates are aborted, nothing more is drawn, and the
rule's name is reported as `stopped_by`. The rules, each exact or heuristic:

- `certificate` (exact; best_of_n with length_penalty 0): the distinct finished sequences
  drawn so far, and the prefixes of the pruned or running ones, cover probability M under the
  model, so any sequence outside them has probability at most 1 - M. A finished sequence y*
  with pi(y*) > 1 - M, and above every other one drawn or prefix, is the model's single most
  likely sequence (within the token limit): no further candidate can beat it. This holds
  whatever temperature or filter drew the candidates, because it uses only the raw
  probabilities of what was drawn (`certified_mode`).
- `missing_mass` (heuristic; best_of_n, only when candidates are samples of the model itself):
  the Good-Turing estimate of the probability not yet seen is N1 / N (N1 sequences drawn
  exactly once out of N). Stop once the leader's probability exceeds it.
- `repeated_leader` (heuristic; best_of_n, however the candidates were drawn): the leading
  finished sequence has been drawn at least twice. Then no single draw was needed for the
  selection (leave any one out and the leader stays), so the leave-one-out estimate of the
  chance that one more draw changes it is 0.
- `posterior` (heuristic; majority, confidence): with a uniform prior on the share of votes
  between the leading answer and the runner-up (a and b votes), the runner-up's share is
  Beta(b + 1, a + 1); stop once the posterior probability that the leader is still strictly
  ahead when the cap is reached (every remaining vote going to one of the two) is >= `certainty`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable

from server.sharpening.candidate import Candidate, CandidateStatus
from server.sharpening.confidence import DeepConf
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Decision, Drawing, abort
from server.sharpening.patterns import extract_answer
from server.sharpening.strategies import BestOfN, Majority

FIRST_WAVE = 2


def wave_size(drawn: int, cap: int) -> int:
    """The next wave: as many as drawn so far (FIRST_WAVE to begin with), never past the cap."""
    return max(0, min(max(drawn, FIRST_WAVE), cap - drawn))


def certified_mode(
    candidates: list[Candidate], slack: float = 0.01, constant: float = 0.0
) -> Candidate | None:
    """The finished candidate proven to beat every sequence a further candidate could end with, or None.

    Every candidate drawn stands for a set of sequences: a finished one for itself, any other
    for all continuations of its tokens so far (its prefix), whose probabilities add up to the
    prefix's and each of which is at most that. Nested sets are merged into the outer one, so
    the sets left are disjoint and cover mass C; every sequence outside them has probability
    at most 1 - C. A finished y* more likely than that and than every other set's bound is the
    most likely sequence, except for ones longer than the token limit: a candidate truncated
    at its limit stands for those, and they never beat a finished one. A candidate's
    log-likelihood is taken `slack` per token plus `constant` lower for y* and the mass covered,
    and as much higher for the rivals: the most the engine's scores may drift (the dtype's bound).
    """
    items: dict[tuple[int, ...], Candidate] = {}
    for c in candidates:
        items.setdefault(tuple(c.token_ids), c)
    outer: list[tuple[int, ...]] = []
    for key in sorted(items):  # a prefix sorts before its continuations, and they follow it
        if not outer or key[: len(outer[-1])] != outer[-1]:
            outer.append(key)
    finished = [k for k in outer if items[k].status is CandidateStatus.FINISHED]
    if not finished:
        return None

    def low(key: tuple[int, ...]) -> float:
        return items[key].logprob_sum - slack * items[key].num_tokens - constant

    def rival(key: tuple[int, ...]) -> float:
        c = items[key]
        if c.status is CandidateStatus.TRUNCATED and c.num_tokens >= c.max_tokens:
            return -math.inf  # only sequences past the limit: never selected over a finished one
        return c.logprob_sum + slack * c.num_tokens + constant

    best = max(finished, key=low)
    unseen = 1.0 - math.fsum(math.exp(low(k)) for k in outer)
    rivals = max((rival(k) for k in outer if k != best), default=-math.inf)
    if low(best) > rivals and math.exp(low(best)) > unseen:
        return items[best]
    return None


def missing_mass(candidates: list[Candidate]) -> float:
    """Good-Turing estimate of the probability of sequences not drawn yet: singletons / draws.

    A candidate that did not finish counts as a sequence seen once (its end is unknown).
    """
    ended = [c for c in candidates if c.done]
    if not ended:
        return 1.0
    keys: Counter[Hashable] = Counter(
        tuple(c.token_ids) if c.status is CandidateStatus.FINISHED else ("unfinished", c.index)
        for c in ended
    )
    return sum(1 for count in keys.values() if count == 1) / len(ended)


def drawn_again(leader: Candidate, candidates: list[Candidate]) -> bool:
    """True when another finished candidate is the same sequence as `leader`."""
    return any(c is not leader and c.status is CandidateStatus.FINISHED and c.token_ids == leader.token_ids
               for c in candidates)


def leader_holds(leader_votes: int, runner_up_votes: int, remaining: int) -> float:
    """The posterior probability that the leader is still strictly ahead after `remaining` more votes.

    The runner-up's share of the two answers' votes is Beta(b + 1, a + 1) (uniform prior); with
    every remaining vote going to one of the two (the widest swing), the runner-up gains j of
    them, j ~ Beta-Binomial(remaining, b + 1, a + 1), and the leader holds while a + r - j > b + j.
    As `remaining` grows this tends to P(share < 1/2), the posterior that the leader truly leads.
    """
    a, b, r = leader_votes, runner_up_votes, remaining
    if a - b > r:
        return 1.0  # no remaining votes can undo the lead: certain, not estimated

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    prior = log_beta(b + 1, a + 1)
    return math.fsum(math.comb(r, j) * math.exp(log_beta(j + b + 1, r - j + a + 1) - prior)
                     for j in range(r + 1) if a + r - j > b + j)


def settled_vote(leader: str | None, answers: list[str | None], remaining: int, certainty: float) -> bool:
    """True once the posterior that `leader` still leads every other answer at the cap reaches `certainty`.

    `remaining`: the votes still to come (running candidates and those not drawn yet).
    """
    votes = Counter(a for a in answers if a is not None)
    if leader is None or leader not in votes:
        return False
    runner_up = max((v for a, v in votes.items() if a != leader), default=0)
    return leader_holds(votes[leader], runner_up, remaining) >= certainty


class Waves(Drawing):
    """Mixed in before a strategy: fresh candidates in doubling waves up to `n`, stopped when settled."""

    n: int
    choices = 1  # completed candidates the response needs (OpenAI `n`) before any rule may stop

    def settled(self) -> str | None:
        """The rule that says more candidates cannot matter now, if any."""
        raise NotImplementedError

    def draw_wave(self, count: int) -> list[Decision]:
        """Draw `count` fresh candidates."""
        raise NotImplementedError

    def start(self) -> list[Decision]:
        """The first wave."""
        return self.draw_wave(wave_size(0, self.n))

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """The strategy's own bookkeeping, then stop if settled, or the next wave once this one is over."""
        decisions = super().on_end(candidate)
        if self.stopped_by is not None:
            return decisions
        enough = sum(c.completed for c in self.drawn) >= self.choices
        rule = self.settled() if enough else None
        if rule is not None:
            self.stop(rule)
            return decisions + abort(self.running())
        if not self.running():
            decisions += self.draw_wave(wave_size(len(self.drawn), self.n))
        return decisions


class AdaptiveBestOfN(Waves, BestOfN):
    """best_of_n in waves: stops on the exact certificate, or on the missing-mass or repeated-leader rule."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, keep: int, from_model: bool) -> None:
        super().__init__(config, max_tokens, keep)
        self.exact = config.length_penalty == 0.0 and keep == 1  # the certificate is about one sequence
        self.from_model = from_model
        self.choices = keep
        self.drift = config.score_drift

    def draw_wave(self, count: int) -> list[Decision]:
        """Fresh candidates with the request's sampling."""
        return self.draw_fresh(count)

    def settled(self) -> str | None:
        """`certificate` when the leader is proven the mode; a heuristic's name when it is likely."""
        if self.exact and certified_mode(self.drawn, *self.drift) is not None:
            return "certificate"
        if self.running():
            return None  # the estimates need a whole wave
        leader = self.select(self.drawn)
        if leader is None or leader.status is not CandidateStatus.FINISHED:
            return None
        if self.from_model and math.exp(leader.logprob_sum) > missing_mass(self.drawn):  # model samples only
            return "missing_mass"
        return "repeated_leader" if drawn_again(leader, self.drawn) else None


class AdaptiveMajority(Waves, Majority):
    """majority in waves: stops once the leading answer's lead is settled (posterior)."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, choices: int = 1) -> None:
        super().__init__(config, max_tokens)
        self.certainty = config.certainty
        self.choices = choices
        self.answers: dict[int, str | None] = {}

    def draw_wave(self, count: int) -> list[Decision]:
        """Fresh candidates with the request's sampling."""
        return self.draw_fresh(count)

    def settled(self) -> str | None:
        """`posterior` once the leader stays ahead with probability >= certainty."""
        completed = [c for c in self.drawn if c.completed]
        for c in completed:
            if c.index not in self.answers:
                self.answers[c.index] = self.answer(c)
        leader = self.select(completed)
        if leader is None:
            return None
        answers = [self.answers[c.index] for c in completed]
        remaining = self.n - len(self.drawn) + len(self.running())
        settled = settled_vote(self.answers[leader.index], answers, remaining, self.certainty)
        return "posterior" if settled else None


class AdaptiveDeepConf(Waves, DeepConf):
    """confidence in waves after the warm-up: stops once the confident traces' vote is settled."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, choices: int = 1) -> None:
        super().__init__(config, max_tokens)
        self.certainty = config.certainty
        self.choices = choices

    def start(self) -> list[Decision]:
        """The warm-up traces (the first wave)."""
        return self._draw(self.warmup)

    def after_warmup(self) -> list[Decision]:
        """Nothing at once: the waves follow."""
        return []

    def draw_wave(self, count: int) -> list[Decision]:
        """More traces once the warm-up has set the threshold."""
        return self._draw(count) if self.threshold is not None else []

    def settled(self) -> str | None:
        """`posterior` once the winner of the confident traces' vote stays ahead by count."""
        if self.threshold is None:
            return None
        leader = self.select(self.drawn)
        voters = [c for c in self.drawn if c.completed and self.confidence(c) >= self.threshold]
        if leader is None or not voters:
            return None
        answers = [extract_answer(c.text, self.pattern) for c in voters]
        winner = extract_answer(leader.text, self.pattern)
        remaining = self.n - len(self.drawn) + len(self.running())
        return "posterior" if settled_vote(winner, answers, remaining, self.certainty) else None
