"""A request's resolved sharpening settings, and the strategy families they are checked against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from server.errors import InvalidRequest
from server.sharpening.patterns import Pattern, PatternError, compile_pattern

StrategyName = Literal[
    "best_of_n", "rejection", "beam", "power", "majority", "smc", "mcmc", "confidence", "none"
]
ADAPTIVE_STRATEGIES = ("best_of_n", "majority", "confidence")  # can draw in waves and stop early
POWER_STRATEGIES = ("power", "smc", "mcmc")  # sample towards pi^alpha: need alpha
# keep the most likely candidate: a greedy candidate and low-temperature samples only help them
MAXIMISING_STRATEGIES = ("best_of_n", "rejection", "beam")
# whole-candidate strategies: cutting an extra candidate for load leaves their selection rule intact;
# samplers that claim a distribution (power, smc, mcmc) and prefix-forking ones (beam, confidence) wait
LOAD_AWARE_STRATEGIES = ("best_of_n", "rejection", "majority")
LoadMode = Literal["spare", "wait"]
PROPOSAL_STRATEGIES = ("smc", "mcmc")  # draw from the model at temperature 1/alpha themselves
# at temperature 0 every candidate of these is the same greedy decode, so one is drawn
ONE_AT_TEMPERATURE_ZERO = ("best_of_n", "rejection", "beam", "majority", "confidence", "power")
STRATEGIES: tuple[str, ...] = get_args(StrategyName)
# settings whose default differs by strategy: beam decides every 16 tokens, smc reweights every 32
STRATEGY_DEFAULTS: dict[str, dict[str, int]] = {"beam": {"checkpoint_tokens": 16}}
MAX_TOP_LOGPROBS = 20  # the engine's limit on top log-probabilities per token


class InvalidSharpening(InvalidRequest):
    """A sharpening setting is missing or out of range (400); `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message, param=param)


@dataclass(frozen=True)
class SharpeningConfig:
    """Everything a strategy needs to know, with server defaults filled in and checked
    (server/requests/sharpening.py `check_config`) before any strategy sees it."""

    strategy: str = "best_of_n"
    n: int = 8
    length_penalty: float = 0.0
    prune: bool = True
    threshold: float | None = None
    alpha: float | None = None
    answer_pattern: str | None = None
    return_candidates: bool = False
    seed: int | None = None
    checkpoint_tokens: int = 32
    ess_threshold: float = 0.5
    blocks: int = 4
    mh_steps: int = 2
    warmup: int = 4
    confidence_top_k: int = 5
    window: int = 32
    keep_percentile: float = 90.0
    stream_candidates: bool = False
    greedy_candidate: bool = False
    beam_width: int = 4
    max_total_tokens: int | None = None  # the request's token budget, all candidates together
    adaptive: bool = False  # draw in growing waves, n being the cap, and stop once settled
    load: LoadMode = "wait"  # spare: extras only on the engine's spare capacity (server/load.py); wait: all
    certainty: float = 0.95  # adaptive majority/confidence: posterior that the leader still leads at the cap
    tie_tolerance: float = 0.0  # scores closer than this are ties, won by the lower index
    # how far an observed log-likelihood of T tokens may sit from the model's: (nats per token, nats)
    score_drift: tuple[float, float] = (0.01, 0.0)

    @property
    def candidate_count(self) -> int:
        """How many candidates the strategy may run at once (mcmc runs one chain)."""
        return 1 if self.strategy in ("none", "mcmc") else self.n

    @property
    def warmup_count(self) -> int:
        """confidence: how many warm-up traces (never more than n)."""
        return min(self.warmup, self.n)

    def compiled_pattern(self) -> Pattern:
        """The answer pattern compiled for linear-time matching; a bad pattern is the client's mistake."""
        try:
            return compile_pattern(self.answer_pattern or "")
        except PatternError as exc:
            raise InvalidSharpening("sharpening.answer_pattern", f"sharpening.answer_pattern {exc}") from exc
