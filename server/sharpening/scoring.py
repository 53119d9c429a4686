"""Verifier scores and the exact upper bound used for branch-and-bound pruning.

A candidate's score is its raw sequence log-likelihood divided by `T ** length_penalty`
(T = its number of tokens). `length_penalty = 0` is the paper's sequence log-likelihood,
`1` the per-token mean (OpenAI's legacy `best_of`).
"""

from __future__ import annotations

from server.sharpening.candidate import Candidate, CandidateStatus


def score(logprob_sum: float, num_tokens: int, length_penalty: float) -> float:
    """Length-penalised log-likelihood of a sequence of `num_tokens` tokens."""
    return logprob_sum / max(num_tokens, 1) ** length_penalty


def candidate_score(candidate: Candidate, length_penalty: float) -> float:
    """Score of a candidate as it stands."""
    return score(candidate.logprob_sum, candidate.num_tokens, length_penalty)


def score_upper_bound(partial_logprob_sum: float, max_tokens: int, length_penalty: float) -> float:
    """The highest score a running candidate can still reach, for length_penalty in [0, 1].

    Log-probabilities are <= 0, so the final sum S is <= the partial sum, and with S <= 0 the
    quotient S / T ** lp is largest when T is as long as allowed. Hence the final score is at
    most `partial / max_tokens ** lp`.
    """
    return partial_logprob_sum / max(max_tokens, 1) ** length_penalty


def rank(candidates: list[Candidate], length_penalty: float, tie_tolerance: float = 0.0) -> list[Candidate]:
    """Completed candidates, best first; pruned and running ones are left out.

    Finished candidates come before truncated ones. Within each group the next place goes to
    the lowest index among the candidates scoring within `tie_tolerance` of the best one left,
    so scores that precision and batching could have swapped are ties, broken by index.
    """
    completed = [c for c in candidates if c.completed]
    finished = [c for c in completed if c.status is CandidateStatus.FINISHED]
    truncated = [c for c in completed if c.status is not CandidateStatus.FINISHED]
    return [
        *_rank_by_score(finished, length_penalty, tie_tolerance),
        *_rank_by_score(truncated, length_penalty, tie_tolerance),
    ]


def _rank_by_score(candidates: list[Candidate], length_penalty: float, tolerance: float) -> list[Candidate]:
    scores = {c.index: candidate_score(c, length_penalty) for c in candidates}
    left = sorted(candidates, key=lambda c: c.index)
    ranked: list[Candidate] = []
    while left:
        best = max(scores[c.index] for c in left)
        chosen = next(c for c in left if scores[c.index] >= best - tolerance)
        ranked.append(chosen)
        left.remove(chosen)
    return ranked
