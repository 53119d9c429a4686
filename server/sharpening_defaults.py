"""A request's `sharpening` object filled in from the server's defaults and checked against its caps."""

from __future__ import annotations

from dataclasses import replace

from server.config import Settings
from server.errors import InvalidRequest
from server.protocol import SharpeningParams
from server.sharpening import SharpeningConfig
from server.sharpening.config import (
    ADAPTIVE_STRATEGIES,
    LOAD_AWARE_STRATEGIES,
    MAXIMISING_STRATEGIES,
    ONE_AT_TEMPERATURE_ZERO,
    STRATEGY_DEFAULTS,
)

# fields that only say what to report: a request sending just these still gets the server's load policy
REPORTING_FIELDS = frozenset({"return_candidates", "stream_candidates"})


def resolve_sharpening(
    settings: Settings,
    params: SharpeningParams | None,
    legacy_best_of: int | None = None,
    temperature: float | None = None,
) -> SharpeningConfig:
    """Fill in server defaults; legacy `best_of` > 1 means best_of_n with length_penalty 1.

    A greedy candidate is drawn by default when the request sends no `temperature`. A request
    that sends no `sharpening` settings (reporting ones aside) nor legacy `best_of` runs under the
    server's load policy; one that asks for sharpening explicitly waits for every candidate unless
    it says `load`.
    """
    given = params.model_dump(exclude_none=True) if params else {}
    legacy = legacy_best_of is not None and legacy_best_of > 1
    asked = (params.model_fields_set if params else set()) - REPORTING_FIELDS
    implicit = not asked and not legacy
    if legacy_best_of is not None and legacy_best_of > 1:
        given = {"strategy": "best_of_n", "n": legacy_best_of, "length_penalty": 1.0} | given
    cap = settings.max_total_tokens
    strategy = given.pop("strategy", settings.default_strategy)
    given = STRATEGY_DEFAULTS.get(strategy, {}) | given
    greedy = temperature is None and settings.greedy_candidate and strategy in MAXIMISING_STRATEGIES
    adaptive = settings.default_adaptive and strategy in ADAPTIVE_STRATEGIES
    load = settings.load_policy if implicit and strategy in LOAD_AWARE_STRATEGIES else "wait"
    config = SharpeningConfig(
        strategy=strategy,
        n=given.pop("n", settings.default_n),
        greedy_candidate=given.pop("greedy_candidate", greedy),
        max_total_tokens=given.pop("max_total_tokens", cap),
        adaptive=given.pop("adaptive", adaptive),
        load=given.pop("load", load),
        tie_tolerance=settings.tie_tolerance or 0.0,
        **given,
    )
    if config.candidate_count > settings.max_candidates:
        raise InvalidRequest(
            f"sharpening.n={config.n} is more than this server allows per request "
            f"({settings.max_candidates}); ask for fewer candidates",
            param="sharpening.n",
        )
    if cap is not None and (config.max_total_tokens or 0) > cap:
        raise InvalidRequest(
            f"sharpening.max_total_tokens={config.max_total_tokens} is more than this server allows "
            f"per request ({cap}); ask for a smaller budget", param="sharpening.max_total_tokens"
        )
    return config


def one_decode_at_temperature_zero(
    config: SharpeningConfig, temperature: float, choices: int
) -> SharpeningConfig:
    """At temperature 0 every candidate is the same greedy decode: with one choice asked, draw one."""
    if temperature == 0.0 and choices == 1 and config.strategy in ONE_AT_TEMPERATURE_ZERO:
        return replace(config, n=1, adaptive=False)
    return config
