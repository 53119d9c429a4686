"""`confidence`: DeepConf online (Fu et al. 2025), a heuristic early-stopping vote.

A token's confidence is minus the mean of its top-k log-probabilities (a peaked
distribution scores high); a trace's group confidence is the mean over a sliding window of
`window` tokens, and its confidence is its lowest group confidence. `warmup` traces run to
their end and set the threshold: the confidence that `keep_percentile` % of them reach. The
remaining traces are aborted as soon as a full window falls below it. The answer is a vote
over `answer_pattern` answers of the completed traces at or above the threshold, each vote
weighted by the trace's confidence; the most confident trace with the winning answer is
returned. Nothing here samples from a defined distribution: it is a heuristic that saves
tokens on traces the model itself is unsure about.
"""

from __future__ import annotations

import math
from collections import defaultdict

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Decision, Draw, Drawing, abort
from server.sharpening.patterns import extract_answer


class DeepConf(Drawing):
    """Warm-up traces set a confidence threshold; later traces below it are stopped early."""

    def __init__(self, config: SharpeningConfig, max_tokens: int) -> None:
        super().__init__(max_tokens)
        self.n = config.n
        self.warmup = config.warmup_count
        self.top_k = config.confidence_top_k
        self.window = config.window
        self.keep_percentile = config.keep_percentile
        self.pattern = config.compiled_pattern()
        self.token_confidence: dict[int, list[float]] = defaultdict(list)
        self.threshold: float | None = None

    def start(self) -> list[Decision]:
        """The warm-up traces."""
        return self._draw(self.warmup)

    def _draw(self, count: int) -> list[Decision]:
        return [Draw(self.new(), top_logprobs=self.top_k) for _ in range(count)]

    def on_tokens(self, candidate: Candidate, tokens: list[TokenLogprob]) -> list[Decision]:
        """Track token confidences; stop a post-warm-up trace whose window falls below the threshold."""
        confidences = self.token_confidence[candidate.index]
        confidences.extend(-sum(lp for _, lp in t.top) / max(len(t.top), 1) for t in tokens)
        if self.threshold is None or len(confidences) < self.window:
            return []
        low = sum(confidences[-self.window :]) / self.window < self.threshold
        return abort([candidate] if low and candidate.status is CandidateStatus.RUNNING else [])

    def on_end(self, candidate: Candidate) -> list[Decision]:
        """When the warm-up is over, set the threshold and draw the remaining traces."""
        if self.threshold is not None or self.running():
            return []
        warm = [self.confidence(c) for c in self.drawn if c.completed]
        if not warm:
            return []
        self.threshold = percentile(warm, 100.0 - self.keep_percentile)
        return self.after_warmup()

    def after_warmup(self) -> list[Decision]:
        """The remaining traces, all at once."""
        return self._draw(self.n - self.warmup)

    def confidence(self, candidate: Candidate) -> float:
        """The trace's lowest sliding-window mean confidence (its mean, when shorter than a window)."""
        values = self.token_confidence[candidate.index]
        if not values:
            return -math.inf
        width = min(self.window, len(values))
        windows = (sum(values[i : i + width]) / width for i in range(len(values) - width + 1))
        return min(windows)

    def select(self, candidates: list[Candidate]) -> Candidate | None:
        """Confidence-weighted vote over answers; the most confident trace of the winner."""
        completed = [c for c in candidates if c.completed]
        threshold = self.threshold if self.threshold is not None else -math.inf
        scored = {c.index: self.confidence(c) for c in completed}
        voters = [c for c in completed if scored[c.index] >= threshold] or completed
        if not voters:
            return None
        votes: dict[str, float] = defaultdict(float)
        answers = {c.index: extract_answer(c.text, self.pattern) for c in voters}
        for c in voters:
            answer = answers[c.index]
            if answer is not None:
                votes[answer] += scored[c.index]
        pool = voters
        if votes:
            winner = max(votes, key=lambda a: votes[a])
            pool = [c for c in voters if answers[c.index] == winner]
        return max(pool, key=lambda c: (scored[c.index], -c.index))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of `values`, interpolating linearly between ranks."""
    ordered = sorted(values)
    position = q / 100.0 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
