"""`smc`: Power-SMC (Azizi et al. 2026), sequential Monte Carlo towards pi^alpha.

n particles are drawn from the proposal q = the model at temperature 1/alpha, in rounds of
`checkpoint_tokens` tokens. The target of a prefix is p(x_1..t)^alpha, so a token drawn from
q(x_t | x_<t) = p(x_t | x_<t)^alpha / Z_t multiplies a particle's weight by
p(x_t)^alpha / q(x_t) = Z_t = sum_v p(v | x_<t)^alpha: a function of the prefix only, read off
the engine's top-k raw log-probabilities (`tempered.log_normaliser`). At each checkpoint, when
the effective sample size (sum w)^2 / sum w^2 falls below `ess_threshold` * n, the particles
are resampled (systematic resampling) and their weights reset. Every particle that goes on
is a fork: a new engine request whose prompt is the prompt plus the particle's tokens, served
mostly from the prefix cache. A particle that ended (end of sequence or max_tokens) keeps its
weight and may be duplicated by resampling. At the end one particle is drawn by weight.
"""

from __future__ import annotations

import math
import random

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import MAX_TOP_LOGPROBS, SharpeningConfig
from server.sharpening.contract import Decision, Draw, Drawing
from server.sharpening.tempered import token_log_normaliser

NORMALISER_TOP = MAX_TOP_LOGPROBS  # top-k log-probabilities asked of the engine


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
        self.log_weight: dict[int, float] = {}
        self.error: dict[int, float] = {}  # bound on each particle's log-weight error
        self.population: list[Candidate] = []  # this round's particles: growing or ended

    def start(self) -> list[Decision]:
        """n fresh particles, to the first checkpoint."""
        return [self._grow(self.new(), 0.0, 0.0) for _ in range(self.n)]

    def _grow(self, particle: Candidate, log_weight: float, error: float) -> Draw:
        self.log_weight[particle.index] = log_weight
        self.error[particle.index] = error
        self.population.append(particle)
        return Draw(particle, self.checkpoint, 1.0 / self.alpha, NORMALISER_TOP)

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Multiply the particle's weight by each token's tempered normaliser."""
        for token in tokens:
            log_z, error = token_log_normaliser(token, self.alpha)
            self.log_weight[candidate.index] += log_z
            self.error[candidate.index] += error
        self.spend.normaliser_error = max(self.spend.normaliser_error, self.error[candidate.index])
        return []

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """At a checkpoint (no particle growing): resample if the ESS is low, then grow on."""
        if any(p.status is CandidateStatus.RUNNING for p in self.population):
            return []
        particles = self.population
        if not any(p.status is CandidateStatus.PAUSED for p in particles):
            return []  # every particle ended: select() draws the answer
        weights = self.weights(particles)
        if not any(weights):
            return []  # every particle was aborted
        if effective_sample_size(weights) < self.ess_threshold * len(particles):
            particles = systematic_resample(particles, weights, self.rng)
            self.log_weight.update((p.index, 0.0) for p in particles)
            self.spend.resamplings += 1
        self.population = []
        decisions: list[Decision] = []
        for particle in particles:
            if particle.status is CandidateStatus.PAUSED:
                child = self.fork(particle, particle.num_tokens)
                decisions.append(
                    self._grow(child, self.log_weight[particle.index], self.error[particle.index])
                )
            else:
                self.population.append(particle)
        return decisions

    def weights(self, particles: list[Candidate]) -> list[float]:
        """Particle weights scaled so that the largest is 1 (aborted particles weigh 0)."""
        logs = [
            self.log_weight[p.index] if p.status is not CandidateStatus.PRUNED else -math.inf
            for p in particles
        ]
        top = max(logs)
        return [math.exp(w - top) if w > -math.inf else 0.0 for w in logs]

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """One of the final particles, drawn in proportion to its weight."""
        pool = [p for p in self.population if p.completed]
        if not pool:
            return None
        return self.rng.choices(pool, weights=self.weights(pool))[0]


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
