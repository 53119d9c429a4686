"""A request's resolved sharpening settings, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from server.sharpening.patterns import Pattern, PatternError, compile_pattern

StrategyName = Literal["best_of_n", "rejection", "power", "majority", "none"]
STRATEGIES: tuple[str, ...] = get_args(StrategyName)


class InvalidSharpening(ValueError):
    """A sharpening setting is missing or out of range; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


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
    stream_candidates: bool = False

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
        if self.strategy == "power" and (self.alpha is None or self.alpha < 1.0):
            raise InvalidSharpening("sharpening.alpha", "strategy 'power' needs sharpening.alpha >= 1")
        if self.strategy == "majority":
            if not self.answer_pattern:
                raise InvalidSharpening(
                    "sharpening.answer_pattern",
                    "strategy 'majority' needs sharpening.answer_pattern (a regex; group 1 is the answer)",
                )
            self.compiled_pattern()

    @property
    def candidate_count(self) -> int:
        """How many candidates the strategy may draw."""
        return 1 if self.strategy == "none" else self.n

    def compiled_pattern(self) -> Pattern:
        """The answer pattern compiled for linear-time matching; a bad pattern is the client's mistake."""
        try:
            return compile_pattern(self.answer_pattern or "")
        except PatternError as exc:
            raise InvalidSharpening("sharpening.answer_pattern", f"sharpening.answer_pattern {exc}") from exc
