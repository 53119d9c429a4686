"""The Responses API (POST /v1/responses): text in, text out, sharpened like chat completions."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.errors import APIError, InvalidRequest
from server.jobs import GenerationJob, SharpenedResult
from server.protocol import ChatCompletionRequest, ChatMessage, SharpeningParams, TextPart
from server.responses import summary, usage
from server.service import SharpeningService
from server.sharpening import TokenLogprob
from server.streaming import ChunkFormat

# Fields that would change the answer or promise something whetstone does not do: set, they are a 400.
REFUSED = {
    "tools": "tool calling is not offered on /v1/responses; use /v1/chat/completions",
    "tool_choice": "tool calling is not offered on /v1/responses; use /v1/chat/completions",
    "previous_response_id": "whetstone keeps no responses; send the whole conversation as input",
    "conversation": "whetstone keeps no conversations; send the whole conversation as input",
    "prompt": "stored prompt templates are not supported; send the text as input",
    "background": "background responses are not supported",
    "reasoning": "reasoning options are not supported by this model",
    "include": "extra output items are not supported",
    "top_logprobs": "log-probabilities are not offered on /v1/responses; use /v1/chat/completions",
    "max_tool_calls": "tool calling is not offered on /v1/responses",
    "context_management": "context management is not supported",
}
# Chat-completions fields sent here by mistake would each change the answer: refused, with the
# Responses API's own name where it has one.
CHAT_ONLY = {
    "messages": "send the conversation as input",
    "max_tokens": "use max_output_tokens",
    "max_completion_tokens": "use max_output_tokens",
    "response_format": "structured output is not offered on /v1/responses; use /v1/chat/completions",
    "n": "one answer per response; use /v1/chat/completions for n",
    "seed": "not offered on /v1/responses; use /v1/chat/completions for seeded sampling",
    "stop": "not offered on /v1/responses; use /v1/chat/completions for stop strings",
}
# Sharpening runs the chat machinery: its parameter names become the Responses API's.
CHAT_PARAMS = {"messages": "input", "max_tokens": "max_output_tokens"}


class InputText(BaseModel):
    """A text part of an input message."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["input_text", "output_text", "text"]
    text: str


class InputMessage(BaseModel):
    """One message of the input conversation."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]

    def chat(self) -> ChatMessage:
        """The message as a chat message."""
        if isinstance(self.content, str):
            return ChatMessage(role=self.role, content=self.content)
        return ChatMessage(role=self.role, content=[TextPart(type="text", text=p.text) for p in self.content])


class TextFormat(BaseModel):
    """`text.format`: only plain text is produced here."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["text"] = Field("text", description="Only 'text'; structured outputs live on chat.")


class TextConfig(BaseModel):
    """The request's `text` options."""

    model_config = ConfigDict(extra="ignore", strict=True)

    format: TextFormat = Field(default_factory=TextFormat)


class ResponsesRequest(BaseModel):
    """POST /v1/responses."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    model: str | None = None
    input: str | list[InputMessage] = Field(..., min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    store: bool | None = None
    truncation: Literal["disabled"] | None = None
    text: TextConfig | None = None
    sharpening: SharpeningParams | None = None

    def refusals(self) -> Iterator[InvalidRequest]:
        """A 400 for every field set here that whetstone cannot honour."""
        if self.store:
            yield InvalidRequest("store: whetstone keeps no responses; send store false", param="store")
        for name, why in REFUSED.items():
            if (self.model_extra or {}).get(name) not in (None, [], False):
                yield InvalidRequest(f"{name}: {why}", param=name)
        for name, instead in CHAT_ONLY.items():
            if name in (self.model_extra or {}):
                yield InvalidRequest(f"{name} is a chat-completions field: {instead}", param=name)

    def as_chat(self) -> ChatCompletionRequest:
        """The same request as a chat completion: instructions first, as a system message."""
        messages = [ChatMessage(role="system", content=self.instructions)] if self.instructions else []
        if isinstance(self.input, str):
            messages.append(ChatMessage(role="user", content=self.input))
        else:
            messages += [m.chat() for m in self.input]
        return ChatCompletionRequest(
            model=self.model,
            messages=messages,
            max_tokens=self.max_output_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            sharpening=self.sharpening,
        )


async def prepare_response(service: SharpeningService, request: ResponsesRequest) -> GenerationJob:
    """Check a Responses request and prepare it as the chat job that sharpening runs."""
    for refusal in request.refusals():
        raise refusal
    try:
        return await service.prepare_chat(request.as_chat())
    except InvalidRequest as exc:
        raise renamed(exc) from None


def renamed(error: InvalidRequest) -> InvalidRequest:
    """A chat error, its parameter named as the Responses API names it."""
    if error.param is not None:
        head, _, rest = error.param.partition(".")
        error.param = ".".join(filter(None, [CHAT_PARAMS.get(head, head), rest]))
        error.message = error.message.replace("max_tokens", "max_output_tokens")
    return error


def output_message(item_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant's message output item."""
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": content}


