"""Pure selection logic: candidates, scores, exact pruning and strategies. No I/O, no engine."""

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import STRATEGIES, InvalidSharpening, SharpeningConfig
from server.sharpening.pruning import Pruner
from server.sharpening.scoring import candidate_score, rank, score, score_upper_bound
from server.sharpening.strategies import Strategy, build_strategy

__all__ = [
    "STRATEGIES",
    "Candidate",
    "CandidateStatus",
    "InvalidSharpening",
    "Pruner",
    "SharpeningConfig",
    "Strategy",
    "TokenLogprob",
    "build_strategy",
    "candidate_score",
    "rank",
    "score",
    "score_upper_bound",
]
