"""Thin HTTP routes: validate, call the service, return JSON or server-sent events."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from server import __version__
from server.adapter_registry import LoadAdapterRequest, UnloadAdapterRequest
from server.engines import ReportsUpstreams
from server.errors import EngineUnavailable, InvalidRequest, Unauthorized
from server.jobs import GenerationJob, SharpenedResult
from server.metrics import Metrics
from server.precision import Precision
from server.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    SamplingFields,
)
from server.responses import chat_response, completion_response
from server.responses_api import (
    ResponseEvents,
    ResponseFormat,
    ResponsesRequest,
    prepare_response,
    response_body,
)
from server.service import SharpeningService
from server.streaming import ChatChunks, ChunkFormat, CompletionChunks, completion_stream, event_stream
from server.supervisor import EngineSupervisor
from server.tokenization import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    detokenize,
    tokenize,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
DISCONNECT_POLL_SECONDS = 0.1
SSE = "text/event-stream"


@dataclass(frozen=True)
class Endpoint:
    """What differs between chat and legacy completions: ids, body and chunk formats."""

    id_prefix: str
    respond: Callable[[SharpenedResult, str, str], BaseModel]
    chunks: type[ChunkFormat]


CHAT = Endpoint("chatcmpl", chat_response, ChatChunks)


def get_service(request: Request) -> SharpeningService:
    """The app's sharpening service."""
    service: SharpeningService = request.app.state.service
    return service


def require_api_key(request: Request) -> None:
    """401 unless the configured API key is presented as a bearer token."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized(
            "missing or wrong API key; send 'Authorization: Bearer <key>'", code="invalid_api_key"
        )


Service = Annotated[SharpeningService, Depends(get_service)]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed or out-of-range request"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "Unknown model"},
    429: {"model": ErrorResponse, "description": "Admission limit full; see Retry-After"},
    503: {"model": ErrorResponse, "description": "Engine not ready or dead"},
}
api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)
tokens = APIRouter(dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)
ops = APIRouter()


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so aborting its candidates) if the client goes away."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                break
        return await task
    finally:
        if not task.done():
            task.cancel()


async def answer(
    request: Request,
    service: SharpeningService,
    body: SamplingFields,
    job: GenerationJob,
    endpoint: Endpoint,
) -> Any:
    """Run a prepared job: a JSON body, or an event stream when the request asks for one."""
    request.state.strategy = job.sharpening.strategy
    if job.sharpening.stream_candidates and not body.stream:
        raise InvalidRequest(
            "sharpening.stream_candidates streams events; it needs stream: true",
            param="sharpening.stream_candidates",
        )
    service.check_ready(job)
    request_id = f"{endpoint.id_prefix}-{uuid.uuid4().hex}"
    model = service.served_name(job)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = endpoint.chunks(request_id, model, job, include_usage)
        return StreamingResponse(event_stream(service, job, request_id, chunks), media_type=SSE)
    result = await until_disconnected(request, service.run(job, request_id))
    return await json_response(endpoint.respond(result, request_id, model))


async def json_response(body: BaseModel | dict[str, Any]) -> Response:
    """Serialize in a worker thread: a body with every candidate's tokens can be megabytes."""

    def render() -> str:
        return body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)

    return Response(await asyncio.to_thread(render), media_type="application/json")


@api.post("/chat/completions", response_model=ChatCompletionResponse)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, service: Service) -> Any:
    """OpenAI chat completions, answered with the sharpened choice."""
    return await answer(request, service, body, await service.prepare_chat(body), CHAT)


@api.post("/completions", response_model=CompletionResponse)
async def create_completion(body: CompletionRequest, request: Request, service: Service) -> Any:
    """Legacy completions: each prompt sharpened on its own; echo; `best_of` is best-of-n by mean."""
    batch = await service.prepare_completion(body)
    request.state.strategy = batch.jobs[0].sharpening.strategy
    service.check_ready(*batch.jobs)
    request_id = f"cmpl-{uuid.uuid4().hex}"
    model = service.served_name(batch.jobs[0])
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = CompletionChunks(request_id, model, batch.jobs[0], include_usage)
        return StreamingResponse(completion_stream(service, batch, request_id, chunks), media_type=SSE)
    results = await until_disconnected(request, service.run_all(batch.jobs, request_id))
    return await json_response(completion_response(batch, results, request_id, model))


