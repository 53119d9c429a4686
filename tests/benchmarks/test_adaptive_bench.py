"""The adaptive benchmark end to end against the app on a fake engine: answers cached, report written."""

from __future__ import annotations

from pathlib import Path

from benchmarks.adaptive.__main__ import collect, task_section, ways
from benchmarks.adaptive.offline import replay
from benchmarks.adaptive.plot import family
from benchmarks.common.datasets import TASKS, load_task
from benchmarks.quality.answers import cached_answers
from server.sharpening import SharpeningConfig
from tests.conftest import live_server
from tests.fakes import FakeEngine, Script


def test_collect_and_report(tmp_path: Path) -> None:
    engine = FakeEngine(scripts=[Script([-0.5] * 3, words=("Answer: ", "5"))])
    task, items = TASKS["arithmetic"], load_task("arithmetic", 2)
    raw = tmp_path / "raw.jsonl"
    with live_server(engine) as url:
        found = collect(url, {"arithmetic": items}, [4], raw, [0.8])
        again = collect(url, {"arithmetic": items}, [4], raw, [0.8])  # everything cached: no request
    assert len(found) == len(again) == len(cached_answers(raw)) == 2 * len(ways([4], task, [0.8])) == 12
    adaptive = found[("arithmetic", items[0].id, "majority-4 adaptive")]
    assert adaptive["stopped_by"] == "posterior" and adaptive["candidates_drawn"] == 4
    assert found[("arithmetic", items[0].id, "majority-4")]["candidates_drawn"] == 4
    looser = found[("arithmetic", items[0].id, "majority-4 adaptive c0.8")]  # 2 to 0, 2 to come: 0.9
    assert looser["stopped_by"] == "posterior" and looser["candidates_drawn"] == 2
    lines = task_section(task, items, [4], found, tmp_path / "plot.png", [0.8])
    table = "\n".join(lines)
    assert "| majority-4 adaptive |" in table and "posterior 2" in table
    looser_row = next(line for line in lines if line.startswith("| majority-4 adaptive c0.8 |"))
    assert "| +0.0 (+0.0 to +0.0) |" in looser_row and "| 0.50 |" in looser_row  # vs majority-4, its tokens
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_the_offline_replay_stops_where_the_server_would() -> None:
    likely = {"text": "Answer: 5", "logprob_sum": -0.1, "num_tokens": 4, "finish_reason": "stop"}
    rambling = {"text": "well...", "logprob_sum": -30.0, "num_tokens": 60, "finish_reason": "length"}
    certified = replay(SharpeningConfig(n=8, prune=False, adaptive=True), [likely] * 8, 64)
    assert (certified.drawn, certified.tokens, certified.stopped_by) == (2, 8, "certificate")
    full = replay(SharpeningConfig(n=8, prune=False), [likely, rambling] * 4, 64)
    assert (full.drawn, full.tokens, full.steps, full.stopped_by) == (8, 256, 60, None)
    assert full.selected is not None and full.selected.text == "Answer: 5"


def test_plot_groups_ways_by_strategy_certainty_and_cap() -> None:
    assert family("majority-16 adaptive c0.8") == ("majority c0.8", 16, True)
    assert family("best_of_n-32") == ("best_of_n", 32, False)
    assert family("best_of_n-8 adaptive") == ("best_of_n", 8, True)
    assert family("greedy") == ("greedy", 0, False)
