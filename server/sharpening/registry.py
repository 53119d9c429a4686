"""Build the strategy object a resolved configuration names."""

from __future__ import annotations

import random

from server.sharpening.adaptive import AdaptiveBestOfN, AdaptiveDeepConf, AdaptiveMajority
from server.sharpening.beam import Beam
from server.sharpening.confidence import DeepConf
from server.sharpening.config import SharpeningConfig
from server.sharpening.contract import Strategy
from server.sharpening.mcmc import PowerMCMC
from server.sharpening.smc import PowerSMC
from server.sharpening.strategies import BestOfN, Majority, Power, Rejection


def build_strategy(
    config: SharpeningConfig,
    max_tokens: int,
    keep: int = 1,
    rng: random.Random | None = None,
    from_model: bool = False,
) -> Strategy:
    """The strategy for `config`; candidates are at most `max_tokens` long, `keep` are returned.

    `from_model`: candidates are samples of the model itself (adaptive heuristics may rely on it).
    """
    rng = rng or random.Random(config.seed)
    if config.adaptive:
        return build_adaptive(config, max_tokens, keep, from_model)
    if config.strategy == "rejection":
        return Rejection(config, max_tokens, keep)
    if config.strategy == "beam":
        return Beam(config, max_tokens, keep)
    if config.strategy == "power":
        return Power(config, max_tokens, rng)
    if config.strategy == "majority":
        return Majority(config, max_tokens)
    if config.strategy == "smc":
        return PowerSMC(config, max_tokens, rng)
    if config.strategy == "mcmc":
        return PowerMCMC(config, max_tokens, rng)
    if config.strategy == "confidence":
        return DeepConf(config, max_tokens)
    return BestOfN(config, max_tokens, keep)


def build_adaptive(config: SharpeningConfig, max_tokens: int, keep: int, from_model: bool) -> Strategy:
    """The adaptive (wave-drawing) version of best_of_n, majority or confidence."""
    if config.strategy == "majority":
        return AdaptiveMajority(config, max_tokens, keep)
    if config.strategy == "confidence":
        return AdaptiveDeepConf(config, max_tokens, keep)
    return AdaptiveBestOfN(config, max_tokens, keep, from_model)
