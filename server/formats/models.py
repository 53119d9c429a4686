"""OpenAI-shaped response bodies: completions, models, errors."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.formats.summary import SharpeningSummary
from server.requests.openai import ToolCall


class Usage(BaseModel):
    """Token counts; completion_tokens counts every candidate's tokens."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    """The assistant's reply in a chat choice."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    """One choice of a chat completion."""

    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class GenerationResponse(BaseModel):
    """What chat and legacy completion responses share."""

    id: str
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    usage: Usage
    sharpening: SharpeningSummary


class ChatCompletionResponse(GenerationResponse):
    """Response of POST /v1/chat/completions."""

    object: Literal["chat.completion"] = "chat.completion"
    choices: list[ChatChoice]


class CompletionChoice(BaseModel):
    """One choice of a legacy completion."""

    index: int
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class CompletionResponse(GenerationResponse):
    """Response of POST /v1/completions."""

    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]


class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "whetstone"
    max_model_len: int
    parent: str | None = None  # the base model of a LoRA adapter


class ModelList(BaseModel):
    """Response of GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    """The body of an OpenAI error."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """An OpenAI error response."""

    error: ErrorDetail
