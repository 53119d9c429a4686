"""`smc`: Power-SMC (Azizi et al. 2026), sequential Monte Carlo towards pi^alpha.

n particles are drawn from the proposal q = the model at temperature 1/alpha, in rounds of
`checkpoint_tokens` tokens. The target of a prefix is p(x_1..t)^alpha, so a token drawn from
q(x_t | x_<t) = p(x_t | x_<t)^alpha / Z_t multiplies a particle's weight by
p(x_t)^alpha / q(x_t) = Z_t = sum_v p(v | x_<t)^alpha: a function of the prefix only, read off
the engine's top-k raw log-probabilities (`tempered.log_normaliser`). At each checkpoint, when
the effective sample size (sum w)^2 / sum w^2 of the particles that go on falls below
`ess_threshold` times their number, they are resampled (systematic resampling), each taking an
equal share of their total weight. A particle that ended (end of sequence or max_tokens) keeps
its final weight and leaves the resampling. Every particle that goes on is a fork: a new engine
request whose prompt is the prompt plus the particle's tokens, served mostly from the prefix
cache. At the end one ended particle is drawn by weight.

That draw is made as early as it can be, without changing its distribution. For alpha >= 1
each Z_t <= 1, so a growing particle's weight only falls, and resampling keeps the total; the
weight still to come from live particles is at most their current total L. The draw picks a
point U uniformly below F + L (F: the ended particles' total, laid out in the order they
ended). If U falls on an ended particle, that particle is the answer and the live ones are
aborted (`stopped_by: early_selection`); if U lies beyond what F + L has shrunk to, the point is
drawn again; otherwise drawing goes on. This is rejection sampling with upper bounds that
tighten over time, so every ended particle is chosen with probability proportional to its final
weight, exactly as if every particle had run to its end.
"""

from __future__ import annotations

import math
import random

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import MAX_TOP_LOGPROBS, SharpeningConfig
from server.sharpening.contract import Decision, Draw, Drawing, abort
from server.sharpening.tempered import token_log_normaliser

NORMALISER_TOP = MAX_TOP_LOGPROBS  # top-k log-probabilities asked of the engine
LIVE = (CandidateStatus.RUNNING, CandidateStatus.PAUSED)


