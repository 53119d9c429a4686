"""Running a job as a server-sent event stream: live for strategy `none`, else the chosen answer whole.

Strategy `none` streams its one candidate live, token by token (a true pass-through with a
real time to first token). Every other strategy streams the chosen completion once it is
chosen: the choice needs every candidate's score. The streams drive a `Runner` (the service,
seen from below): this module knows nothing of admission, engines or selection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Protocol

from server.formats.bodies import legacy_choices, usage
from server.formats.candidate_events import CANDIDATE_EVENT, CandidateBatcher
from server.formats.chunks import ChunkFormat, CompletionChunks, sse
from server.formats.errors import as_server_error
from server.formats.summary import batch_summary
from server.jobs import CompletionBatch, GenerationJob, SharpenedResult
from server.race import RaceEvent, UpdateListener
from server.sharpening import TokenLogprob

Piece = tuple[str, Sequence[TokenLogprob], int]  # new text, its tokens, its offset in the text
FLUSH: Piece = ("", (), -1)  # the queue marker: candidate events are pending


class Runner(Protocol):
    """What a stream needs of the service: run one request's jobs, each reporting to its listener."""

    async def run_all(
        self,
        jobs: Sequence[GenerationJob],
        request_id: str,
        listeners: Sequence[UpdateListener | None] | None = None,
    ) -> list[SharpenedResult]:
        """The jobs' results, in order."""
        ...


def completion_stream(
    runner: Runner, batch: CompletionBatch, request_id: str, chunks: CompletionChunks
) -> AsyncIterator[str]:
    """A legacy completion stream: live for one plain prompt under strategy `none`, else each
    choice whole (echo and all) once every prompt's choices are chosen; always ends with [DONE].
    """
    if len(batch.prompts) == 1 and not batch.echo:
        return event_stream(runner, batch.jobs[0], request_id, chunks)

    async def events() -> AsyncGenerator[dict[str, Any] | str]:
        task = asyncio.ensure_future(runner.run_all(batch.jobs, request_id))
        try:
            results = await task
        finally:
            task.cancel()  # the client went away: abort every prompt's candidates
        yield await asyncio.to_thread(whole_batch, batch, results, chunks)  # can be large

    return guarded(events(), chunks, request_id)


async def run_one(
    runner: Runner, job: GenerationJob, request_id: str, listener: UpdateListener | None
) -> SharpenedResult:
    """One job's result, its candidates reported to `listener`."""
    return (await runner.run_all([job], request_id, [listener]))[0]


def whole_batch(batch: CompletionBatch, results: list[SharpenedResult], chunks: CompletionChunks) -> str:
    """Every prompt's choices as events, each in one piece, then the closing chunks."""
    choices = legacy_choices(batch, results)
    events = [chunks.delta(c.index, c.text, c.tokens, 0) for c in choices]
    endings = [(c.index, c.finish_reason) for c in choices]
    events += chunks.close(endings, batch_summary(results), usage(*results))
    return "".join(sse(event) for event in events)


def event_stream(
    runner: Runner, job: GenerationJob, request_id: str, chunks: ChunkFormat
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
        task = asyncio.ensure_future(run_one(runner, job, request_id, on_update if listens else None))
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
    except Exception as exc:
        yield sse(chunks.error(as_server_error(exc, f"stream {request_id}")))
    if chunks.terminator is not None:
        yield sse(chunks.terminator)
