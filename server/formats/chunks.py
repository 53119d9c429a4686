"""OpenAI's streaming shapes: server-sent events, and the chunks of chat and legacy completions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from server.errors import ServerError
from server.formats.bodies import chat_logprobs, chat_replies, completion_logprobs, usage
from server.formats.errors import error_body
from server.formats.models import Usage
from server.formats.summary import SharpeningSummary, summary
from server.jobs import GenerationJob, SharpenedResult
from server.sharpening import TokenLogprob


def sse(payload: dict[str, Any] | str, event: str | None = None) -> str:
    """One server-sent event, named `event` when given."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    name = f"event: {event}\n" if event else ""
    return f"{name}data: {data}\n\n"


class ChunkFormat:
    """The chunk shapes of one endpoint; subclasses fill in the per-choice parts."""

    object_name = ""
    terminator: str | None = "[DONE]"  # the last event of every stream

    def __init__(self, request_id: str, model: str, job: GenerationJob, include_usage: bool) -> None:
        self.base = {
            "id": request_id,
            "object": self.object_name,
            "created": int(time.time()),
            "model": model,
        }
        self.job = job
        self.include_usage = include_usage

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """One chunk object."""
        return self.base | {"choices": choices} | extra

    def opening(self, index: int) -> Iterator[dict[str, Any]]:
        """The chunks that open a choice, if the format has any."""
        return iter(())

    def error(self, exc: ServerError) -> dict[str, Any]:
        """The event that reports an error mid-stream."""
        return error_body(exc).model_dump()

    def delta(self, index: int, text: str, tokens: Sequence[TokenLogprob], offset: int) -> dict[str, Any]:
        """A piece of a choice's text."""
        raise NotImplementedError

    def ending(self, index: int, finish_reason: str | None) -> dict[str, Any]:
        """The choice's last piece, carrying its finish reason."""
        raise NotImplementedError

    def finish_reasons(self, result: SharpenedResult) -> list[str | None]:
        """Each choice's finish reason."""
        return [c.finish_reason for c in result.choices]

    def closing(self, result: SharpenedResult) -> Iterator[dict[str, Any]]:
        """Finish reasons, then the summary (and usage when asked) on the last chunk."""
        endings = list(enumerate(self.finish_reasons(result)))
        return self.close(endings, summary(result), usage(result))

    def close(
        self, endings: list[tuple[int, str | None]], tail: SharpeningSummary, used: Usage
    ) -> Iterator[dict[str, Any]]:
        """Each choice's finish reason, then the summary (and usage when asked) on the last chunk."""
        last = self.chunk([self.ending(i, reason) for i, reason in endings])
        extension = tail.model_dump(exclude_none=True)
        if self.include_usage:
            yield last
            yield self.chunk([], usage=used.model_dump(), sharpening=extension)
        else:
            yield last | {"sharpening": extension}

    def whole(self, result: SharpenedResult) -> Iterator[dict[str, Any]]:
        """Every chosen completion in one piece each, then the closing chunks."""
        for i, candidate in enumerate(result.choices):
            yield from self.opening(i)
            yield self.delta(i, candidate.text, candidate.tokens, 0)
        yield from self.closing(result)


class ChatChunks(ChunkFormat):
    """chat.completion.chunk objects."""

    object_name = "chat.completion.chunk"

    def opening(self, index: int) -> Iterator[dict[str, Any]]:
        """The role announcement."""
        yield self.chunk(
            [{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        )

    def delta(self, index: int, text: str, tokens: Sequence[TokenLogprob], offset: int) -> dict[str, Any]:
        """A content delta, with logprobs when asked."""
        choice: dict[str, Any] = {"index": index, "delta": {"content": text}, "finish_reason": None}
        if self.job.logprobs:
            choice["logprobs"] = chat_logprobs(tokens)
        return self.chunk([choice])

    def ending(self, index: int, finish_reason: str | None) -> dict[str, Any]:
        """An empty delta with the finish reason."""
        return {"index": index, "delta": {}, "finish_reason": finish_reason}

    def finish_reasons(self, result: SharpenedResult) -> list[str | None]:
        """Each choice's finish reason (tool_calls when its message is a tool call)."""
        return [reply.finish_reason for reply in chat_replies(result)]

    def whole(self, result: SharpenedResult) -> Iterator[dict[str, Any]]:
        """Each chosen message in one piece: its text, or its tool calls as one tool_calls delta."""
        if result.replies is None:
            yield from super().whole(result)
            return
        for i, (candidate, reply) in enumerate(zip(result.choices, result.replies, strict=True)):
            yield from self.opening(i)
            if reply.tool_calls:
                calls = [call.model_dump() | {"index": k} for k, call in enumerate(reply.tool_calls)]
                choice: dict[str, Any] = {
                    "index": i,
                    "delta": {"content": reply.content, "tool_calls": calls},
                    "finish_reason": None,
                }
                if self.job.logprobs:
                    choice["logprobs"] = chat_logprobs(candidate.tokens)
                yield self.chunk([choice])
            else:
                yield self.delta(i, candidate.text, candidate.tokens, 0)
        yield from self.closing(result)


class CompletionChunks(ChunkFormat):
    """text_completion chunks (legacy completions)."""

    object_name = "text_completion"

    def delta(
        self, index: int, text: str, tokens: Sequence[TokenLogprob | str], offset: int
    ) -> dict[str, Any]:
        """A text piece, with logprobs when asked."""
        choice: dict[str, Any] = {"index": index, "text": text, "finish_reason": None}
        if self.job.logprobs:
            choice["logprobs"] = completion_logprobs(tokens, offset)
        return self.chunk([choice])

    def ending(self, index: int, finish_reason: str | None) -> dict[str, Any]:
        """An empty text piece with the finish reason."""
        return {"index": index, "text": "", "finish_reason": finish_reason}