@api.post("/responses")
async def create_response(body: ResponsesRequest, request: Request, service: Service) -> Any:
    """The Responses API (text in, text out), sharpened like chat completions."""
    job = await prepare_response(service, body)
    request.state.strategy = job.sharpening.strategy
    service.check_ready(job)
    form = ResponseFormat(f"resp_{uuid.uuid4().hex}", service.served_name(job), body)
    if body.stream:
        events = event_stream(service, job, form.response_id, ResponseEvents(job, form))
        return StreamingResponse(events, media_type=SSE)
    result = await until_disconnected(request, service.run(job, form.response_id))
    return await json_response(response_body(result, form))


@api.get("/models", response_model=ModelList)
async def list_models(service: Service) -> ModelList:
    """The served model, then each LoRA adapter served on it."""
    names = [service.engine.model_name, *service.adapters]
    return ModelList(data=[model_card(service, name) for name in names])


@api.post("/load_lora_adapter", response_model=ModelCard)
async def load_lora_adapter(body: LoadAdapterRequest, service: Service) -> ModelCard:
    """Serve a LoRA adapter from now on, without a restart (vLLM's endpoint; needs --adapter-slots)."""
    await service.adapters.load(body)
    return model_card(service, body.lora_name)


@api.post("/unload_lora_adapter", response_model=ModelCard)
async def unload_lora_adapter(body: UnloadAdapterRequest, service: Service) -> ModelCard:
    """Stop serving an adapter loaded at run time; running requests that use it finish."""
    card = model_card(service, body.lora_name)
    await service.adapters.unload(body)
    return card


@api.get("/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, service: Service) -> ModelCard:
    """A served model or adapter by its id; any other id is a 404."""
    service.check_model(model_id)
    return model_card(service, model_id if model_id in service.adapters else service.engine.model_name)


def model_card(service: SharpeningService, name: str) -> ModelCard:
    """The card of the served model or of one of its adapters."""
    engine = service.engine
    parent = engine.model_name if name in service.adapters else None
    return ModelCard(id=name, max_model_len=engine.max_model_len, parent=parent)


@tokens.post("/tokenize", response_model=TokenizeResponse)
async def tokenize_text(body: TokenizeRequest, service: Service) -> TokenizeResponse:
    """Token ids of a prompt or a chat conversation (vLLM's /tokenize)."""
    return await tokenize(service, body)


@tokens.post("/detokenize", response_model=DetokenizeResponse)
async def detokenize_ids(body: DetokenizeRequest, service: Service) -> DetokenizeResponse:
    """The text of some token ids (vLLM's /detokenize)."""
    return await detokenize(service, body)


@ops.get("/health", responses={503: ERROR_RESPONSES[503]})
async def health(request: Request, service: Service) -> JSONResponse:
    """200 while the engine serves, 503 with the reason otherwise; in upstream mode, each upstream's state."""
    engine = service.engine
    detail: dict[str, Any] = {}
    if isinstance(engine, ReportsUpstreams):
        detail["upstreams"] = [asdict(u) for u in engine.upstream_status()]
    if not engine.is_healthy():
        supervisor: EngineSupervisor = request.app.state.supervisor
        upstreams = f"; upstreams: {detail['upstreams']}" if detail else ""
        raise EngineUnavailable(supervisor.describe() + upstreams, code=f"engine_{supervisor.state}")
    precision: Precision = request.app.state.precision
    scores = {"dtype": precision.dtype, "dtype_reason": precision.reason,
              "tie_tolerance": request.app.state.settings.tie_tolerance}
    return JSONResponse({"status": "ok"} | scores | detail)


@ops.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics of this app."""
    registry: Metrics = request.app.state.metrics
    return PlainTextResponse(registry.render(), media_type=CONTENT_TYPE_LATEST)


@ops.get("/version")
async def version(service: Service) -> dict[str, str]:
    """Server version and the served model."""
    return {"version": __version__, "model": service.engine.model_name}
