"""A request's output constraint and logit bias, in engine terms.

`response_format`, `structured_outputs` or a forced tool call become one constraint on every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.engines import OutputConstraint
from server.errors import InvalidRequest
from server.requests.openai import SamplingFields
from server.tools import ToolPlan


@dataclass(frozen=True)
class RequestedConstraint:
    """An output constraint and the request field it came from (named by errors)."""

    constraint: OutputConstraint
    param: str


def output_constraint(request: SamplingFields, tools: ToolPlan | None) -> RequestedConstraint | None:
    """The one constraint on every candidate: from the tool mode or from the requested format."""
    requested = requested_constraint(request)
    if tools is None or (forced := tools.constraint()) is None:
        return requested
    if requested is not None:
        raise InvalidRequest(
            f"{requested.param} cannot be combined with tool_choice {tools.mode!r}: "
            "the answer is a tool call",
            param=requested.param,
        )
    return RequestedConstraint(forced, "tools")


def token_biases(logit_bias: dict[str, float] | None) -> dict[int, float]:
    """logit_bias with its token-id keys as ints; 400 for a key that is not a token id."""
    biases: dict[int, float] = {}
    for key, bias in (logit_bias or {}).items():
        if not key.lstrip("-").isdigit() or int(key) < 0:
            raise InvalidRequest(f"logit_bias keys are token ids; {key!r} is not one", param="logit_bias")
        biases[int(key)] = bias
    return biases


def requested_constraint(request: SamplingFields) -> RequestedConstraint | None:
    """The constraint `response_format` or `structured_outputs` asks for; None for free text."""
    from_format = response_format_constraint(request)
    from_extension = structured_outputs_constraint(request)
    if from_format and from_extension:
        raise InvalidRequest(
            "response_format and structured_outputs each constrain the answer; send only one",
            param="structured_outputs",
        )
    return from_format or from_extension


def response_format_constraint(request: SamplingFields) -> RequestedConstraint | None:
    """OpenAI's response_format: json_object is any JSON object, json_schema follows the schema."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return RequestedConstraint(OutputConstraint("json_object"), "response_format")
    if fmt.json_schema is None:
        raise InvalidRequest(
            "response_format of type json_schema needs a json_schema object with the schema",
            param="response_format.json_schema",
        )
    # `strict` or not, the schema is enforced by the grammar: the answer always follows it.
    return RequestedConstraint(
        OutputConstraint("json", fmt.json_schema.json_schema), "response_format.json_schema.schema"
    )


def structured_outputs_constraint(request: SamplingFields) -> RequestedConstraint | None:
    """vLLM's structured_outputs extension: exactly one of json, regex, choice, grammar, json_object."""
    given = request.structured_outputs
    if given is None:
        return None
    kinds: list[OutputConstraint] = []
    if given.json_ is not None:
        kinds.append(OutputConstraint("json", given.json_))
    if given.regex is not None:
        kinds.append(OutputConstraint("regex", given.regex))
    if given.choice is not None:
        kinds.append(OutputConstraint("choice", list(given.choice)))
    if given.grammar is not None:
        kinds.append(OutputConstraint("grammar", given.grammar))
    if given.json_object:
        kinds.append(OutputConstraint("json_object"))
    if len(kinds) != 1:
        raise InvalidRequest(
            "structured_outputs needs exactly one of json, regex, choice, grammar, json_object "
            f"(got {len(kinds)})",
            param="structured_outputs",
        )
    (constraint,) = kinds
    return RequestedConstraint(constraint, f"structured_outputs.{constraint.kind}")
