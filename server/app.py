"""create_app: the FastAPI application, its lifespan and request accounting."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import __version__
from server.adapter_checks import load_adapters, serving_rank
from server.config import Settings
from server.embedded import prepare_embedded_model
from server.endpoints import ROUTERS
from server.engines import Engine, ReportsUpstreams
from server.engines.pool import UpstreamPool
from server.engines.vllm import EngineOptions, VllmEngine
from server.formats.errors import install_error_handlers
from server.limits import BodySizeLimit
from server.metrics import Metrics
from server.playground import STATIC_PATH, page, static_files
from server.precision import Precision, resolve_precision
from server.requests.prepare import JobPreparer
from server.service import SharpeningService
from server.supervisor import EngineSupervisor, RestartBudget
from server.trace_recorder import TraceWriter
from server.tracing import RequestTracer

logger = logging.getLogger(__name__)
GENERATION_PATHS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
}


def build_engine(settings: Settings) -> Engine:
    """Upstream mode when upstreams are configured, else a vLLM engine for the configured model.

    Raises AdapterError for a LoRA adapter vLLM could not serve on this model.
    """
    if settings.upstreams:
        return UpstreamPool(
            settings.upstreams,
            served_model_name=settings.served_model_name,
            tokenizer_path=settings.tokenizer or settings.model,
            health_seconds=settings.upstream_health_seconds,
            stream_interval=settings.upstream_stream_interval,
        )
    model = settings.model or str(prepare_embedded_model())
    served_name = settings.served_model_name or Path(model).name
    adapters = load_adapters(settings.lora, Path(model), served_name)
    return VllmEngine(
        EngineOptions(
            model=model,
            served_model_name=served_name,
            dtype=settings.dtype,
            enforce_eager=settings.enforce_eager,
            max_model_len=settings.max_model_len,
            kv_cache_gib=settings.kv_cache_gib or None,
            memory_fraction=settings.memory_fraction,
            seed=settings.seed,
            tensor_parallel_size=settings.tensor_parallel_size,
            pipeline_parallel_size=settings.pipeline_parallel_size,
            distributed_executor_backend=settings.distributed_executor_backend,
            tool_call_parser=settings.tool_call_parser,
            chat_template=settings.chat_template.read_text() if settings.chat_template else None,
            extra=settings.engine_args,
            adapters={a.name: str(a.path) for a in adapters},
            max_lora_rank=max(serving_rank(adapters), settings.max_lora_rank * bool(settings.adapter_slots)),
            adapter_slots=settings.adapter_slots,
        )
    )


class RequestAccounting:
    """ASGI middleware: counts generation requests by endpoint, strategy and status, times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = GENERATION_PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first_body = True

        async def send_and_observe(message: Message) -> None:
            nonlocal status, first_body
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and first_body and status == 200:
                first_body = False
                self.metrics.time_to_first_token.observe(time.perf_counter() - started)
            await send(message)

        self.metrics.inflight_requests.inc()
        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            self.metrics.inflight_requests.dec()
            strategy = scope.get("state", {}).get("strategy", "unknown")
            self.metrics.count_request(endpoint, strategy, status, time.perf_counter() - started)


def with_precision(settings: Settings) -> tuple[Settings, Precision]:
    """The settings with `auto` dtype and the default tie tolerance decided for this host; the choice."""
    precision = resolve_precision(settings.dtype, upstream=bool(settings.upstreams))
    logger.info("dtype %s (%s)", precision.dtype, precision.reason)
    tolerance = precision.tie_tolerance if settings.tie_tolerance is None else settings.tie_tolerance
    resolved = {"tie_tolerance": tolerance} | ({} if settings.upstreams else {"dtype": precision.dtype})
    return settings.model_copy(update=resolved), precision


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the engine (the real vLLM one unless given) starts in the lifespan."""
    settings, precision = with_precision(settings or Settings())
    metrics = Metrics()
    metrics.build.info({"version": __version__, "dtype": precision.dtype, "dtype_reason": precision.reason})
    the_engine: Engine = engine or build_engine(settings)
    metrics.watch_engine(the_engine.is_healthy)
    if isinstance(the_engine, ReportsUpstreams):
        metrics.watch_upstreams(the_engine.upstream_status)
    traces = None
    if settings.trace_dir:
        traces = TraceWriter(Path(settings.trace_dir), int(settings.trace_file_mib * 2**20))

    tracer = RequestTracer(settings.otlp_traces_endpoint) if settings.otlp_traces_endpoint else None

    supervisor = EngineSupervisor(
        the_engine,
        metrics,
        settings.on_engine_failure,
        RestartBudget(settings.max_engine_restarts, settings.engine_restart_window),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if traces is not None:
            traces.start()
        await the_engine.start()
        watchers = [asyncio.create_task(metrics.sample_event_loop_lag())]
        if not isinstance(the_engine, ReportsUpstreams):  # an upstream pool heals itself (health checks)
            watchers.append(asyncio.create_task(supervisor.watch()))
        try:
            yield
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await the_engine.shutdown()
            if traces is not None:
                traces.close()
            if tracer is not None:
                await asyncio.to_thread(tracer.shutdown)  # sends the spans still queued

    app = FastAPI(title="whetstone", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.precision = precision
    app.state.metrics = metrics
    app.state.supervisor = supervisor
    service = SharpeningService(the_engine, settings, metrics, traces, tracer)
    app.state.service = service
    app.state.preparer = JobPreparer(the_engine, settings, service.adapters)
    install_error_handlers(app)
    for router in (*ROUTERS, page):
        app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="static")
    app.add_middleware(RequestAccounting, metrics=metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.allowed_origins:  # outermost, so preflight requests are answered first
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