class ResponseFormat:
    """What a Responses body says besides its output: ids, the echoed request, usage, sharpening."""

    def __init__(self, response_id: str, model: str, request: ResponsesRequest) -> None:
        self.response_id = response_id
        self.item_id = f"msg_{response_id.removeprefix('resp_')}"
        self.model = model
        self.request = request
        self.created_at = int(time.time())

    def body(self, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """A response object."""
        request = self.request
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": output,
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "parallel_tool_calls": False,
            "tool_choice": "none",
            "tools": [],
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": False,
            "error": None,
            "incomplete_details": None,
            "metadata": (request.model_extra or {}).get("metadata"),
        } | extra

    def finished(self, text: str, finish_reason: str | None, result: SharpenedResult) -> dict[str, Any]:
        """The final response object: `incomplete` when cut off by max_output_tokens."""
        status = "incomplete" if finish_reason == "length" else "completed"
        used = usage(result)
        return self.body(
            status,
            [output_message(self.item_id, text, status)],
            incomplete_details={"reason": "max_output_tokens"} if status == "incomplete" else None,
            usage={
                "input_tokens": used.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": used.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": used.total_tokens,
            },
            sharpening=summary(result).model_dump(exclude_none=True),
        )


def response_body(result: SharpenedResult, form: ResponseFormat) -> dict[str, Any]:
    """The response to a non-streaming request."""
    selected = result.choices[0]
    return form.finished(selected.text, selected.finish_reason, result)


class ResponseEvents(ChunkFormat):
    """The Responses API's typed stream events, numbered; no [DONE] at the end."""

    terminator = None

    def __init__(self, job: GenerationJob, form: ResponseFormat) -> None:
        super().__init__(form.response_id, form.model, job, include_usage=True)
        self.form = form
        self.sequence = 0
        self.text = ""

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """One event, with the next sequence number."""
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1} | fields

    def place(self) -> dict[str, Any]:
        """Where the one text part sits in the output."""
        return {"item_id": self.form.item_id, "output_index": 0, "content_index": 0}

    def opening(self, index: int) -> Iterator[dict[str, Any]]:
        """The response is created and in progress; its message and text part are added."""
        pending = self.form.body("in_progress", [])
        yield self.event("response.created", response=pending)
        yield self.event("response.in_progress", response=pending)
        item = output_message(self.form.item_id, "", "in_progress") | {"content": []}
        yield self.event("response.output_item.added", output_index=0, item=item)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield self.event("response.content_part.added", **self.place(), part=part)

    def delta(
        self, index: int, text: str, tokens: Sequence[TokenLogprob | str], offset: int
    ) -> dict[str, Any]:
        """A piece of the output text."""
        self.text += text
        return self.event("response.output_text.delta", **self.place(), delta=text, logprobs=[])

    def closing(self, result: SharpenedResult) -> Iterator[dict[str, Any]]:
        """The text, part and message are done; the response is completed with usage and summary."""
        final = self.form.finished(self.text, result.choices[0].finish_reason, result)
        message = final["output"][0]
        yield self.event("response.output_text.done", **self.place(), text=self.text, logprobs=[])
        yield self.event("response.content_part.done", **self.place(), part=message["content"][0])
        yield self.event("response.output_item.done", output_index=0, item=message)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield self.event(kind, response=final)

    def error(self, exc: APIError) -> dict[str, Any]:
        """An `error` event."""
        return self.event("error", code=exc.code or exc.error_type, message=exc.message, param=exc.param)
