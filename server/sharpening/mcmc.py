"""`mcmc`: Metropolis-Hastings power sampling (Karan & Du 2025, "Reasoning with Sampling").

The answer is grown block by block (`blocks` blocks of ceil(max_tokens / blocks) tokens).
Each block is drawn from the proposal q = the model at temperature 1/alpha, then `mh_steps`
Metropolis-Hastings steps target p^alpha over sequences of at most the block's end length L:
pick a cut t of the current sequence x uniformly, resample the suffix from t (up to length L)
from q, giving x', and accept x' with probability min(1, r),

    r = p(x')^alpha q(x_t.. | x_<t) C(x) / (p(x)^alpha q(x'_t.. | x_<t) C(x')),

where C counts a sequence's cuts (the chance of picking t from either side). With the
proposal at temperature 1/alpha, log q(v) = alpha log p(v) - log Z_s at each position s, so
the alpha log p terms cancel and log r is the suffix sum of log Z_s over x' minus that over x,
plus log C(x) - log C(x'): the same tempered normalisers as Power-SMC (`tempered`).
Every proposal and every block extension is a fork from the current sequence's prefix.
"""

from __future__ import annotations

import math
import random

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Decision, Draw, Drawing
from server.sharpening.smc import NORMALISER_TOP
from server.sharpening.tempered import token_log_normaliser


class PowerMCMC(Drawing):
    """Block-wise Metropolis-Hastings over suffix resamples, targeting pi^alpha."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, rng: random.Random) -> None:
        super().__init__(max_tokens)
        assert config.alpha is not None
        self.alpha = config.alpha
        self.block = math.ceil(max_tokens / config.blocks)
        self.mh_steps = config.mh_steps
        self.rng = rng
        self.log_z: dict[int, list[float]] = {}  # per token of each candidate
        self.error: dict[int, list[float]] = {}  # the bound on each of those
        self.current: Candidate | None = None
        self.block_end = min(self.block, max_tokens)
        self.steps_left = 0

    def start(self) -> list[Decision]:
        """The first block, from the proposal."""
        return [self._draw(self.new(), self.block_end)]

    def _draw(self, candidate: Candidate, new_tokens: int) -> Draw:
        keep, parent = candidate.prefix_tokens, candidate.parent
        self.log_z[candidate.index] = self.log_z[parent][:keep] if parent is not None else []
        self.error[candidate.index] = self.error[parent][:keep] if parent is not None else []
        return Draw(candidate, new_tokens, 1.0 / self.alpha, NORMALISER_TOP)

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Note each token's tempered normaliser."""
        for token in tokens:
            log_z, error = token_log_normaliser(token, self.alpha)
            self.log_z[candidate.index].append(log_z)
            self.error[candidate.index].append(error)
        return []

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """Take a block extension as the current state, or accept/reject a proposal; go on."""
        if candidate.status is CandidateStatus.PRUNED:
            return []  # aborted from outside: stop where we are
        current = self.current
        if current is None or candidate.prefix_tokens == current.num_tokens:
            self.current, self.steps_left = candidate, self.mh_steps  # a new block
        elif self.stopped_by is None:  # a proposal the budget cut short is not judged
            self._judge(candidate, current)
        return self._next()

    def _judge(self, proposal: Candidate, current: Candidate) -> None:
        t = proposal.prefix_tokens
        log_r = (
            math.fsum(self.log_z[proposal.index][t:])
            - math.fsum(self.log_z[current.index][t:])
            + math.log(cut_count(current))
            - math.log(cut_count(proposal))
        )
        error = sum(self.error[proposal.index][t:]) + sum(self.error[current.index][t:])
        self.spend.normaliser_error = max(self.spend.normaliser_error, error)
        if log_r >= 0 or self.rng.random() < math.exp(log_r):
            self.current = proposal
            self.spend.mh_accepted += 1

    def _next(self) -> list[Decision]:
        current = self.current
        assert current is not None
        if self.steps_left > 0:
            self.steps_left -= 1
            self.spend.mh_proposals += 1
            t = self.rng.choice(cuts(current))
            return [self._draw(self.fork(current, t), self.block_end - t)]
        if current.status is CandidateStatus.PAUSED:  # the next block
            self.block_end = min(self.block_end + self.block, self.max_tokens)
            return [self._draw(self.fork(current, current.num_tokens), self.block_end - current.num_tokens)]
        return []

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """The chain's final state."""
        return self.current if self.current is not None and self.current.completed else None


def cuts(candidate: Candidate) -> list[int]:
    """Where a suffix resample may start: token counts before the end where the text can be cut."""
    return sorted(k for k in candidate.cuts if k < candidate.num_tokens)


def cut_count(candidate: Candidate) -> int:
    """How many cuts a suffix resample can choose from."""
    return len(cuts(candidate))
