"""OpenTelemetry traces: one span per request, a child span per candidate, sent over OTLP/HTTP.

Off unless `--otlp-traces-endpoint` is set; the SDK is the optional extra `whetstone[otel]`.
A candidate's span opens when it is drawn (a fork names its parent and inherited tokens), has a
`first_token` event, and closes with its ending (finished, truncated, pruned, paused), its score
and token counts. The request's span carries the strategy, n, the model and the usage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from server.jobs import GenerationJob, SharpenedResult
from server.race import RaceEvent, UpdateListener
from server.sharpening import Candidate, CandidateStatus, candidate_score

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

TRACES_PATH = "/v1/traces"
MISSING_SDK = "--otlp-traces-endpoint needs the OpenTelemetry SDK: pip install 'whetstone[otel]'"


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector: its base URL gets the standard /v1/traces path."""
    return endpoint if urlsplit(endpoint).path.strip("/") else endpoint.rstrip("/") + TRACES_PATH


class RequestTracer:
    """Exports request and candidate spans to one OTLP/HTTP collector, in batches."""

    def __init__(self, endpoint: str, service_name: str = "whetstone") -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise RuntimeError(MISSING_SDK) from exc
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
        self.tracer: Tracer = self.provider.get_tracer("whetstone")

    @contextmanager
    def request(self, request_id: str, jobs: Sequence[GenerationJob], model: str) -> Iterator[RequestTrace]:
        """A request's span for as long as the block runs; an exception marks it failed."""
        from opentelemetry.trace import StatusCode

        sharpening = jobs[0].sharpening
        attributes: dict[str, Any] = {
            "whetstone.request_id": request_id,
            "whetstone.strategy": sharpening.strategy,
            "whetstone.n": sharpening.n,
            "whetstone.length_penalty": sharpening.length_penalty,
            "whetstone.prompts": len(jobs),
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": jobs[0].sampling.max_tokens,
        }
        with self.tracer.start_as_current_span(
            "whetstone.request", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            trace = RequestTrace(self.tracer, span, jobs)
            try:
                yield trace
            except BaseException as exc:  # a cancellation is the client going away
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                span.record_exception(exc)
                raise
            finally:
                trace.close_all()

    def shutdown(self) -> None:
        """Send the spans still queued, then stop."""
        self.provider.shutdown()


class RequestTrace:
    """The candidate spans of one request, opened and closed by the race's events."""

    def __init__(self, tracer: Tracer, span: Span, jobs: Sequence[GenerationJob]) -> None:
        self.tracer = tracer
        self.span = span
        self.jobs = jobs
        self.open: dict[tuple[int, int], tuple[Span, Candidate]] = {}
        self.first_token_seen: set[tuple[int, int]] = set()

    def listeners(self, given: Sequence[UpdateListener | None]) -> list[UpdateListener]:
        """One listener per job that traces its candidates, then hands each event on to `given`."""
        return [self._listener(prompt, listener) for prompt, listener in enumerate(given)]

    def _listener(self, prompt: int, listener: UpdateListener | None) -> UpdateListener:
        def hear(event: RaceEvent) -> None:
            self.hear(prompt, event)
            if listener is not None:
                listener(event)

        return hear

    def hear(self, prompt: int, event: RaceEvent) -> None:
        """Open a candidate's span when it is drawn, mark its first token, close it when it ends."""
        candidate = event.candidate
        key = (prompt, candidate.index)
        if key not in self.open:
            if candidate.done:
                return  # its span has ended
            self.open[key] = (self._start(prompt, candidate), candidate)
        span = self.open[key][0]
        if event.tokens and key not in self.first_token_seen:
            self.first_token_seen.add(key)
            span.add_event("first_token")
        if candidate.done:
            self._end(span, candidate, self.jobs[prompt].sharpening.length_penalty)
            del self.open[key]

    def _start(self, prompt: int, candidate: Candidate) -> Span:
        from opentelemetry.trace import set_span_in_context

        attributes: dict[str, Any] = {"whetstone.candidate.index": candidate.index}
        if len(self.jobs) > 1:
            attributes["whetstone.prompt_index"] = prompt
        if candidate.parent is not None:
            attributes["whetstone.candidate.parent"] = candidate.parent
            attributes["whetstone.candidate.prefix_tokens"] = candidate.prefix_tokens
        span = self.tracer.start_span(
            "whetstone.candidate", context=set_span_in_context(self.span), attributes=attributes
        )
        span.add_event("forked" if candidate.parent is not None else "drawn")
        return span

    @staticmethod
    def _end(span: Span, candidate: Candidate, length_penalty: float, status: str | None = None) -> None:
        ending = status or candidate.status.value
        span.add_event(ending)
        span.set_attributes({
            "whetstone.candidate.status": ending,
            "whetstone.candidate.finish_reason": candidate.finish_reason or "",
            "whetstone.candidate.score": candidate_score(candidate, length_penalty),
            "whetstone.candidate.logprob_sum": candidate.logprob_sum,
            "whetstone.candidate.tokens": candidate.num_tokens,
            "whetstone.candidate.generated_tokens": candidate.generated_tokens,
        })
        span.end()

    def finished(self, results: Sequence[SharpenedResult]) -> None:
        """Put the outcome on the request's span: usage, the selection, candidates by ending."""
        attributes: dict[str, Any] = {
            "gen_ai.usage.input_tokens": sum(len(r.job.prompt_token_ids) for r in results),
            "gen_ai.usage.output_tokens": sum(r.generated_tokens for r in results),
            "whetstone.candidates": sum(len(r.candidates) for r in results),
            "whetstone.forks": sum(r.forks for r in results),
        }
        for status in (CandidateStatus.FINISHED, CandidateStatus.TRUNCATED, CandidateStatus.PRUNED):
            attributes[f"whetstone.candidates_{status.value}"] = sum(r.count(status) for r in results)
        if len(results) == 1 and (selected := results[0].selected) is not None:
            attributes["whetstone.selected_index"] = selected.index
            attributes["whetstone.selected_score"] = results[0].scores[selected.index]
        self.span.set_attributes(attributes)

    def close_all(self) -> None:
        """End the spans of candidates still running (the request failed or was cancelled)."""
        for (prompt, _), (span, candidate) in self.open.items():
            self._end(span, candidate, self.jobs[prompt].sharpening.length_penalty, "aborted")
        self.open.clear()
