"""POST /v1/responses: the Responses API (text in, text out), sharpened like chat completions."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from server.endpoints.common import Exchange, Preparer, Service, guarded_router, json_response
from server.formats.responses import ResponseEnvelope, ResponseEvents, response_body
from server.formats.streams import event_stream
from server.requests.responses import ResponsesRequest

router = guarded_router("/v1")


@router.post("/responses")
async def create_response(
    body: ResponsesRequest, request: Request, service: Service, prepare: Preparer
) -> Any:
    """The Responses API (text in, text out), sharpened like chat completions."""
    job = await prepare.response(body)
    exchange = Exchange(request, service, [job], "resp_")
    envelope = ResponseEnvelope(exchange.id, exchange.model, body)
    if body.stream:
        return exchange.stream(event_stream(service, job, exchange.id, ResponseEvents(job, envelope)))
    (result,) = await exchange.results()
    return await json_response(response_body(result, envelope))
