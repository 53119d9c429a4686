"""The Responses API's request (POST /v1/responses): what it may say, and the chat request it becomes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.errors import InvalidRequest
from server.requests.openai import ChatCompletionRequest, ChatMessage, SharpeningParams, TextPart

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
            stream=self.stream,
            sharpening=self.sharpening,
        )


def renamed(error: InvalidRequest) -> InvalidRequest:
    """A chat error, its parameter named as the Responses API names it."""
    if error.param is not None:
        head, _, rest = error.param.partition(".")
        error.param = ".".join(filter(None, [CHAT_PARAMS.get(head, head), rest]))
        error.message = error.message.replace("max_tokens", "max_output_tokens")
    return error
