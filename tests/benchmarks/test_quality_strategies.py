"""The quality benchmark's live strategies: collection against a live fake server, the Pareto report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks.common.datasets import TASKS, Item, load_task
from benchmarks.quality import run as quality
from benchmarks.quality.data import append_record, graded_items, raw_path, read_records
from benchmarks.quality.pareto import pareto_front, task_pareto
from benchmarks.quality.strategies import (
    LIVE_STRATEGIES,
    collect_strategies,
    strategy_path,
    strategy_request,
    strategy_runs_path,
    uncached_answers,
)
from benchmarks.quality.summary import TaskReport
from tests.conftest import live_server
from tests.fakes import FakeEngine, Script

ARITHMETIC = TASKS["arithmetic"]


def scripted_engine() -> FakeEngine:
    """Candidates that answer 5 (likely) or 6 (less likely), three tokens each."""
    return FakeEngine(scripts=[Script([-0.2] * 3, words=("Answer:", " 5", "")),
                               Script([-1.0] * 3, words=("Answer:", " 6", ""))])


def items(answer: str = "5") -> list[Item]:
    """Two arithmetic items with a given reference answer."""
    return [Item(f"q{i}", [{"role": "user", "content": f"question {i}"}], answer, ARITHMETIC.answer_pattern)
            for i in range(2)]


def test_requests_use_n_8_alpha_4_and_the_task_pattern_and_leave_temperature_to_smc_and_mcmc() -> None:
    assert strategy_request("smc", ARITHMETIC) == {
        "temperature": None, "sharpening": {"strategy": "smc", "n": 8, "alpha": 4.0}}
    assert strategy_request("power", ARITHMETIC)["temperature"] == 1.0
    confidence = strategy_request("confidence", ARITHMETIC)
    assert confidence["sharpening"]["answer_pattern"] == ARITHMETIC.answer_pattern
    assert "alpha" not in confidence["sharpening"]
    with pytest.raises(ValueError, match="best_of_n"):
        strategy_request("best_of_n", ARITHMETIC)


def test_collection_caches_every_answer_with_its_tokens_and_resumes(tmp_path: Path) -> None:
    engine = scripted_engine()
    with live_server(engine) as url:
        asyncio.run(collect_strategies(url, ARITHMETIC, items(), LIVE_STRATEGIES, concurrency=2,
                                       out=tmp_path, server="fake"))
        sent = len(engine.requests)
        assert uncached_answers(tmp_path, ARITHMETIC, items(), LIVE_STRATEGIES) == 0
        asyncio.run(collect_strategies(url, ARITHMETIC, items(), LIVE_STRATEGIES, concurrency=2,
                                       out=tmp_path, server="fake"))
    assert len(engine.requests) == sent  # everything was cached: nothing asked again
    for strategy in LIVE_STRATEGIES:
        records = read_records(strategy_path(tmp_path, "arithmetic", strategy))
        assert sorted(r["id"] for r in records) == ["q0", "q1"]
        assert all(r["request"] == strategy_request(strategy, ARITHMETIC) for r in records)
        assert all(r["text"] in ("Answer: 5", "Answer: 6") for r in records)
        drawn = [r["candidates_drawn"] for r in records]
        # smc aborts the particles its early draw leaves, so only its answer's 3 tokens are sure
        assert all(r["completion_tokens"] >= (3 if strategy == "smc" else 3 * d)
                   for r, d in zip(records, drawn, strict=True))
    power = read_records(strategy_path(tmp_path, "arithmetic", "power"))
    assert all(r["candidates_drawn"] == 8 and r["completion_tokens"] == 24 for r in power)
    runs = read_records(strategy_runs_path(tmp_path))
    assert [(r["strategy"], r["collected"]) for r in runs] == [(s, 2) for s in LIVE_STRATEGIES] + [
        (s, 0) for s in LIVE_STRATEGIES]
    # smc and mcmc draw at temperature 1/alpha, power and confidence at the requested 1
    assert {spec.temperature for _, spec in engine.requests} == {0.25, 1.0}


def candidate(text: str, tokens: int, logprob: float) -> dict[str, object]:
    """A cached candidate."""
    return {"text": text, "logprob_sum": logprob, "num_tokens": tokens, "status": "finished",
            "finish_reason": "stop"}


def write_caches(out: Path, count: int) -> list[Item]:
    """A raw cache of 4 candidates per item (greedy always right) and live answers: smc always
    right, mcmc always wrong; returns the items."""
    chosen = load_task("arithmetic", count)
    for item in chosen:
        right, wrong = f"Answer: {item.answer}", "Answer: 999"
        append_record(raw_path(out, "arithmetic"), {
            "id": item.id, "answer": item.answer, "n": 4, "max_tokens": 64, "model": "fake-model",
            "greedy": {"latency": 0.1, "completion_tokens": 5, "candidates": [candidate(right, 5, -1.0)]},
            "sampled": {"latency": 0.2, "completion_tokens": 40, "candidates": [
                candidate(right, 4, -1.0), candidate(wrong, 6, -3.0), candidate(wrong, 10, -5.0),
                candidate(right, 20, -9.0)]},
        })
        for strategy, text, tokens in (("smc", right, 90), ("mcmc", wrong, 30)):
            append_record(strategy_path(out, "arithmetic", strategy), {
                "id": item.id, "answer": item.answer, "max_tokens": 64, "text": text, "finish_reason": "stop",
                "request": strategy_request(strategy, ARITHMETIC), "completion_tokens": tokens,
                "selected_logprob_sum": -1.0, "selected_num_tokens": 4,
            })
    return chosen


def test_points_cost_every_candidate_and_compare_on_the_shared_items(tmp_path: Path) -> None:
    write_caches(tmp_path, 5)
    records = read_records(raw_path(tmp_path, "arithmetic"))
    report = TaskReport.build(ARITHMETIC, records, graded_items(records, ARITHMETIC, 4), [1, 2, 4], 50, 0)
    pareto = task_pareto(report, tmp_path, ["smc", "mcmc", "power"], item_count=4, seed=0)
    assert pareto is not None and pareto.items == 4  # power has no answers; the 5th item is not asked for
    assert {p.method for p in pareto.live} == {"smc", "mcmc"}
    assert pareto.greedy.tokens == 5 and pareto.greedy.result.accuracy == 1.0
    best4 = next(p for p in pareto.offline("best_of_n") if p.n == 4)
    assert best4.tokens == 40  # all four candidates: 4 + 6 + 10 + 20
    assert next(p for p in pareto.offline("best_of_n") if p.n == 1).tokens == 10  # their mean
    assert best4.result.accuracy == 1.0  # the most likely candidate is right
    smc, mcmc = (next(p for p in pareto.live if p.method == m) for m in ("smc", "mcmc"))
    assert (smc.result.accuracy, smc.tokens) == (1.0, 90)
    assert mcmc.result.accuracy == 0.0 and mcmc.versus_greedy[0] == -1.0
    assert (smc.same_as_greedy, mcmc.same_as_greedy) == (1.0, 0.0)
    assert [p.label for p in pareto_front(pareto.points)] == ["greedy"]


def test_report_only_adds_the_pareto_section_and_plot_and_no_strategies_leaves_it_out(tmp_path: Path) -> None:
    write_caches(tmp_path, 3)
    common = ["--report-only", "--out", str(tmp_path), "--tasks", "arithmetic", "--max-n", "4",
              "--strategy-items", "3", "--subsets", "20"]
    assert quality.main(common) == 0
    text = (tmp_path / "quality.md").read_text()
    assert "## Accuracy versus generated tokens: live strategies" in text
    assert "| smc (n=8) | 100.0 [43.9, 100.0] | +0.0 [+0.0, +0.0] | 90.0 | 18.0x |" in text
    assert "| mcmc (one chain) | 0.0 [0.0, 56.1] |" in text
    assert "No way beats greedy significantly on these 3 items" in text
    assert (tmp_path / "quality_pareto_arithmetic.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "quality_pareto.json").read_text())
    smc = next(p for p in summary["arithmetic"] if p["method"] == "smc")
    assert (smc["accuracy"], smc["mean_generated_tokens"], smc["items"]) == (1.0, 90.0, 3)
    assert quality.main([*common, "--no-strategies"]) == 0
    assert "live strategies" not in (tmp_path / "quality.md").read_text()
