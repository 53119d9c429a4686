"""Server-sent event streams in OpenAI's chunk formats.

Strategy `none` streams its one candidate live, token by token (a true pass-through with a
real time to first token). Every other strategy streams the chosen completion once it is
chosen: the choice needs every candidate's score.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from server.errors import APIError
from server.responses import chat_logprobs, chat_replies, completion_logprobs, summary, usage
from server.service import GenerationJob, SharpenedResult, SharpeningService
from server.sharpening import Candidate, TokenLogprob

logger = logging.getLogger(__name__)


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


class ChunkFormat:
    """The chunk shapes of one endpoint; subclasses fill in the per-choice parts."""

    object_name = ""

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

    def opening(self, index: int) -> dict[str, Any] | None:
        """The chunk that opens a choice, if the format has one."""
        return None

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
        last = self.chunk([self.ending(i, reason) for i, reason in enumerate(self.finish_reasons(result))])
        tail = summary(result).model_dump(exclude_none=True)
        if self.include_usage:
            yield last
            yield self.chunk([], usage=usage(result).model_dump(), sharpening=tail)
        else:
            yield last | {"sharpening": tail}

    def whole(self, result: SharpenedResult) -> Iterator[dict[str, Any]]:
        """Every chosen completion in one piece each, then the closing chunks."""
        for i, candidate in enumerate(result.choices):
            opening = self.opening(i)
            if opening is not None:
                yield opening
            yield self.delta(i, candidate.text, candidate.tokens, 0)
        yield from self.closing(result)


class ChatChunks(ChunkFormat):
    """chat.completion.chunk objects."""

    object_name = "chat.completion.chunk"

    def opening(self, index: int) -> dict[str, Any]:
        """The role announcement."""
        return self.chunk(
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
            yield self.opening(i)
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

    def delta(self, index: int, text: str, tokens: Sequence[TokenLogprob], offset: int) -> dict[str, Any]:
        """A text piece, with logprobs when asked."""
        choice: dict[str, Any] = {"index": index, "text": text, "finish_reason": None}
        if self.job.logprobs:
            choice["logprobs"] = completion_logprobs(tokens, offset)
        return self.chunk([choice])

    def ending(self, index: int, finish_reason: str | None) -> dict[str, Any]:
        """An empty text piece with the finish reason."""
        return {"index": index, "text": "", "finish_reason": finish_reason}


async def event_stream(
    service: SharpeningService, job: GenerationJob, request_id: str, chunks: ChunkFormat
) -> AsyncIterator[str]:
    """Run the job and stream it; an error becomes an error event; always ends with [DONE]."""
    live = job.sharpening.strategy == "none" and job.tools is None  # tool calls are parsed at the end
    pieces: asyncio.Queue[tuple[str, list[TokenLogprob], int] | None] = asyncio.Queue()

    def on_update(candidate: Candidate, text: str, tokens: list[TokenLogprob]) -> None:
        pieces.put_nowait((text, tokens, len(candidate.text) - len(text)))

    task = asyncio.ensure_future(service.run(job, request_id, on_update if live else None))
    task.add_done_callback(lambda _: pieces.put_nowait(None))
    try:
        if live:
            opening = chunks.opening(0)
            if opening is not None:
                yield sse(opening)
            while (piece := await pieces.get()) is not None:
                if piece[0] or piece[1]:
                    yield sse(chunks.delta(0, *piece))
        result = await task
        closing = chunks.closing(result) if live else chunks.whole(result)
        yield await asyncio.to_thread(lambda: "".join(sse(chunk) for chunk in closing))  # can be large
    except APIError as exc:
        yield sse(exc.body().model_dump())
    except Exception:
        logger.exception("stream %s failed", request_id)
        yield sse(APIError("internal server error; the server log has details").body().model_dump())
    finally:
        task.cancel()  # the client went away mid-stream: abort its candidates
    yield sse("[DONE]")
