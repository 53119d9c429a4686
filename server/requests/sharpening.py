"""A request's `sharpening` and sampling rules: every default and every cross-field check, here only.

Bounds of single fields live on the request bodies (openai.py). Everything else is decided here:
the strategy and its defaults, each strategy's required and ranged settings, the load mode, the
greedy candidate and the candidates' temperature, the temperature-0 rule, and which sampling
fields a strategy refuses. The pure core (server/sharpening/) trusts what leaves this module.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from server.config import Settings
from server.errors import InvalidRequest
from server.precision import score_drift
from server.requests.openai import SamplingFields, SharpeningParams
from server.sharpening import SharpeningConfig
from server.sharpening.config import (
    ADAPTIVE_STRATEGIES,
    LOAD_AWARE_STRATEGIES,
    MAX_TOP_LOGPROBS,
    MAXIMISING_STRATEGIES,
    ONE_AT_TEMPERATURE_ZERO,
    POWER_STRATEGIES,
    PROPOSAL_STRATEGIES,
    STRATEGIES,
    STRATEGY_DEFAULTS,
    InvalidSharpening,
)

# fields that only say what to report: a request sending just these still gets the server's load policy
REPORTING_FIELDS = frozenset({"return_candidates", "stream_candidates"})
# Chosen with `make bench-frontier` (docs/sharpening.md): beside a greedy candidate, best-of-8 at
# 0.3-0.5 returned answers 4-5 nats likelier than at 0.7 and 25 likelier than at 1.0, and sooner.
FALLBACK_CANDIDATE_TEMPERATURE = 0.4


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
    if legacy:
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
        score_drift=score_drift(settings.dtype),
        **given,
    )
    check_config(config)
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


def check_config(config: SharpeningConfig) -> None:
    """InvalidSharpening (400) naming the setting when a strategy's settings are missing or out of range."""
    if config.strategy not in STRATEGIES:
        raise InvalidSharpening(
            "sharpening.strategy",
            f"unknown strategy {config.strategy!r}; use one of {', '.join(STRATEGIES)}",
        )
    if config.n < 1:
        raise InvalidSharpening("sharpening.n", "sharpening.n must be at least 1")
    if not 0.0 <= config.length_penalty <= 1.0:
        raise InvalidSharpening(
            "sharpening.length_penalty", "sharpening.length_penalty must be between 0 and 1"
        )
    if config.strategy == "rejection" and config.threshold is None:
        raise InvalidSharpening("sharpening.threshold", "strategy 'rejection' needs sharpening.threshold")
    if config.strategy in POWER_STRATEGIES and (config.alpha is None or config.alpha < 1.0):
        raise InvalidSharpening(
            "sharpening.alpha", f"strategy {config.strategy!r} needs sharpening.alpha >= 1"
        )
    if config.strategy in ("majority", "confidence"):
        if not config.answer_pattern:
            raise InvalidSharpening(
                "sharpening.answer_pattern",
                f"strategy {config.strategy!r} needs sharpening.answer_pattern "
                "(a regex; group 1 is the answer)",
            )
        config.compiled_pattern()
    if config.greedy_candidate and config.strategy not in MAXIMISING_STRATEGIES:
        raise InvalidSharpening(
            "sharpening.greedy_candidate",
            f"strategy {config.strategy!r} draws no greedy candidate; only "
            f"{', '.join(MAXIMISING_STRATEGIES)} do",
        )
    if config.max_total_tokens is not None and config.max_total_tokens < 1:
        raise InvalidSharpening(
            "sharpening.max_total_tokens", "sharpening.max_total_tokens must be at least 1"
        )
    if config.adaptive and config.strategy not in ADAPTIVE_STRATEGIES:
        raise InvalidSharpening(
            "sharpening.adaptive",
            f"sharpening.adaptive works with {', '.join(ADAPTIVE_STRATEGIES)}, not {config.strategy!r}",
        )
    if config.tie_tolerance < 0:
        raise InvalidSharpening("sharpening.tie_tolerance", "sharpening.tie_tolerance must be at least 0")
    if config.load not in ("spare", "wait"):
        raise InvalidSharpening("sharpening.load", f"unknown load mode {config.load!r}; use spare or wait")
    if config.load == "spare" and config.strategy not in LOAD_AWARE_STRATEGIES:
        raise InvalidSharpening(
            "sharpening.load",
            f"sharpening.load 'spare' works with {', '.join(LOAD_AWARE_STRATEGIES)}, "
            f"not {config.strategy!r}",
        )
    if not 0.5 <= config.certainty < 1.0:
        raise InvalidSharpening("sharpening.certainty", "sharpening.certainty must be in [0.5, 1)")
    check_stepwise(config)

