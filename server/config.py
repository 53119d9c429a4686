"""Settings: the one source of truth for configuration (env `WHETSTONE_*`, CLI flags, --help)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, FilePath, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.adapter_checks import check_rank
from server.precision import TIE_TOLERANCE
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
        "auto",
        description="Weights and activations dtype (auto, bfloat16, float32, ...). auto: bfloat16 where "
        "the CPU (avx512_bf16 or amx_bf16) or GPU computes it natively, float32 otherwise.",
    )
    tie_tolerance: float | None = Field(
        None,
        ge=0,
        description="Candidates whose scores differ by less than this are ties, won by the lower index "
        "(the greedy candidate is 0). Default: from the dtype in use ("
        + ", ".join(f"{tol:g} for {dtype}" for dtype, tol in TIE_TOLERANCE.items())
        + "; see docs/api.md#scores).",
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
    upstreams: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="vLLM OpenAI servers to draw candidates from instead of a local engine (upstream "
        "mode); repeat the flag, or a JSON list or comma list in the variable.",
    )
    tokenizer: str | None = Field(
        None,
        description="Upstream mode: local tokenizer directory of the upstream model (needs transformers); "
        "default: the upstream's /tokenize.",
    )
    upstream_stream_interval: int = Field(
        1,
        ge=1,
        description="Upstream mode: tokens per streamed event from vLLM; more cuts whetstone's work per "
        "token, but a pruned candidate runs up to that many tokens longer.",
    )
    upstream_health_seconds: float = Field(
        5.0, gt=0, description="Upstream mode: seconds between health checks of the upstreams."
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
    candidate_temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description="Temperature of the sampled candidates of best_of_n, rejection and beam when a "
        "request sends no temperature (others draw at 1.0). Default: the model's "
        "generation_config.json temperature, else 0.4.",
    )
    greedy_candidate: bool = Field(
        True,
        description="When a request sends no temperature, best_of_n, rejection and beam draw their "
        "first candidate greedily, so the answer is never less likely than greedy decoding's.",
    )
    load_policy: Literal["spare", "wait"] = Field(
        "spare",
        description="How requests that send no `sharpening` object spend their extra candidates (all but "
        "the first, greedy one): 'spare' draws them only on the engine's spare capacity (--load-capacity), "
        "cuts them when a newer request needs the room and waits for them at most --load-deadline; "
        "'wait' always draws and waits for every one. A request chooses with sharpening.load; a request "
        "with any other `sharpening` field waits.",
    )
    load_capacity: int = Field(
        8,
        ge=1,
        description="Sequences the engine runs side by side before one more slows the others: extra "
        "candidates under 'spare' use only what the running sequences leave of this. 8 suits 2 CPU "
        "cores; a GPU takes far more (e.g. 64-256).",
    )
    load_deadline: float = Field(
        0.5,
        ge=0.0,
        description="Under 'spare', once a request's first candidate has ended, its other candidates may "
        "run this fraction of its time longer before they are cut (0: the answer is due when the first "
        "candidate ends).",
    )
    max_candidates: int = Field(64, ge=1, description="Most candidates one request may ask for.")
    max_total_tokens: int | None = Field(
        None,
        ge=1,
        description="Most tokens one request may generate over all its candidates: a request asking "
        "for more gets 400, one asking nothing runs under this budget. Unlimited when unset.",
    )
    default_adaptive: bool = Field(
        False,
        description="Draw best_of_n, majority and confidence candidates in growing waves and stop "
        "early when a request does not say (sharpening.adaptive).",
    )
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
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins whose browser pages may call the API (CORS), e.g. "
        "'https://app.example.com'; '*' allows any. Off when empty.",
    )

    lora: list[str] = Field(
        default_factory=list,
        description="Serve a LoRA adapter as an extra model: NAME=PATH (repeatable); requests with "
        "model NAME generate with it. Turns torch.compile off on CPU.",
    )
    adapter_slots: int = Field(
        0,
        ge=0,
        le=64,
        description="How many LoRA adapters can be loaded while serving (POST /v1/load_lora_adapter, "
        "behind --api-key, which it requires). Turns torch.compile off on CPU.",
    )
    max_lora_rank: int = Field(
        16, description="The largest rank of an adapter loaded while serving (vLLM's max_lora_rank)."
    )
    trace_dir: str | None = Field(
        None,
        description="Append every sharpened request (its prompt, chosen answer, score and settings) to "
        "JSONL files in this directory, for `whetstone traces` and `sharpen-sft`. Stores prompts and "
        "answers: off by default.",
    )
    trace_file_mib: float = Field(
        64.0, gt=0, description="Start a new trace file once the current one reaches this many MiB."
    )
    otlp_traces_endpoint: str | None = Field(
        None,
        description="Send OpenTelemetry traces (a span per request, a child span per candidate) to this "
        "OTLP/HTTP collector, e.g. http://collector:4318. Needs the extra whetstone[otel]. Off by default.",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, origins: Any) -> Any:
        """Origins arrive as comma-separated strings (one from the variable, one per repeated flag)."""
        if isinstance(origins, str):
            origins = [origins]
        if isinstance(origins, list):
            return [o.strip() for given in origins for o in str(given).split(",") if o.strip()]
        return origins

    @field_validator("engine_args")
    @classmethod
    def _scores_stay_raw(cls, engine_args: dict[str, Any]) -> dict[str, Any]:
        """Scores are the model's raw log-probabilities: vLLM must not hand back processed ones."""
        mode = engine_args.get("logprobs_mode", "raw_logprobs")
        if mode != "raw_logprobs":
            raise ValueError(f"logprobs_mode {mode!r} would change every score; whetstone needs raw_logprobs")
        return engine_args

    @field_validator("max_lora_rank")
    @classmethod
    def _servable_rank(cls, rank: int) -> int:
        """vLLM's LoRA kernels take only some ranks."""
        return check_rank(rank)

    @model_validator(mode="after")
    def _adapters_behind_the_key(self) -> Settings:
        """Loading adapters at run time reads server-side paths: only for holders of the API key."""
        if self.adapter_slots and not self.api_key:
            raise ValueError("--adapter-slots needs --api-key: loading adapters at run time stays behind it")
        return self

    @field_validator("upstreams", mode="before")
    @classmethod
    def _upstream_list(cls, value: Any) -> Any:
        """A JSON list or a comma-separated list of URLs."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        return value
