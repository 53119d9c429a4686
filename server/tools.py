"""Tool calling: which tool mode a request asks for, its output constraint, and the reply it yields.

`required` and a named function work with any model: every candidate is constrained to JSON that
is a call (named: the function's arguments; required: {"name", "arguments"} of one of the tools).
`auto` lets the model write freely and a tool-call parser finds the calls in the chosen text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from server.engines import OutputConstraint, ParsedToolCalls
from server.errors import InvalidRequest
from server.requests.openai import ChatCompletionRequest, FunctionCall, ToolCall

ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class ToolPlan:
    """How a request's tools are used: the mode, the named function, the tools as plain dicts."""

    mode: Literal["named", "required", "auto"]
    tools: list[dict[str, Any]]
    function: str | None = None
    parallel: bool = True

    def constraint(self) -> OutputConstraint | None:
        """The JSON schema every candidate must follow (None for auto: free text)."""
        if self.mode == "auto":
            return None
        functions = [t["function"] for t in self.tools]
        if self.mode == "named":
            (chosen,) = [f for f in functions if f["name"] == self.function]
            return OutputConstraint("json", chosen.get("parameters") or ANY_OBJECT)
        calls = [
            {
                "type": "object",
                "properties": {
                    "name": {"const": f["name"]},
                    "arguments": f.get("parameters") or ANY_OBJECT,
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for f in functions
        ]
        return OutputConstraint("json", calls[0] if len(calls) == 1 else {"anyOf": calls})


@dataclass(frozen=True)
class Reply:
    """The assistant message of one choice: text, tool calls, and the finish reason to report."""

    content: str | None
    finish_reason: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)


def tool_plan(request: ChatCompletionRequest, has_parser: bool) -> ToolPlan | None:
    """The request's tool mode; None when the tools (if any) play no part in generation."""
    choice = request.tool_choice
    if not request.tools:
        if choice not in (None, "none"):
            raise InvalidRequest(
                "tool_choice needs tools; send tools or leave tool_choice out", param="tool_choice"
            )
        return None
    tools = [t.model_dump(exclude_none=True) for t in request.tools]
    parallel = request.parallel_tool_calls is not False
    if choice == "none":
        return None
    if choice == "required":
        return ToolPlan("required", tools, parallel=parallel)
    if choice is None or choice == "auto":
        if not has_parser:
            raise InvalidRequest(
                "tool_choice 'auto' (the default when tools are sent) needs a tool-call parser for "
                "this model's format: start the server with --tool-call-parser NAME (and "
                "--chat-template PATH if the model's template does not render tools), or send "
                "tool_choice 'required' or a named function, which work with any model",
                param="tool_choice",
            )
        return ToolPlan("auto", tools, parallel=parallel)
    names = [t["function"]["name"] for t in tools]
    if choice.function.name not in names:
        raise InvalidRequest(
            f"tool_choice names {choice.function.name!r}, which is not among the tools {names}",
            param="tool_choice.function.name",
        )
    return ToolPlan("named", tools, function=choice.function.name, parallel=parallel)


def new_call(name: str, arguments: str) -> ToolCall:
    """A tool call with a fresh id."""
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", function=FunctionCall(name=name, arguments=arguments))


def tool_reply(
    plan: ToolPlan,
    text: str,
    finish_reason: str | None,
    parse: Callable[[str, list[dict[str, Any]]], ParsedToolCalls],
) -> Reply:
    """The message for a chosen text; finish_reason becomes tool_calls when it holds a complete call."""
    if plan.mode == "auto":
        parsed = parse(text, plan.tools)
        calls = [new_call(name, arguments) for name, arguments in parsed.calls]
        if not plan.parallel:
            calls = calls[:1]
        content = parsed.content
    else:
        try:
            value = json.loads(text)
        except ValueError:  # cut off by max_tokens before the JSON closed
            return Reply(text, finish_reason)
        if plan.mode == "named":
            calls = [new_call(plan.function or "", json.dumps(value))]
        elif isinstance(value, dict) and {"name", "arguments"} <= value.keys():
            calls = [new_call(str(value["name"]), json.dumps(value["arguments"]))]
        else:
            calls = []
        content = None
    if not calls:
        return Reply(text, finish_reason)
    return Reply(content, "tool_calls" if finish_reason == "stop" else finish_reason, calls)
