"""What every endpoint shares: the routers' guard, the parts they ask, and the one shape of a
generating endpoint: prepare the jobs -> an Exchange (ready, named, numbered) -> stream or run -> format.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from server.errors import Unauthorized
from server.formats.models import ErrorResponse
from server.jobs import GenerationJob, SharpenedResult
from server.requests.openai import SamplingFields
from server.requests.prepare import JobPreparer
from server.service import SharpeningService

T = TypeVar("T")
DISCONNECT_POLL_SECONDS = 0.1
SSE = "text/event-stream"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed or out-of-range request"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "Unknown model"},
    429: {"model": ErrorResponse, "description": "Admission limit full; see Retry-After"},
    503: {"model": ErrorResponse, "description": "Engine not ready or dead"},
}


def get_service(request: Request) -> SharpeningService:
    """The app's sharpening service (runs jobs, says what is served)."""
    service: SharpeningService = request.app.state.service
    return service


def get_preparer(request: Request) -> JobPreparer:
    """The app's job preparer (request bodies -> jobs)."""
    preparer: JobPreparer = request.app.state.preparer
    return preparer


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
Preparer = Annotated[JobPreparer, Depends(get_preparer)]


def guarded_router(prefix: str = "") -> APIRouter:
    """A router whose every route needs the API key (when one is set) and documents its errors."""
    return APIRouter(prefix=prefix, dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)


class Exchange:
    """One generating request once its jobs are prepared: admitted now or refused (503, 429),
    given its id and the model name its answer carries, then streamed or run to its results."""

    def __init__(
        self, request: Request, service: SharpeningService, jobs: Sequence[GenerationJob], id_prefix: str
    ) -> None:
        request.state.strategy = jobs[0].sharpening.strategy  # for the request metrics
        service.check_ready(*jobs)
        self.request = request
        self.service = service
        self.jobs = jobs
        self.id = f"{id_prefix}{uuid.uuid4().hex}"
        self.model = service.served_name(jobs[0])

    def stream(self, events: AsyncIterator[str]) -> StreamingResponse:
        """The events as a server-sent event response."""
        return StreamingResponse(events, media_type=SSE)

    async def results(self) -> list[SharpenedResult]:
        """Each job's result; a client that hangs up first has its candidates aborted."""
        return await until_disconnected(self.request, self.service.run_all(self.jobs, self.id))


def include_usage(body: SamplingFields) -> bool:
    """Whether a stream ends with a usage chunk (stream_options.include_usage)."""
    return bool(body.stream_options and body.stream_options.include_usage)


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


async def json_response(body: BaseModel | dict[str, Any]) -> Response:
    """Serialize in a worker thread: a body with every candidate's tokens can be megabytes."""

    def render() -> str:
        return body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)

    return Response(await asyncio.to_thread(render), media_type="application/json")
