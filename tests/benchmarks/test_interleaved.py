"""The sequential A/B timing loop the pruning and stepwise benchmarks share."""

from __future__ import annotations

from benchmarks.common.interleaved import timed_requests
from tests.conftest import live_server
from tests.fakes import FakeEngine

WAYS = {"greedy": {"temperature": 0, "sharpening": {"strategy": "none"}}, "bo4": {"sharpening": {"n": 4}}}


def test_every_prompt_runs_every_way_interleaved_and_seeded() -> None:
    engine = FakeEngine()
    with live_server(engine) as url:
        rows = list(timed_requests(url, WAYS, ["a", "b"], max_tokens=6, timeout=30))
    assert [(way, i) for way, i, _, _ in rows] == [("greedy", 0), ("bo4", 0), ("greedy", 1), ("bo4", 1)]
    assert all(latency > 0 and result.sharpening is not None for _, _, latency, result in rows)
    assert [r.sharpening.strategy for _, _, _, r in rows if r.sharpening] == ["none", "best_of_n"] * 2
    # two warm-up requests, then one engine request for greedy and four for best-of-4, per prompt
    assert len(engine.requests) == 1 + 4 + 2 * (1 + 4)
    assert {spec.seed for _, spec in engine.requests[5:6]} == {1000}
