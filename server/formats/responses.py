"""The Responses API's output: the response object and its typed stream events."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from server.errors import ServerError
from server.formats.bodies import usage
from server.formats.chunks import ChunkFormat
from server.formats.summary import summary
from server.jobs import GenerationJob, SharpenedResult
from server.requests.responses import ResponsesRequest
from server.sharpening import TokenLogprob


def output_message(item_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant's message output item."""
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": content}


class ResponseEnvelope:
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


def response_body(result: SharpenedResult, envelope: ResponseEnvelope) -> dict[str, Any]:
    """The response to a non-streaming request."""
    selected = result.choices[0]
    return envelope.finished(selected.text, selected.finish_reason, result)


class ResponseEvents(ChunkFormat):
    """The Responses API's typed stream events, numbered; no [DONE] at the end."""

    terminator = None

    def __init__(self, job: GenerationJob, envelope: ResponseEnvelope) -> None:
        super().__init__(envelope.response_id, envelope.model, job, include_usage=True)
        self.envelope = envelope
        self.sequence = 0
        self.text = ""

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """One event, with the next sequence number."""
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1} | fields

    def place(self) -> dict[str, Any]:
        """Where the one text part sits in the output."""
        return {"item_id": self.envelope.item_id, "output_index": 0, "content_index": 0}

    def opening(self, index: int) -> Iterator[dict[str, Any]]:
        """The response is created and in progress; its message and text part are added."""
        pending = self.envelope.body("in_progress", [])
        yield self.event("response.created", response=pending)
        yield self.event("response.in_progress", response=pending)
        item = output_message(self.envelope.item_id, "", "in_progress") | {"content": []}
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
        final = self.envelope.finished(self.text, result.choices[0].finish_reason, result)
        message = final["output"][0]
        yield self.event("response.output_text.done", **self.place(), text=self.text, logprobs=[])
        yield self.event("response.content_part.done", **self.place(), part=message["content"][0])
        yield self.event("response.output_item.done", output_index=0, item=message)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield self.event(kind, response=final)

    def error(self, exc: ServerError) -> dict[str, Any]:
        """An `error` event."""
        return self.event("error", code=exc.code or exc.error_type, message=exc.message, param=exc.param)
