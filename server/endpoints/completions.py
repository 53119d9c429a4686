"""POST /v1/completions: legacy completions, each prompt sharpened on its own; echo; `best_of`."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from server.endpoints.common import Exchange, Preparer, Service, guarded_router, include_usage, json_response
from server.formats.bodies import completion_response
from server.formats.chunks import CompletionChunks
from server.formats.models import CompletionResponse
from server.formats.streams import completion_stream
from server.requests.openai import CompletionRequest

router = guarded_router("/v1")


@router.post("/completions", response_model=CompletionResponse)
async def create_completion(
    body: CompletionRequest, request: Request, service: Service, prepare: Preparer
) -> Any:
    """Legacy completions: each prompt sharpened on its own; echo; `best_of` is best-of-n by mean."""
    batch = await prepare.completion(body)
    exchange = Exchange(request, service, batch.jobs, "cmpl-")
    if body.stream:
        chunks = CompletionChunks(exchange.id, exchange.model, batch.jobs[0], include_usage(body))
        return exchange.stream(completion_stream(service, batch, exchange.id, chunks))
    results = await exchange.results()
    return await json_response(completion_response(batch, results, exchange.id, exchange.model))