def check_stepwise(config: SharpeningConfig) -> None:
    """The stepwise strategies' counts and fractions within range."""
    at_least_one = ("checkpoint_tokens", "blocks", "warmup", "confidence_top_k", "window", "beam_width")
    for name in at_least_one:
        if getattr(config, name) < 1:
            raise InvalidSharpening(f"sharpening.{name}", f"sharpening.{name} must be at least 1")
    if config.mh_steps < 0:
        raise InvalidSharpening("sharpening.mh_steps", "sharpening.mh_steps must be at least 0")
    if not 0.0 <= config.ess_threshold <= 1.0:
        raise InvalidSharpening("sharpening.ess_threshold", "sharpening.ess_threshold must be in [0, 1]")
    if not 0.0 < config.keep_percentile <= 100.0:
        raise InvalidSharpening(
            "sharpening.keep_percentile", "sharpening.keep_percentile must be in (0, 100]"
        )
    if config.confidence_top_k > MAX_TOP_LOGPROBS:
        raise InvalidSharpening(
            "sharpening.confidence_top_k",
            f"sharpening.confidence_top_k must be at most {MAX_TOP_LOGPROBS}",
        )


def check_against_sampling(config: SharpeningConfig, request: SamplingFields) -> None:
    """400 where the sampling fields ask what the strategy cannot give: more choices than
    candidates, candidate events without a stream, or sampling settings a proposal strategy owns."""
    if request.n > config.candidate_count:
        raise InvalidRequest(
            f"n={request.n} choices need at least that many candidates, but strategy "
            f"{config.strategy!r} draws {config.candidate_count}; raise sharpening.n or lower n",
            param="n",
        )
    if config.stream_candidates and not request.stream:
        raise InvalidRequest(
            "sharpening.stream_candidates streams events; it needs stream: true",
            param="sharpening.stream_candidates",
        )
    if config.strategy in PROPOSAL_STRATEGIES:
        check_proposal_fields(request, config.strategy)


def check_proposal_fields(request: SamplingFields, strategy: str) -> None:
    """smc and mcmc sample the unmodified model at temperature 1/alpha: no other sampling fields."""
    changed = {
        "temperature": request.temperature is not None,
        "top_p": request.top_p not in (None, 1.0),
        "top_k": request.top_k not in (None, 0, -1),
        "presence_penalty": request.presence_penalty != 0.0,
        "frequency_penalty": request.frequency_penalty != 0.0,
    }
    for name, given in changed.items():
        if given:
            raise InvalidRequest(
                f"strategy {strategy!r} draws from the model itself at temperature 1/alpha "
                f"(its proposal); leave {name} unset",
                param=name,
            )


def sampling_temperature(config: SharpeningConfig, requested: float | None, candidates_at: float) -> float:
    """The request's temperature; unsent, `candidates_at` where a strategy keeps the most likely
    candidate (its greedy candidate aside), 1.0 where a strategy claims the model's distribution."""
    if requested is not None:
        return requested
    return candidates_at if config.strategy in MAXIMISING_STRATEGIES else 1.0


def one_decode_at_temperature_zero(
    config: SharpeningConfig, temperature: float, choices: int
) -> SharpeningConfig:
    """At temperature 0 every candidate is the same greedy decode: with one choice asked, draw one."""
    if temperature == 0.0 and choices == 1 and config.strategy in ONE_AT_TEMPERATURE_ZERO:
        return replace(config, n=1, adaptive=False)
    return config


def generation_config_temperature(model_dir: str | Path | None) -> float | None:
    """The `temperature` a model directory's generation_config.json sets, if any."""
    if model_dir is None:
        return None
    try:
        config = json.loads((Path(model_dir) / "generation_config.json").read_text())
    except (OSError, ValueError):
        return None
    temperature = config.get("temperature") if isinstance(config, dict) else None
    if isinstance(temperature, int | float) and 0.0 <= temperature <= 2.0:
        return float(temperature)
    return None


def candidate_temperature(settings: Settings) -> float:
    """--candidate-temperature, else the model's generation_config.json, else the fallback."""
    if settings.candidate_temperature is not None:
        return settings.candidate_temperature
    found = generation_config_temperature(settings.model or settings.tokenizer)
    return FALLBACK_CANDIDATE_TEMPERATURE if found is None else found
