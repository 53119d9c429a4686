"""The LoRA adapters a server serves: those of --lora, plus those loaded and unloaded while it serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from server.adapter_checks import AdapterError, model_fingerprint, parse_lora_spec, validate_adapter
from server.config import Settings
from server.engines.base import Engine, EngineInputError
from server.errors import InvalidRequest, ModelNotFound

logger = logging.getLogger(__name__)


class LoadAdapterRequest(BaseModel):
    """POST /v1/load_lora_adapter (vLLM's body): serve the adapter at `lora_path` as `lora_name`."""

    model_config = ConfigDict(extra="ignore", strict=True)

    lora_name: str = Field(..., min_length=1, max_length=200, pattern=r"^[\w.\-]+$",
                           description="The model id requests will name.")
    lora_path: str = Field(..., min_length=1, max_length=4096,
                           description="The adapter's directory, on the server's file system.")


class UnloadAdapterRequest(BaseModel):
    """POST /v1/unload_lora_adapter (vLLM's body)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    lora_name: str = Field(..., min_length=1, max_length=200)


class AdapterRegistry:
    """Served adapter names; loading validates the adapter against the base model first."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.startup = tuple(parse_lora_spec(spec)[0] for spec in settings.lora)
        self.loaded: list[str] = []
        self._lock = asyncio.Lock()
        self._fingerprint: str | None = None

    def __iter__(self) -> Iterator[str]:
        return iter((*self.startup, *self.loaded))

    def __contains__(self, name: object) -> bool:
        return name in self.startup or name in self.loaded

    def _check_enabled(self) -> None:
        """400 in upstream mode, or when the server was started without adapter slots."""
        if self.settings.upstreams:
            raise InvalidRequest("upstream mode cannot load or unload adapters: the upstream servers "
                                 "load their own", code="upstream_mode")
        if not self.settings.adapter_slots:
            raise InvalidRequest("this server loads no adapters at run time; start it with --adapter-slots N",
                                 code="adapters_disabled")

    async def load(self, body: LoadAdapterRequest) -> None:
        """Validate the adapter (LoRA, rank, bias, trained on this base model) and load it into the engine."""
        self._check_enabled()
        name, path = body.lora_name, Path(body.lora_path).expanduser()
        async with self._lock:
            if name in self or name in (self.engine.model_name, self.settings.model):
                raise InvalidRequest(f"{name!r} is already served; unload it or pick another name",
                                     param="lora_name")
            try:
                await asyncio.to_thread(self._validate, name, path)
                await self.engine.load_adapter(name, str(path))
            except (AdapterError, EngineInputError) as exc:
                raise InvalidRequest(str(exc), param="lora_path") from exc
            self.loaded.append(name)
        logger.info("adapter %r loaded from %s", name, path)

    def _validate(self, name: str, path: Path) -> None:
        """AdapterError unless vLLM can serve the adapter at `path` on this server's base model."""
        from server.embedded import prepare_embedded_model

        base = Path(self.settings.model) if self.settings.model else prepare_embedded_model()
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(base)
        info = validate_adapter(name, path, base, self._fingerprint)
        if info.rank > self.settings.max_lora_rank:
            raise AdapterError(f"adapter {name!r} has rank {info.rank}; this server loads ranks up to "
                               f"--max-lora-rank {self.settings.max_lora_rank}")

    async def unload(self, body: UnloadAdapterRequest) -> None:
        """Stop serving an adapter loaded at run time; 404 for a name not served."""
        self._check_enabled()
        name = body.lora_name
        async with self._lock:
            if name in self.startup:
                raise InvalidRequest(f"{name!r} was given with --lora at start; only adapters loaded at run "
                                     "time can be unloaded", param="lora_name")
            if name not in self.loaded:
                raise ModelNotFound(f"no adapter {name!r} is loaded", param="lora_name",
                                    code="model_not_found")
            self.loaded.remove(name)  # new requests for it are 404s from now on
            try:
                await self.engine.unload_adapter(name)
            except EngineInputError as exc:
                raise InvalidRequest(str(exc), param="lora_name") from exc
        logger.info("adapter %r unloaded", name)
