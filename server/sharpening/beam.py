"""`beam`: an approximate likelihood maximiser, beam search over chunks of tokens.

Each round extends the surviving prefixes (the beams, at most `beam_width`) by `n` children in
all, each `checkpoint_tokens` tokens long or up to its end: a beam's first child greedily
(temperature 0, when `greedy_candidate` is on), the others sampled at the request's candidate
temperature. A child that ends is a hypothesis. At the round's barrier the `beam_width` most
likely distinct paused children become the next beams; they all have the same length, so their
raw log-likelihoods rank them for any length penalty. Exact branch-and-bound pruning against the
best finished hypothesis aborts children, and drops beams, that can no longer win. The answer is
the best hypothesis (finished beats truncated).

Like token-level beam search this is a heuristic: it can miss the most likely sequence. What it
reports is exact: every score is the raw log-likelihood of the returned tokens. Children are forks,
so their shared prefixes come from the engine's prefix cache instead of being generated again.
"""

from __future__ import annotations

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Decision, Draw, abort
from server.sharpening.pruning import PrunedDrawing, Pruner


class Beam(PrunedDrawing):
    """Chunked beam search: n children per round over at most `beam_width` beams."""

    def __init__(self, config: SharpeningConfig, max_tokens: int, keep: int = 1) -> None:
        super().__init__(max_tokens)
        self.n = config.n
        self.width = min(config.beam_width, config.n)
        self.chunk = config.checkpoint_tokens
        self.length_penalty = config.length_penalty
        self.greedy_candidate = config.greedy_candidate
        self.pruner = Pruner(config.length_penalty, config.prune, keep, config.tie_tolerance)
        self.round: list[Candidate] = []

    def start(self) -> list[Decision]:
        """The first round: n children of the empty prefix."""
        return self._expand([None])

    def _expand(self, beams: list[Candidate | None]) -> list[Decision]:
        """n children spread evenly over `beams` (None is the empty prefix), each beam's first greedy."""
        self.round = []
        decisions: list[Decision] = []
        for i, beam in enumerate(beams):
            share = self.n // len(beams) + (i < self.n % len(beams))
            for k in range(share):
                child = self.new() if beam is None else self.fork(beam, beam.num_tokens)
                self.round.append(child)
                greedy = self.greedy_candidate and k == 0
                decisions.append(Draw(child, self.chunk, 0.0 if greedy else None))
        return decisions

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Abort a child once it can no longer beat the best finished hypothesis."""
        return abort([candidate] if self.pruner.cannot_win(candidate) else [])

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """Record a hypothesis, prune, and at the round's barrier expand the next beams."""
        self.pruner.record(candidate)
        running = [c for c in self.round if c.status is CandidateStatus.RUNNING]
        losers = self.pruner.losers(running)
        if len(losers) < len(running):
            return abort(losers)  # the round goes on
        beams = self.next_beams()
        return abort(losers) + (self._expand(list(beams)) if beams else [])

    def next_beams(self) -> list[Candidate]:
        """The round's `beam_width` most likely distinct paused children that can still win."""
        paused = [
            c for c in self.round if c.status is CandidateStatus.PAUSED and not self.pruner.beaten(c)
        ]
        paused.sort(key=lambda c: (-c.logprob_sum, c.index))
        beams: list[Candidate] = []
        seen: set[tuple[int, ...]] = set()
        for child in paused:
            key = tuple(child.token_ids)
            if key not in seen:
                seen.add(key)
                beams.append(child)
        return beams[: self.width]