class PowerSMC(Drawing):
    """Sequential Monte Carlo over n particles targeting pi^alpha, resampling by ESS."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, rng: random.Random) -> None:
        super().__init__(max_tokens)
        assert config.alpha is not None
        self.alpha = config.alpha
        self.n = config.n
        self.checkpoint = config.checkpoint_tokens
        self.ess_threshold = config.ess_threshold
        self.rng = rng
        self.chooser = random.Random(rng.random())  # the final draw's own stream: the run never sees it
        self.early_draw = EarlyDraw(self.chooser)
        self.log_weight: dict[int, float] = {}
        self.error: dict[int, float] = {}  # bound on each particle's log-weight error
        self.population: list[Candidate] = []  # this round's particles: growing or paused
        self.ended: list[Candidate] = []  # particles that ran to their end, in the order they ended
        self.chosen: Candidate | None = None

    def start(self) -> list[Decision]:
        """n fresh particles, to the first checkpoint."""
        return [self._grow(self.new(), 0.0, 0.0) for _ in range(self.n)]

    def _grow(self, particle: Candidate, log_weight: float, error: float) -> Draw:
        self.log_weight[particle.index] = log_weight
        self.error[particle.index] = error
        self.population.append(particle)
        return Draw(particle, self.checkpoint, 1.0 / self.alpha, NORMALISER_TOP)

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Multiply the particle's weight by each token's tempered normaliser; draw early if it can."""
        for token in tokens:
            log_z, error = token_log_normaliser(token, self.alpha)
            self.log_weight[candidate.index] += log_z
            self.error[candidate.index] += error
        self.spend.normaliser_error = max(self.spend.normaliser_error, self.error[candidate.index])
        return self._draw_early()

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """An ended particle keeps its weight; at a checkpoint (none growing) the rest go on."""
        if candidate.completed:
            self.ended.append(candidate)
        if candidate.status is not CandidateStatus.PAUSED and candidate in self.population:
            self.population.remove(candidate)  # (a paused particle may be truncated by a budget stop)
        decisions = self._draw_early()
        if self.chosen is not None or any(p.status is CandidateStatus.RUNNING for p in self.population):
            return decisions
        return decisions + self._next_round()

    def _next_round(self) -> list[Decision]:
        """Resample the paused particles if their ESS is low (keeping their total), then fork each."""
        particles = [p for p in self.population if p.status is CandidateStatus.PAUSED]
        if not particles:
            return []  # every particle ended (or a budget stop refused the last round's forks)
        log_total = log_sum_exp([self.log_weight[p.index] for p in particles])
        weights = self.weights(particles)
        if effective_sample_size(weights) < self.ess_threshold * len(particles):
            particles = systematic_resample(particles, weights, self.rng)
            share = log_total - math.log(len(particles))
            self.log_weight.update((p.index, share) for p in particles)
            self.spend.resamplings += 1
        self.population = []
        return [
            self._grow(self.fork(p, p.num_tokens), self.log_weight[p.index], self.error[p.index])
            for p in particles
        ]

    def _draw_early(self) -> list[Decision]:
        """Make the final draw now if the weights already decide it (see the module docstring)."""
        if self.chosen is not None or self.stopped_by is not None:
            return []
        live = [p for p in self.population if p.status in LIVE]
        index = self.early_draw.decide(
            [self.log_weight[p.index] for p in self.ended], [self.log_weight[p.index] for p in live]
        )
        if index is None:
            return []
        self.chosen = self.ended[index]
        if live:
            self.stop("early_selection")
        return abort([p for p in live if p.status is CandidateStatus.RUNNING])

    def weights(self, particles: list[Candidate]) -> list[float]:
        """Particle weights scaled so that the largest is 1 (aborted particles weigh 0)."""
        logs = [
            self.log_weight[p.index] if p.status is not CandidateStatus.PRUNED else -math.inf
            for p in particles
        ]
        top = max(logs)
        return [math.exp(w - top) if w > -math.inf else 0.0 for w in logs]

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """The particle drawn by weight (early, or now from every ended one after a budget stop)."""
        if self.chosen is not None:
            return self.chosen
        pool = self.ended + [p for p in self.population if p.completed and p not in self.ended]
        if not pool:
            return None
        return self.chooser.choices(pool, weights=self.weights(pool))[0]


class EarlyDraw:
    """A draw by final weight among particles that end one after another, made once it is decided.

    `decide` is called with the log weights of the ended particles (in the order they ended; the
    list only grows) and of the live ones, whose total may only fall from call to call. The point U
    is uniform below the current total; it lands on an ended particle (the answer), beyond what
    the live particles can still add (drawn again), or on live weight (undecided).
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.point: tuple[float, float] | None = None  # U, and the log scale it is measured in

    def decide(self, ended: list[float], live: list[float]) -> int | None:
        """Index into `ended` of the drawn particle, or None while the live ones could change it."""
        if not ended:
            return None
        while True:
            if self.point is None:
                scale = max(ended + live)
                self.point = (self.rng.random() * total(ended + live, scale), scale)
            u, scale = self.point
            cumulative = 0.0
            for index, log_weight in enumerate(ended):
                cumulative += math.exp(log_weight - scale)
                if u < cumulative:
                    return index
            if live and u < cumulative + total(live, scale):
                return None
            self.point = None  # past every weight still possible (or a rounding past the last): again


def total(log_weights: list[float], scale: float) -> float:
    """sum exp(log_weights), in units of exp(scale)."""
    return math.fsum(math.exp(w - scale) for w in log_weights)


def log_sum_exp(logs: list[float]) -> float:
    """log sum exp(logs), computed without overflow."""
    top = max(logs)
    return top + math.log(math.fsum(math.exp(x - top) for x in logs))


def effective_sample_size(weights: list[float]) -> float:
    """(sum w)^2 / sum w^2: n for equal weights, 1 when one particle carries all."""
    return sum(weights) ** 2 / sum(w * w for w in weights)


def systematic_resample(
    particles: list[Candidate], weights: list[float], rng: random.Random
) -> list[Candidate]:
    """len(particles) draws in proportion to `weights`, with one uniform offset (low variance)."""
    count, total = len(particles), sum(weights)
    offset = rng.random()
    chosen: list[Candidate] = []
    cumulative, i = weights[0] / total * count, 0
    for k in range(count):
        while cumulative <= k + offset and i < count - 1:
            i += 1
            cumulative += weights[i] / total * count
        chosen.append(particles[i])
    return chosen
