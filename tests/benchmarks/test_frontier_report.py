"""The frontier report compares each answer with greedy's on the same prompt of the same set."""

import argparse
import random
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.frontier.__main__ import rewrite_report, write_report
from benchmarks.frontier.report import rows
from benchmarks.frontier.ways import Record


def record(way: str, prompt_set: str, prompt: int, logprob: float, latency: float = 1.0) -> Record:
    return Record(way, prompt_set, prompt, latency, logprob, 10, 10, "stop", "text")


def test_greedy_floor_is_per_set_and_prompt_when_sets_are_pooled() -> None:
    pooled = [
        record("greedy", "unseen", 0, -10.0), record("greedy", "fresh", 0, -30.0),
        record("default", "unseen", 0, -20.0, 0.5), record("default", "fresh", 0, -25.0, 0.5),
    ]
    greedy, default = rows(pooled)
    assert default.at_least_greedy == 1  # beats fresh's -30, not unseen's -10
    assert greedy.at_least_greedy is None
    assert default.latency_vs_greedy == 0.5
    assert default.median_logprob == -22.5


def test_latency_ratio_interval_brackets_the_ratio_and_pairs_prompts() -> None:
    records = []
    for i in range(12):
        greedy_latency = 0.5 + 0.1 * i
        records += [record("greedy", "novel", i, -10.0, greedy_latency),
                    record("default", "novel", i, -5.0, 0.8 * greedy_latency)]
    _, default = rows(records)
    assert default.latency_vs_greedy is not None and default.latency_ratio_interval is not None
    low, high = default.latency_ratio_interval
    assert low <= default.latency_vs_greedy <= high
    # every prompt takes exactly 0.8x its greedy latency: resampled in pairs, every draw says 0.8
    # (resampling the two ways independently would spread it over roughly 0.6-1.1)
    assert low == pytest.approx(0.8) and high == pytest.approx(0.8)


def test_latency_ratio_interval_widens_with_noise() -> None:
    rng = random.Random(1)
    records = []
    for i in range(16):
        records += [record("greedy", "novel", i, -10.0, rng.uniform(0.3, 1.5)),
                    record("default", "novel", i, -5.0, rng.uniform(0.3, 1.5))]
    _, default = rows(records)
    assert default.latency_ratio_interval is not None
    low, high = default.latency_ratio_interval
    assert low < default.latency_vs_greedy < high and high - low > 0.2


def test_report_only_rebuilds_the_same_report_from_the_saved_records(tmp_path: Path) -> None:
    records = []
    for i in range(4):
        records += [record("greedy", "novel", i, -10.0 - i, 0.5 + i),
                    record("default", "novel", i, -5.0 - i, 0.4 + i)]
    records = [replace(r, latencies=(r.latency, r.latency + 0.1, r.latency - 0.1)) for r in records]
    args = argparse.Namespace(sets=["novel"], max_tokens=64, repeats=3, out=tmp_path)
    write_report(args, records, [], measured_on="the machine that measured")
    first = (tmp_path / "frontier.md").read_text()
    assert "timed 3 times" in first and "the machine that measured" in first
    assert (tmp_path / "frontier_paired.png").read_bytes().startswith(b"\x89PNG")

    (tmp_path / "frontier.md").unlink()
    rewrite_report(argparse.Namespace(out=tmp_path))
    assert (tmp_path / "frontier.md").read_text() == first
