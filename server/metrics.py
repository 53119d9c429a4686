"""Every Prometheus object of the server, on a registry of its own per app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.engines.base import UpstreamStatus
from server.sharpening import CandidateStatus

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LAG_SAMPLE_SECONDS = 0.1
SCORE_BUCKETS = (-200, -100, -50, -25, -10, -5, -2, -1, -0.5, -0.1, 0)
REFUSAL_STATUSES = ("429", "503")  # admission limit full; engine not serving
CANDIDATE_ENDINGS = (*(s.value for s in CandidateStatus if s is not CandidateStatus.RUNNING), "aborted")


class Metrics:
    """Request, candidate and token counters of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "whetstone_requests",
            "Requests by endpoint, strategy and HTTP status.",
            ["endpoint", "strategy", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "whetstone_request_seconds",
            "Request latency by strategy.",
            ["strategy"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "whetstone_time_to_first_token_seconds",
            "Time from request to the first token sent to the client.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.candidates = Counter(
            "whetstone_candidates", "Candidates by how they ended.", ["status"], registry=r
        )
        for ending in CANDIDATE_ENDINGS:  # every series exists from the start, so ratios have data
            self.candidates.labels(ending)
        self.generated_tokens = Counter(
            "whetstone_generated_tokens", "Tokens generated, all candidates included.", registry=r
        )
        self.stopped_early = Counter(
            "whetstone_stopped_early",
            "Jobs whose drawing a rule ended early "
            "(budget, certificate, missing_mass, repeated_leader, posterior).",
            ["rule"],
            registry=r,
        )
        self.refused_candidates = Counter(
            "whetstone_refused_candidates",
            "Candidates a strategy asked for that never reached the engine, by why "
            "(load: no spare capacity; deadline: the primary had ended; budget).",
            ["reason"],
            registry=r,
        )
        self.cut_candidates = Counter(
            "whetstone_load_cut_candidates",
            "Extra candidates the load policy stopped while running (load: a newer request's primary "
            "needed the room; deadline: the primary had ended long enough ago).",
            ["reason"],
            registry=r,
        )
        self.load_requests = Counter(
            "whetstone_load_requests",
            "Jobs by load mode and how far they were sharpened (full: every candidate asked for ran "
            "to its end or was pruned on score; reduced: some were refused or cut; primary_only).",
            ["mode", "extent"],
            registry=r,
        )
        for reason in ("load", "deadline"):  # every series exists from the start
            self.refused_candidates.labels(reason)
            self.cut_candidates.labels(reason)
        for mode in ("spare", "wait"):
            for extent in ("full", "reduced", "primary_only"):
                self.load_requests.labels(mode, extent)
        self.busy_sequences = Gauge(
            "whetstone_load_busy_sequences",
            "Sequences the engine runs or holds now, as the load policy sees them.",
            registry=r,
        )
        self.prefix_cached_tokens = Counter(
            "whetstone_prefix_cached_tokens",
            "Prompt tokens of candidates served from the engine's prefix cache instead of prefilled.",
            registry=r,
        )
        self.inflight_requests = Gauge(
            "whetstone_inflight_requests", "Requests being served now.", registry=r
        )
        self.inflight_candidates = Gauge(
            "whetstone_inflight_candidates", "Candidates running in the engine now.", registry=r
        )
        self.selected_score = Histogram(
            "whetstone_selected_score",
            "Score of the selected candidate.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )

        self.event_loop_lag = Histogram(
            "whetstone_event_loop_lag_seconds",
            f"How late the event loop wakes a timer, sampled every {LAG_SAMPLE_SECONDS} s "
            "(high values mean something blocks request handling).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.engine_restarts = Counter(
            "whetstone_engine_restarts", "Times a failed engine was replaced in-process.", registry=r
        )
        self.refused_requests = Counter(
            "whetstone_refused_requests",
            "Generation requests refused: 429 (admission limit full) or 503 (engine not serving).",
            ["status"],
            registry=r,
        )
        for status in REFUSAL_STATUSES:
            self.refused_requests.labels(status)
        self.engine_serving = Gauge(
            "whetstone_engine_serving", "1 while the engine serves requests, else 0.", registry=r
        )
        self.build = Info(
            "whetstone_build", "Server version, the engine's dtype and why it was chosen.", registry=r
        )

    def count_request(self, endpoint: str, strategy: str, status: int, seconds: float) -> None:
        """Account one finished generation request: its status, its latency, a refusal."""
        self.requests.labels(endpoint, strategy, str(status)).inc()
        self.request_seconds.labels(strategy).observe(seconds)
        if str(status) in REFUSAL_STATUSES:
            self.refused_requests.labels(str(status)).inc()

    def watch_load(self, busy: Callable[[], int]) -> None:
        """Read the load policy's view of the engine's load at every scrape."""
        self.busy_sequences.set_function(busy)

    def watch_engine(self, is_healthy: Callable[[], bool]) -> None:
        """Read the engine's health at every scrape."""
        self.engine_serving.set_function(lambda: float(is_healthy()))

    async def sample_event_loop_lag(self) -> None:
        """Observe the event loop's lag forever: sleep a fixed interval, record the overshoot."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_SAMPLE_SECONDS)
            self.event_loop_lag.observe(max(time.perf_counter() - started - LAG_SAMPLE_SECONDS, 0.0))

    def watch_upstreams(self, status: Callable[[], list[UpstreamStatus]]) -> None:
        """Report each upstream's health, candidates in flight and failures, read at every scrape."""
        self.registry.register(UpstreamCollector(status))

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class UpstreamCollector(Collector):
    """Per-upstream metrics of upstream mode, read from the engine when scraped."""

    def __init__(self, status: Callable[[], list[UpstreamStatus]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        """One sample per upstream and metric."""
        healthy = GaugeMetricFamily(
            "whetstone_upstream_healthy", "1 while the upstream serves, else 0.", labels=["upstream"]
        )
        inflight = GaugeMetricFamily(
            "whetstone_upstream_inflight_candidates", "Candidates streaming from the upstream now.",
            labels=["upstream"],
        )
        failures = CounterMetricFamily(
            "whetstone_upstream_failures",
            "Times the upstream was taken out or failed a retry.",
            labels=["upstream"],
        )
        for upstream in self.status():
            healthy.add_metric([upstream.url], float(upstream.healthy))
            inflight.add_metric([upstream.url], upstream.inflight_candidates)
            failures.add_metric([upstream.url], upstream.failures)
        yield from (healthy, inflight, failures)
