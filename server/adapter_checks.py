"""LoRA adapters: what vLLM can serve, checked before the engine starts (pure file reading, no torch)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import InvalidRequest

# The ranks vLLM's LoRA kernels accept (`max_lora_rank`).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CARD_JSON = "card.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


class AdapterError(InvalidRequest):
    """An adapter that cannot be trained or served as asked; the message says why and what to do."""


@dataclass(frozen=True)
class AdapterInfo:
    """A validated adapter: its served name, directory and rank."""

    name: str
    path: Path
    rank: int


def check_rank(rank: int) -> int:
    """`rank` unchanged if vLLM can serve it, else AdapterError."""
    if rank not in VLLM_LORA_RANKS:
        allowed = ", ".join(map(str, VLLM_LORA_RANKS))
        raise AdapterError(f"LoRA rank {rank} cannot be served by vLLM; use one of {allowed}")
    return rank


def model_fingerprint(model_dir: Path) -> str:
    """SHA-256 over a model directory's config.json and weight files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = [model_dir / "config.json", *sorted(
        p for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()
    )]
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as data:
            while chunk := data.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def read_adapter_config(path: Path) -> dict[str, Any]:
    """The adapter's adapter_config.json, or AdapterError when it is missing or not JSON."""
    config_path = path / ADAPTER_CONFIG
    if not config_path.is_file():
        raise AdapterError(f"{path} is not a LoRA adapter: {ADAPTER_CONFIG} is missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"{config_path} must hold a JSON object")
    return config


def validate_adapter(
    name: str, path: Path, base_model_dir: Path, base_fingerprint: str | None
) -> AdapterInfo:
    """Check that vLLM can serve the adapter at `path` on the base model: LoRA, rank, bias, base model."""
    config = read_adapter_config(path)
    where = f"adapter {name!r} ({path})"
    if config.get("peft_type", "LORA") != "LORA":
        kind = config.get("peft_type")
        raise AdapterError(f"{where} is a {kind} adapter; only LoRA adapters can be served")
    if config.get("bias", "none") != "none":
        raise AdapterError(f"{where} trains biases (bias={config['bias']!r}); vLLM serves only bias 'none'")
    if config.get("use_dora"):
        raise AdapterError(f"{where} is a DoRA adapter; vLLM serves plain LoRA only")
    try:
        rank = check_rank(int(config.get("r", 0)))
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"{where}: {exc}") from exc
    if not any((path / weights).is_file() for weights in ADAPTER_WEIGHTS):
        raise AdapterError(f"{where} has no weights ({' or '.join(ADAPTER_WEIGHTS)})")
    check_base_model(where, path, config, base_model_dir, base_fingerprint)
    return AdapterInfo(name, path, rank)


def check_base_model(
    where: str, path: Path, config: dict[str, Any], base_model_dir: Path, base_fingerprint: str | None
) -> None:
    """AdapterError unless the adapter was trained on this base model.

    An adapter with a whetstone card is matched by the base model's fingerprint; any other by the
    name of `base_model_name_or_path` (its last path component) against the served model's directory.
    """
    card_path = path / CARD_JSON
    if card_path.is_file() and base_fingerprint is not None:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        trained_on = card.get("base_model_sha256")
        if trained_on and trained_on != base_fingerprint:
            raise AdapterError(
                f"{where} was trained on another base model ({card.get('base_model')}, sha256 "
                f"{trained_on[:12]}...); this server serves {base_model_dir} "
                f"(sha256 {base_fingerprint[:12]}...)"
            )
        return
    named = str(config.get("base_model_name_or_path") or "")
    if named and Path(named).name != base_model_dir.name:
        raise AdapterError(
            f"{where} was trained on {named!r}; this server serves {base_model_dir}. "
            "Serve the adapter with its own base model"
        )


def parse_lora_spec(spec: str) -> tuple[str, Path]:
    """NAME and PATH of a `--lora NAME=PATH` value."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise AdapterError(f"--lora {spec!r}: write NAME=PATH, e.g. --lora sharp=./adapters/sharp")
    return name.strip(), Path(path.strip()).expanduser()


def load_adapters(specs: list[str], base_model_dir: Path, served_name: str) -> list[AdapterInfo]:
    """Parse and validate every `--lora NAME=PATH`; names must be distinct and differ from the base model."""
    parsed = [parse_lora_spec(spec) for spec in specs]
    names = [name for name, _ in parsed]
    for name in names:
        if names.count(name) > 1 or name == served_name:
            raise AdapterError(
                f"--lora name {name!r} is used twice or is the base model's name; pick another"
            )
    fingerprint = model_fingerprint(base_model_dir) if parsed else None
    return [validate_adapter(name, path, base_model_dir, fingerprint) for name, path in parsed]


def serving_rank(adapters: list[AdapterInfo]) -> int:
    """The smallest `max_lora_rank` that serves every adapter."""
    return max((a.rank for a in adapters), default=VLLM_LORA_RANKS[0])
