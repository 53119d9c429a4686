"""The field rule: every OpenAI request field is honoured, a documented no-op, or refused with a 400.

One table per endpoint. A test derives the field list from the installed `openai` SDK and checks it
against these tables, so a field the SDK adds fails the test until someone decides here.
Honoured fields are declared on the request models; every other field lands in the model's extras,
where `refuse_unsupported` turns a refused field with a non-default value into a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from server.errors import InvalidRequest


class Treatment(StrEnum):
    """What the server does with a request field."""

    HONOURED = "honoured"
    NO_OP = "no-op"
    REFUSED = "refused"


@dataclass(frozen=True)
class FieldRule:
    """How one request field is treated; a refused field is fine while its value is in `accepts`."""

    treatment: Treatment
    note: str
    accepts: tuple[Any, ...] = (None,)


def honoured(note: str) -> FieldRule:
    """A field that works as OpenAI documents it (or as `note` says)."""
    return FieldRule(Treatment.HONOURED, note)


def no_op(note: str) -> FieldRule:
    """A field accepted and ignored because it cannot change the generated text."""
    return FieldRule(Treatment.NO_OP, note)


def refused(note: str, *accepts: Any) -> FieldRule:
    """A field that would change the answer and is not supported: a 400 unless absent or in `accepts`."""
    return FieldRule(Treatment.REFUSED, note, (None, *accepts))


SHARED_FIELDS: dict[str, FieldRule] = {
    "model": honoured("The served model or one of its --lora adapters (or absent); 404 otherwise."),
    "temperature": honoured(
        "Every candidate is drawn at this temperature; 0 is greedy. Unset: best_of_n, rejection and "
        "beam draw one greedy candidate and the rest at --candidate-temperature; others draw at 1.0."
    ),
    "top_p": honoured("Nucleus sampling of every candidate."),
    "n": honoured("The top-n distinct candidates become the choices (needs sharpening.n >= n)."),
    "max_tokens": honoured("Token limit per candidate."),
    "stop": honoured("Stop strings."),
    "seed": honoured("Candidate i draws with seed + i."),
    "stream_options": honoured("include_usage adds a usage chunk."),
    "presence_penalty": honoured("Changes sampling only; scores stay raw."),
    "frequency_penalty": honoured("Changes sampling only; scores stay raw."),
    "logit_bias": honoured("Token id -> bias in [-100, 100]; changes sampling only, scores stay raw."),
    "user": no_op("An end-user id for abuse tracking; whetstone keeps no such records."),
}

CHAT_FIELDS: dict[str, FieldRule] = SHARED_FIELDS | {
    "messages": honoured("Rendered by the chat template; tool messages and assistant tool_calls too."),
    "stream": honoured("Server-sent events; see Streaming."),
    "max_completion_tokens": honoured("Same as max_tokens; wins when both are given."),
    "logprobs": honoured("Raw log-probabilities of the chosen completion's tokens."),
    "top_logprobs": honoured("Up to 20 alternatives per token (raw log-probabilities)."),
    "response_format": honoured(
        "text, json_object and json_schema (strict or not): every candidate is constrained by the grammar."
    ),
    "tools": honoured("Function tools; rendered by the chat template."),
    "tool_choice": honoured(
        "none, required and a named function work with any model; auto needs --tool-call-parser."
    ),
    "parallel_tool_calls": honoured(
        "required and named produce one call; with auto, false keeps the first call the parser found."
    ),
    "metadata": no_op("Stored-completion tags; nothing is stored."),
    "store": no_op("Nothing is stored."),
    "service_tier": no_op("There is one tier."),
    "prediction": no_op("Predicted outputs only speed OpenAI up; the answer does not depend on them."),
    "prompt_cache_key": no_op("The prefix cache is automatic."),
    "prompt_cache_options": no_op("The prefix cache is automatic."),
    "prompt_cache_retention": no_op("The prefix cache is automatic."),
    "safety_identifier": no_op("An end-user id for abuse tracking; whetstone keeps no such records."),
    "audio": refused("audio output is not supported; only text is generated"),
    "modalities": refused('only text output is supported; send ["text"] or leave it out', ["text"]),
    "functions": refused("the deprecated functions API is not supported; use tools", []),
    "function_call": refused(
        "the deprecated functions API is not supported; use tool_choice", "none", "auto"
    ),
    "reasoning_effort": refused("the served model has no reasoning-effort control"),
    "verbosity": refused("the served model has no verbosity control"),
    "web_search_options": refused("web search is not available"),
    "moderation": refused("whetstone runs no moderation"),
}

COMPLETION_FIELDS: dict[str, FieldRule] = SHARED_FIELDS | {
    "prompt": honoured("A string, token ids, or a list of either (one choice group per prompt)."),
    "stream": honoured("Server-sent events; see Streaming."),
    "best_of": honoured("best_of_n with n=best_of and length_penalty 1 (the legacy rule)."),
    "echo": honoured("The prompt is prepended to each choice's text (and its logprobs)."),
    "logprobs": honoured("Raw log-probabilities of the top 0-20 tokens per position."),
    "suffix": refused("insertion (text after the completion) is not supported", ""),
}

# Not OpenAI's: vLLM's sampling extensions and ours, honoured on both endpoints.
EXTENSION_FIELDS: dict[str, FieldRule] = {
    "sharpening": honoured("whetstone's extension: strategy, candidates, pruning; see above."),
    "top_k": honoured("vLLM: sample from the k most likely tokens (0 or -1: all)."),
    "min_tokens": honoured("vLLM: no end-of-sequence or stop before this many tokens."),
    "repetition_penalty": honoured("vLLM: (0, 2]; changes sampling only, scores stay raw."),
    "stop_token_ids": honoured("vLLM: token ids that end a candidate (scored like the end of sequence)."),
    "ignore_eos": honoured("vLLM: keep generating past end-of-sequence up to max_tokens."),
    "structured_outputs": honoured("vLLM: one of json, regex, choice, grammar, json_object."),
    "response_format": honoured("On /v1/completions as on chat (vLLM accepts it there too)."),
}


def refuse_unsupported(extra: Mapping[str, Any] | None, rules: Mapping[str, FieldRule]) -> None:
    """400 naming the first refused field that carries a value other than its accepted defaults."""
    for name, value in (extra or {}).items():
        rule = rules.get(name)
        if rule is not None and rule.treatment is Treatment.REFUSED and value not in rule.accepts:
            raise InvalidRequest(f"{name} is not supported: {rule.note}", param=name)


def markdown_table(rules: Mapping[str, FieldRule]) -> str:
    """The rules as a Markdown table, sorted by field name (docs/api.md embeds these)."""
    rows = ["| field | treatment | notes |", "|---|---|---|"]
    rows += [f"| `{name}` | {rule.treatment} | {rule.note} |" for name, rule in sorted(rules.items())]
    return "\n".join(rows)
