"""The temperature candidates are drawn at when a request sends none."""

from __future__ import annotations

import json
from pathlib import Path

from server.config import Settings

# Chosen with `make bench-frontier` (docs/sharpening.md): beside a greedy candidate, best-of-8 at
# 0.3-0.5 returned answers 4-5 nats likelier than at 0.7 and 25 likelier than at 1.0, and sooner.
FALLBACK_CANDIDATE_TEMPERATURE = 0.4


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
