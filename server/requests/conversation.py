"""A chat request's conversation as the plain dicts a chat template renders."""

from __future__ import annotations

import json
from typing import Any

from server.requests.openai import ChatCompletionRequest


def chat_messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The conversation as plain dicts for the chat template, tool calls and tool results included.

    Tool-call arguments are handed to the template as objects (templates render them as JSON).
    """
    messages = []
    for m in request.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text()}
        if m.name is not None:
            message["name"] = m.name
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        if m.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": c.type,
                 "function": {"name": c.function.name, "arguments": call_arguments(c.function.arguments)}}
                for c in m.tool_calls
            ]
        messages.append(message)
    return messages


def call_arguments(arguments: str) -> Any:
    """A tool call's arguments as an object when they are JSON, else the string as sent."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
