"""Pure selection logic: candidates, scores, exact pruning and strategies. No I/O, no engine."""

from server.sharpening.candidate import Candidate, CandidateStatus, TokenLogprob
from server.sharpening.config import STRATEGIES, InvalidSharpening, SharpeningConfig
from server.sharpening.contract import Abort, Decision, Draw, Spend, Strategy
from server.sharpening.pruning import Pruner
from server.sharpening.registry import build_strategy
from server.sharpening.scoring import candidate_score, rank, score, score_upper_bound

__all__ = [
    "STRATEGIES",
    "Abort",
    "Candidate",
    "CandidateStatus",
    "Decision",
    "Draw",
    "InvalidSharpening",
    "Pruner",
    "SharpeningConfig",
    "Spend",
    "Strategy",
    "TokenLogprob",
    "build_strategy",
    "candidate_score",
    "rank",
    "score",
    "score_upper_bound",
]
