"""A request's resolved sharpening settings, validated once."""

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
    """Everything a strategy needs to know, with server defaults already filled in."""

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

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidSharpening(
                "sharpening.strategy",
                f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}",
            )
        if self.n < 1:
            raise InvalidSharpening("sharpening.n", "sharpening.n must be at least 1")
        if not 0.0 <= self.length_penalty <= 1.0:
            raise InvalidSharpening(
                "sharpening.length_penalty", "sharpening.length_penalty must be between 0 and 1"
            )
        if self.strategy == "rejection" and self.threshold is None:
            raise InvalidSharpening("sharpening.threshold", "strategy 'rejection' needs sharpening.threshold")
        if self.strategy in POWER_STRATEGIES and (self.alpha is None or self.alpha < 1.0):
            raise InvalidSharpening(
                "sharpening.alpha", f"strategy {self.strategy!r} needs sharpening.alpha >= 1"
            )
        if self.strategy in ("majority", "confidence"):
            if not self.answer_pattern:
                raise InvalidSharpening(
                    "sharpening.answer_pattern",
                    f"strategy {self.strategy!r} needs sharpening.answer_pattern "
                    "(a regex; group 1 is the answer)",
                )
            self.compiled_pattern()
        if self.greedy_candidate and self.strategy not in MAXIMISING_STRATEGIES:
            raise InvalidSharpening(
                "sharpening.greedy_candidate",
                f"strategy {self.strategy!r} draws no greedy candidate; only "
                f"{', '.join(MAXIMISING_STRATEGIES)} do",
            )
        if self.max_total_tokens is not None and self.max_total_tokens < 1:
            raise InvalidSharpening(
                "sharpening.max_total_tokens", "sharpening.max_total_tokens must be at least 1"
            )
        if self.adaptive and self.strategy not in ADAPTIVE_STRATEGIES:
            raise InvalidSharpening(
                "sharpening.adaptive",
                f"sharpening.adaptive works with {', '.join(ADAPTIVE_STRATEGIES)}, not {self.strategy!r}",
            )
        if self.tie_tolerance < 0:
            raise InvalidSharpening("sharpening.tie_tolerance", "sharpening.tie_tolerance must be at least 0")
        if self.load not in ("spare", "wait"):
            raise InvalidSharpening("sharpening.load", f"unknown load mode {self.load!r}; use spare or wait")
        if self.load == "spare" and self.strategy not in LOAD_AWARE_STRATEGIES:
            raise InvalidSharpening(
                "sharpening.load",
                f"sharpening.load 'spare' works with {', '.join(LOAD_AWARE_STRATEGIES)}, "
                f"not {self.strategy!r}",
            )
        if not 0.5 <= self.certainty < 1.0:
            raise InvalidSharpening("sharpening.certainty", "sharpening.certainty must be in [0.5, 1)")
        self._check_stepwise()

    def _check_stepwise(self) -> None:
        at_least_one = ("checkpoint_tokens", "blocks", "warmup", "confidence_top_k", "window", "beam_width")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise InvalidSharpening(f"sharpening.{name}", f"sharpening.{name} must be at least 1")
        if self.mh_steps < 0:
            raise InvalidSharpening("sharpening.mh_steps", "sharpening.mh_steps must be at least 0")
        if not 0.0 <= self.ess_threshold <= 1.0:
            raise InvalidSharpening("sharpening.ess_threshold", "sharpening.ess_threshold must be in [0, 1]")
        if not 0.0 < self.keep_percentile <= 100.0:
            raise InvalidSharpening(
                "sharpening.keep_percentile", "sharpening.keep_percentile must be in (0, 100]"
            )
        if self.confidence_top_k > MAX_TOP_LOGPROBS:
            raise InvalidSharpening(
                "sharpening.confidence_top_k",
                f"sharpening.confidence_top_k must be at most {MAX_TOP_LOGPROBS}",
            )

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
