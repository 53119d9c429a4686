"""--otlp-traces-endpoint: the spans reach a real OTLP/HTTP receiver as a request -> candidates tree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from server.tracing import traces_url
from tests.conftest import ClientFactory, serve_app
from tests.fake_upstream import read_body
from tests.fakes import FakeEngine, Script

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP collector's traces endpoint (protobuf bodies) that keeps every span it gets."""

    spans: list[Any] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Decode one ExportTraceServiceRequest and answer 200 with an empty response."""
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.paths.add(scope["path"])
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scoped in resource.scope_spans:
                self.spans.extend(scoped.spans)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})


def attributes(span: Any) -> dict[str, Any]:
    """A span's attributes as plain values."""
    return {kv.key: value(kv) for kv in span.attributes}


def value(kv: KeyValue) -> Any:
    """The Python value of an OTLP attribute."""
    return getattr(kv.value, kv.value.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    """The receiver on a loopback port, and its base URL."""
    collector = OtlpReceiver()
    with serve_app(collector) as url:
        yield collector, url


async def traced(
    make_client: ClientFactory, url: str, engine: FakeEngine, *bodies: dict[str, Any]
) -> list[Any]:
    """Send the bodies to an app that traces to `url`; the replies (spans are flushed at shutdown)."""
    async with make_client(engine, otlp_traces_endpoint=url) as client:
        return [await client.post(CHAT, json=body) for body in bodies]


async def test_a_request_span_with_one_child_per_candidate(
    make_client: ClientFactory, receiver: tuple[OtlpReceiver, str]
) -> None:
    collector, url = receiver
    engine = FakeEngine(scripts=[Script([-0.1, -0.1])] + [Script([-2.0] * 20) for _ in range(3)])
    body = {"messages": HELLO, "sharpening": {"n": 4, "return_candidates": True}}
    (reply,) = await traced(make_client, url, engine, body)
    summary = reply.json()["sharpening"]

    assert collector.paths == {"/v1/traces"}
    (root,) = [s for s in collector.spans if s.name == "whetstone.request"]
    children = [s for s in collector.spans if s.name == "whetstone.candidate"]
    assert {s.trace_id for s in collector.spans} == {root.trace_id}
    assert all(s.parent_span_id == root.span_id for s in children)
    request = attributes(root)
    assert request["whetstone.strategy"] == "best_of_n" and request["whetstone.n"] == 4
    assert request["gen_ai.usage.output_tokens"] == reply.json()["usage"]["completion_tokens"]
    assert request["gen_ai.usage.input_tokens"] == reply.json()["usage"]["prompt_tokens"]
    assert request["whetstone.selected_index"] == summary["selected_index"]
    assert request["whetstone.candidates_pruned"] == summary["candidates_pruned"] == 3

    by_index = {attributes(s)["whetstone.candidate.index"]: s for s in children}
    assert sorted(by_index) == [0, 1, 2, 3]
    for candidate in summary["candidates"]:
        span = by_index[candidate["index"]]
        got = attributes(span)
        assert got["whetstone.candidate.status"] == candidate["status"]
        assert got["whetstone.candidate.score"] == pytest.approx(candidate["score"])
        assert got["whetstone.candidate.tokens"] == candidate["num_tokens"]
        events = [e.name for e in span.events]
        assert events[0] == "drawn" and events[-1] == candidate["status"]
        assert events.count("first_token") == 1
        assert root.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano <= root.end_time_unix_nano


async def test_forks_name_their_parent(
    make_client: ClientFactory, receiver: tuple[OtlpReceiver, str]
) -> None:
    collector, url = receiver
    engine = FakeEngine(scripts=[Script([-0.2] * 6), Script([-1.0] * 5), Script([-0.5] * 7)])
    sharpening = {"strategy": "smc", "n": 3, "alpha": 4.0, "checkpoint_tokens": 2}
    body = {"messages": HELLO, "max_tokens": 8, "sharpening": sharpening}
    (reply,) = await traced(make_client, url, engine, body)
    forks = [attributes(s) for s in collector.spans
             if s.name == "whetstone.candidate" and "forked" in [e.name for e in s.events]]
    assert len(forks) == reply.json()["sharpening"]["forks"] > 0
    assert all(f["whetstone.candidate.prefix_tokens"] > 0 for f in forks)
    assert all("whetstone.candidate.parent" in f for f in forks)


async def test_a_failed_request_is_an_error_span(
    make_client: ClientFactory, receiver: tuple[OtlpReceiver, str]
) -> None:
    collector, url = receiver
    engine = FakeEngine(scripts=[Script([-0.5] * 3)], self_aborted_candidates={1})
    (reply,) = await traced(make_client, url, engine, {"messages": HELLO, "sharpening": {"n": 2}})
    assert reply.status_code == 503
    (root,) = [s for s in collector.spans if s.name == "whetstone.request"]
    assert root.status.code == root.status.STATUS_CODE_ERROR
    assert all(s.end_time_unix_nano for s in collector.spans)


async def test_tracing_is_off_by_default(make_client: ClientFactory) -> None:
    async with make_client(FakeEngine()) as client:
        assert client.app.state.service.tracer is None  # type: ignore[attr-defined]


def test_a_collector_base_url_gets_the_traces_path() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/custom/traces") == "http://collector:4318/custom/traces"
