"""The request bodies of chat and legacy completions, with the `sharpening` extension: their field bounds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.sharpening.config import StrategyName


class SharpeningParams(BaseModel):
    """The request's `sharpening` object; absent fields take the server's defaults."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    strategy: StrategyName | None = Field(
        None, description="best_of_n, rejection, beam, power, majority, smc, mcmc, confidence or none."
    )
    n: int | None = Field(None, ge=1, description="Candidates to draw.")
    length_penalty: float | None = Field(
        None, ge=0.0, le=1.0, description="score = logprob_sum / num_tokens ** length_penalty."
    )
    prune: bool | None = Field(None, description="Abort candidates that can no longer win (exact).")
    threshold: float | None = Field(None, description="rejection: accept the first score >= threshold.")
    alpha: float | None = Field(None, ge=1.0, description="power, smc, mcmc: sample from pi^alpha / Z.")
    answer_pattern: str | None = Field(
        None, description="majority, confidence: regex, group 1 is the answer."
    )
    checkpoint_tokens: int | None = Field(
        None, ge=1, description="smc: tokens between checkpoints (32); beam: tokens per round (16)."
    )
    beam_width: int | None = Field(None, ge=1, description="beam: prefixes kept after each round.")
    greedy_candidate: bool | None = Field(
        None,
        description="best_of_n, rejection, beam: draw the first candidate (beam: each beam's first "
        "child) greedily. Default: on when the request sends no temperature.",
    )
    ess_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="smc: resample when the ESS is below this fraction of n."
    )
    blocks: int | None = Field(None, ge=1, description="mcmc: blocks max_tokens is grown in.")
    mh_steps: int | None = Field(None, ge=0, description="mcmc: Metropolis-Hastings steps per block.")
    warmup: int | None = Field(None, ge=1, description="confidence: warm-up traces that set the threshold.")
    confidence_top_k: int | None = Field(
        None, ge=1, le=20, description="confidence: top log-probabilities per token confidence."
    )
    window: int | None = Field(None, ge=1, description="confidence: sliding window, in tokens.")
    keep_percentile: float | None = Field(
        None, gt=0.0, le=100.0, description="confidence: % of warm-up traces the threshold keeps."
    )
    return_candidates: bool = Field(False, description="Include every candidate in the response.")
    seed: int | None = Field(None, description="Candidate i uses seed + i.")
    stream_candidates: bool = Field(
        False, description="With stream: true, also stream every candidate's progress (event: candidate)."
    )
    max_total_tokens: int | None = Field(
        None,
        ge=1,
        description="Most tokens to generate over all candidates; when spent, the answer comes from "
        "what was drawn (stopped_by: budget).",
    )
    adaptive: bool | None = Field(
        None,
        description="best_of_n, majority, confidence: draw in growing waves (n is the cap) and stop "
        "once more candidates are unlikely to change the answer.",
    )
    certainty: float | None = Field(
        None, ge=0.5, lt=1.0, description="adaptive majority/confidence: stop once the posterior "
        "probability that the leading answer still leads when the cap is reached is at least this.",
    )
    load: Literal["spare", "wait"] | None = Field(
        None,
        description="best_of_n, rejection, majority: 'spare' draws the extra candidates only on the "
        "engine's spare capacity (they may be cut: stopped_by load or deadline); 'wait' draws every one "
        "whatever the load. Default: the server's --load-policy when the request sends no `sharpening` "
        "object, else 'wait'.",
    )


class TextPart(BaseModel):
    """A text part of a message's content list."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    """The function a tool call invokes; `arguments` is a JSON object as a string."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    name: str
    arguments: str


class ToolCall(BaseModel):
    """One tool call of an assistant message (OpenAI's format)."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One message of a chat conversation."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's content as plain text."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's stream_options."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    """response_format.json_schema: the schema the answer must follow."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, populate_by_name=True)

    name: str = Field(..., max_length=64)
    description: str | None = None
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """OpenAI's response_format: plain text, any JSON object, or JSON following a schema."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StructuredOutputs(BaseModel):
    """vLLM's `structured_outputs` extension: exactly one constraint on the generated text."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    json_: dict[str, Any] | str | None = Field(None, alias="json", description="A JSON schema.")
    regex: str | None = Field(None, description="A regular expression the whole answer matches.")
    choice: list[str] | None = Field(None, min_length=1, description="The answer is one of these.")
    grammar: str | None = Field(None, description="A context-free grammar (EBNF/GBNF or Lark).")
    json_object: bool | None = Field(None, description="Any JSON object.")


class SamplingFields(BaseModel):
    """Sampling fields shared by chat and legacy completions."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    model: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)
    n: int = Field(1, ge=1, description="Distinct top candidates to return as choices.")
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    min_tokens: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0)
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    sharpening: SharpeningParams | None = None

    def stop_list(self) -> tuple[str, ...]:
        """Stop strings as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class FunctionDefinition(BaseModel):
    """A function the model may call; `parameters` is its arguments' JSON schema."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(BaseModel):
    """One entry of `tools`."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(BaseModel):
    """A function named by tool_choice."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    name: str


class NamedToolChoice(BaseModel):
    """tool_choice naming one function the model must call."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    type: Literal["function"]
    function: FunctionName


class ChatCompletionRequest(SamplingFields):
    """POST /v1/chat/completions; fields not declared here are checked against requests/fields.py."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(SamplingFields):
    """POST /v1/completions (legacy); fields not declared here are checked against requests/fields.py."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    prompt: str | list[int] | list[str] | list[list[int]] = Field(
        ..., description="One prompt (text or token ids) or a list of prompts, each completed on its own."
    )
    max_tokens: int | None = Field(None, ge=0, description="0 with echo scores the prompt only.")
    best_of: int | None = Field(None, ge=1)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
