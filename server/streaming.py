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
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from typing import Any

from server.candidate_events import CANDIDATE_EVENT, CandidateBatcher
from server.errors import APIError
from server.jobs import CompletionBatch, GenerationJob, SharpenedResult
from server.protocol import Usage
from server.race import RaceEvent
from server.responses import (
    batch_summary,
    chat_logprobs,
    chat_replies,
    completion_logprobs,
    legacy_choices,
    summary,
    usage,
)
from server.service import SharpeningService
from server.sharpening import TokenLogprob
from server.summary import SharpeningSummary

logger = logging.getLogger(__name__)
Piece = tuple[str, Sequence[TokenLogprob], int]  # new text, its tokens, its offset in the text
FLUSH: Piece = ("", (), -1)  # the queue marker: candidate events are pending


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

    def error(self, exc: APIError) -> dict[str, Any]:
        """The event that reports an error mid-stream."""
        return exc.body().model_dump()

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


def completion_stream(
    service: SharpeningService, batch: CompletionBatch, request_id: str, chunks: CompletionChunks
) -> AsyncIterator[str]:
    """A legacy completion stream: live for one plain prompt under strategy `none`, else each
    choice whole (echo and all) once every prompt's choices are chosen; always ends with [DONE].
    """
    if len(batch.prompts) == 1 and not batch.echo:
        return event_stream(service, batch.jobs[0], request_id, chunks)

    async def events() -> AsyncGenerator[dict[str, Any] | str]:
        task = asyncio.ensure_future(service.run_all(batch.jobs, request_id))
        try:
            results = await task
        finally:
            task.cancel()  # the client went away: abort every prompt's candidates
        yield await asyncio.to_thread(whole_batch, batch, results, chunks)  # can be large

    return guarded(events(), chunks, request_id)


def whole_batch(batch: CompletionBatch, results: list[SharpenedResult], chunks: CompletionChunks) -> str:
    """Every prompt's choices as events, each in one piece, then the closing chunks."""
    choices = legacy_choices(batch, results)
    events = [chunks.delta(c.index, c.text, c.tokens, 0) for c in choices]
    endings = [(c.index, c.finish_reason) for c in choices]
    events += chunks.close(endings, batch_summary(results), usage(*results))
    return "".join(sse(event) for event in events)


def event_stream(
    service: SharpeningService, job: GenerationJob, request_id: str, chunks: ChunkFormat
) -> AsyncIterator[str]:
    """Run the job and stream it; an error becomes an error event; always ends with [DONE].

    With `sharpening.stream_candidates`, `event: candidate` events (candidate_events.py) are
    interleaved with the chunks, at most one per EVENT_INTERVAL_S.
    """
    live = job.sharpening.strategy == "none" and job.tools is None  # tool calls are parsed at the end

    async def events() -> AsyncGenerator[dict[str, Any] | str]:
        pieces: asyncio.Queue[Piece | None] = asyncio.Queue()
        batcher = None
        if job.sharpening.stream_candidates:
            batcher = CandidateBatcher(job.sharpening.length_penalty, lambda: pieces.put_nowait(FLUSH))

        def on_update(event: RaceEvent) -> None:
            if batcher is not None:
                batcher.hear(event)
            if live and (event.text or event.tokens):
                offset = len(event.candidate.text) - len(event.text)
                pieces.put_nowait((event.text, event.tokens, offset))

        def candidate_event(fields: dict[str, Any] | None) -> str:
            return "" if fields is None else sse(chunks.chunk([], **fields), CANDIDATE_EVENT)

        listens = live or batcher is not None
        task = asyncio.ensure_future(service.run(job, request_id, on_update if listens else None))
        task.add_done_callback(lambda _: pieces.put_nowait(None))
        try:
            if live:
                for opening in chunks.opening(0):
                    yield opening
            while (piece := await pieces.get()) is not None:
                if piece is not FLUSH:
                    yield chunks.delta(0, *piece)
                elif batcher is not None and (wait := batcher.wait_seconds()) > 0:  # too soon: hold it
                    asyncio.get_running_loop().call_later(wait, pieces.put_nowait, FLUSH)
                elif batcher is not None:
                    yield candidate_event(batcher.take())
            result = await task
        finally:
            task.cancel()  # the client went away mid-stream: abort its candidates
        if batcher is not None:
            yield candidate_event(batcher.take())
            yield candidate_event(batcher.selection(result.choices, result.scores))
        closing = chunks.closing(result) if live else chunks.whole(result)
        yield await asyncio.to_thread(lambda: "".join(sse(chunk) for chunk in closing))  # can be large

    return guarded(events(), chunks, request_id)


async def guarded(
    events: AsyncGenerator[dict[str, Any] | str], chunks: ChunkFormat, request_id: str
) -> AsyncIterator[str]:
    """`events` as server-sent events (a string is events serialized already); an error becomes an
    error event; the stream ends with the format's terminator.
    """
    try:
        async with aclosing(events):  # closing the stream closes `events`, which aborts its work
            async for event in events:
                yield event if isinstance(event, str) else sse(event)
    except APIError as exc:
        yield sse(chunks.error(exc))
    except Exception:
        logger.exception("stream %s failed", request_id)
        yield sse(chunks.error(APIError("internal server error; the server log has details")))
    if chunks.terminator is not None:
        yield sse(chunks.terminator)
