"""POST /v1/chat/completions: OpenAI chat completions, answered with the sharpened choice."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from server.endpoints.common import Exchange, Preparer, Service, guarded_router, include_usage, json_response
from server.formats.bodies import chat_response
from server.formats.chunks import ChatChunks
from server.formats.models import ChatCompletionResponse
from server.formats.streams import event_stream
from server.requests.openai import ChatCompletionRequest

router = guarded_router("/v1")


@router.post("/chat/completions", response_model=ChatCompletionResponse)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: Service, prepare: Preparer
) -> Any:
    """OpenAI chat completions, answered with the sharpened choice."""
    job = await prepare.chat(body)
    exchange = Exchange(request, service, [job], "chatcmpl-")
    if body.stream:
        chunks = ChatChunks(exchange.id, exchange.model, job, include_usage(body))
        return exchange.stream(event_stream(service, job, exchange.id, chunks))
    (result,) = await exchange.results()
    return await json_response(chat_response(result, exchange.id, exchange.model))
