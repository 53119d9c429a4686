"""POST /tokenize and /detokenize, shaped as vLLM's server has them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from server.endpoints.common import Preparer, Service, guarded_router
from server.errors import InvalidRequest
from server.requests.conversation import chat_messages
from server.requests.openai import ChatCompletionRequest, ChatMessage
from server.service import SharpeningService

router = guarded_router()
# vLLM options for chat rendering that whetstone does not offer: set, they are a 400.
REFUSED = ("chat_template", "chat_template_kwargs", "tools", "mm_processor_kwargs", "media_io_kwargs")


class TokenizeRequest(BaseModel):
    """POST /tokenize: a `prompt`, or chat `messages` rendered by the model's chat template."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    add_special_tokens: bool | None = Field(
        None, description="Add the tokenizer's special tokens (default: true for prompt, false for messages)."
    )
    add_generation_prompt: bool = Field(True, description="messages: end ready for the assistant's reply.")
    continue_final_message: bool = False
    return_token_strs: bool = Field(False, description="Also return each token's vocabulary string.")


class TokenizeResponse(BaseModel):
    """The token ids, their count and the model's context length."""

    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(BaseModel):
    """POST /detokenize."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None
    tokens: list[Annotated[int, Field(ge=0)]] = Field(..., description="Token ids to turn back into text.")


class DetokenizeResponse(BaseModel):
    """The text of the token ids."""

    prompt: str


async def tokenize_ids(service: SharpeningService, request: TokenizeRequest) -> list[int]:
    """Token ids of the request's prompt or messages."""
    engine = service.engine
    if request.messages is None:
        if request.prompt is None:
            raise InvalidRequest("send a prompt or messages to tokenize", param="prompt")
        return await engine.encode(request.prompt, add_special_tokens=request.add_special_tokens is not False)
    if request.prompt is not None:
        raise InvalidRequest("send a prompt or messages, not both", param="prompt")
    if request.add_special_tokens:
        raise InvalidRequest(
            "add_special_tokens with messages is not supported: the chat template adds them",
            param="add_special_tokens",
        )
    if request.continue_final_message:
        raise InvalidRequest("continue_final_message is not supported", param="continue_final_message")
    messages = chat_messages(ChatCompletionRequest(messages=request.messages))
    try:
        return await engine.encode_chat(messages, add_generation_prompt=request.add_generation_prompt)
    except Exception as exc:  # the model's chat template raises on conversations it refuses
        raise InvalidRequest(
            f"the model's chat template rejected the messages: {exc}", param="messages"
        ) from exc


@router.post("/tokenize", response_model=TokenizeResponse)
async def tokenize_text(body: TokenizeRequest, service: Service, prepare: Preparer) -> TokenizeResponse:
    """Token ids of a prompt or a chat conversation, as vLLM's /tokenize gives them (the engine
    tokenizes off the event loop)."""
    prepare.check_model(body.model)
    for name in REFUSED:
        if (body.model_extra or {}).get(name) is not None:
            raise InvalidRequest(f"{name} is not supported; the model's chat template is used", param=name)
    ids = await tokenize_ids(service, body)
    strings = await service.engine.token_strings(ids) if body.return_token_strs else None
    return TokenizeResponse(
        count=len(ids), max_model_len=service.max_model_len, tokens=ids, token_strs=strings
    )


@router.post("/detokenize", response_model=DetokenizeResponse)
async def detokenize_ids(body: DetokenizeRequest, service: Service, prepare: Preparer) -> DetokenizeResponse:
    """The text of some token ids (vLLM's /detokenize); ids outside the vocabulary are a 400."""
    prepare.check_model(body.model)
    try:
        text = await service.engine.decode(body.tokens)
    except Exception as exc:  # the tokenizer raises on ids it does not know
        raise InvalidRequest(f"tokens could not be decoded: {exc}", param="tokens") from exc
    return DetokenizeResponse(prompt=text)
