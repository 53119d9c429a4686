"""Structured outputs: a request's `response_format` or `structured_outputs` as one output constraint."""

from __future__ import annotations

from dataclasses import dataclass

from server.engines import OutputConstraint
from server.errors import InvalidRequest
from server.protocol import SamplingFields


@dataclass(frozen=True)
class RequestedConstraint:
    """An output constraint and the request field it came from (named by errors)."""

    constraint: OutputConstraint
    param: str


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
