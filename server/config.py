"""Settings: the one source of truth for configuration (env `WHETSTONE_*`, CLI flags, --help)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.sharpening.config import StrategyName


class Settings(BaseSettings):
    """How the whetstone server runs. Every field is a `--flag` and a `WHETSTONE_*` variable."""

    model_config = SettingsConfigDict(env_prefix="WHETSTONE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    model: str | None = Field(
        None,
        description="Local Hugging Face model directory. Default: the embedded "
        "SmolLM2-135M-Instruct, prepared once into $WHETSTONE_HOME.",
    )
    served_model_name: str | None = Field(
        None, description="Model name clients send and /v1/models lists (default: directory name)."
    )
    dtype: str = Field(
        "bfloat16", description="Weights and activations dtype (auto, bfloat16, float32, ...)."
    )
    enforce_eager: bool = Field(
        False, description="Skip torch.compile: starts in ~40 s instead of ~80-145 s, decodes ~2x slower."
    )
    kv_cache_gib: float = Field(
        2.0,
        ge=0,
        description="Memory for the KV cache in GiB; 0 means size it by --memory-fraction instead.",
    )
    memory_fraction: float = Field(
        0.9, gt=0, le=1, description="Fraction of device memory for the KV cache when --kv-cache-gib is 0."
    )
    max_model_len: int | None = Field(None, ge=16, description="Context length (default: the model's).")
    tensor_parallel_size: int = Field(
        1, ge=1, description="GPUs per pipeline stage (vLLM tensor parallelism)."
    )
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline stages (vLLM pipeline parallelism).")
    distributed_executor_backend: str | None = Field(
        None, description="vLLM executor for multi-GPU or multi-node runs, e.g. 'mp' or 'ray'."
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra vLLM AsyncEngineArgs as a JSON object, e.g. '{\"max_num_seqs\": 64}'.",
    )
    tool_call_parser: str | None = Field(
        None,
        description="vLLM tool-call parser for the model's format (e.g. 'hermes'): enables "
        "tool_choice 'auto'. 'required' and a named function work without one.",
    )
    chat_template: FilePath | None = Field(
        None, description="Jinja chat template file replacing the model's own (e.g. one that renders tools)."
    )
    seed: int = Field(0, description="Engine seed, used by candidates that have no seed of their own.")
    default_strategy: StrategyName = Field("best_of_n", description="Strategy for requests that name none.")
    default_n: int = Field(8, ge=1, description="Candidates per request when the request names none.")
    max_candidates: int = Field(64, ge=1, description="Most candidates one request may ask for.")
    default_max_tokens: int = Field(
        256, ge=1, description="Token limit per candidate when the request sets none."
    )
    max_inflight_requests: int = Field(
        64, ge=1, description="Most requests served at once; more get 429 with Retry-After."
    )
    max_inflight_candidates: int = Field(
        256, ge=1, description="Most candidates in flight at once; more get 429 with Retry-After."
    )
    max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger ones get 413."
    )
    on_engine_failure: Literal["restart", "exit"] = Field(
        "restart",
        description="When the engine dies: restart it in-process (with back-off), or exit non-zero "
        "so an outside supervisor restarts the server.",
    )
    max_engine_restarts: int = Field(
        3, ge=1, description="Most engine restarts in --engine-restart-window; one more and the server exits."
    )
    engine_restart_window: float = Field(
        600.0, gt=0, description="Seconds over which --max-engine-restarts is counted."
    )
    shutdown_timeout: int = Field(
        30,
        ge=0,
        description="On SIGTERM, seconds to let in-flight requests finish before they are aborted.",
    )
    api_key: str | None = Field(None, description="When set, /v1 routes need 'Authorization: Bearer <key>'.")
    log_level: str = Field("info", description="Log level of the server (debug, info, warning).")

    @field_validator("engine_args")
    @classmethod
    def _scores_stay_raw(cls, engine_args: dict[str, Any]) -> dict[str, Any]:
        """Scores are the model's raw log-probabilities: vLLM must not hand back processed ones."""
        mode = engine_args.get("logprobs_mode", "raw_logprobs")
        if mode != "raw_logprobs":
            raise ValueError(f"logprobs_mode {mode!r} would change every score; whetstone needs raw_logprobs")
        return engine_args
