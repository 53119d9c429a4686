"""The adaptive benchmark end to end against the app on a fake engine: answers cached, report written."""

from __future__ import annotations

from pathlib import Path

from benchmarks.adaptive.__main__ import cached, collect, task_section, ways
from benchmarks.common.datasets import TASKS, load_task
from tests.conftest import live_server
from tests.fakes import FakeEngine, Script


def test_collect_and_report(tmp_path: Path) -> None:
    engine = FakeEngine(scripts=[Script([-0.5] * 3, words=("Answer: ", "5"))])
    task, items = TASKS["arithmetic"], load_task("arithmetic", 2)
    raw = tmp_path / "raw.jsonl"
    with live_server(engine) as url:
        found = collect(url, {"arithmetic": items}, [4], raw)
        again = collect(url, {"arithmetic": items}, [4], raw)  # everything cached: no request
    assert len(found) == len(again) == len(cached(raw)) == 2 * len(ways([4], task)) == 10
    adaptive = found[("arithmetic", items[0].id, "majority-4 adaptive")]
    assert adaptive["stopped_by"] == "posterior" and adaptive["candidates_drawn"] == 4
    assert found[("arithmetic", items[0].id, "majority-4")]["candidates_drawn"] == 4
    lines = task_section(task, items, [4], found, tmp_path / "plot.png")
    table = "\n".join(lines)
    assert "| majority-4 adaptive |" in table and "posterior 2" in table
    assert (tmp_path / "plot.png").stat().st_size > 0
