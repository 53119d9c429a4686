"""The serving benchmark's targets and its control run's settings."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.common.servers import WHETSTONE_CPU_ENV, WHETSTONE_CPU_FLAGS
from benchmarks.serving.report import (
    BEST_OF_WAY,
    DEFAULT_WAY,
    GREEDY_WAY,
    MATCHED_VLLM_WAY,
    VLLM_WAY,
    targets,
)
from server.engines.vllm import CPU_BLOCK_TOKENS


def row(way: str, concurrency: int, latency: float, rps: float) -> dict[str, Any]:
    return {"way": way, "concurrency": concurrency, "median_latency_s": latency, "requests_per_s": rps}


def test_targets_compare_with_the_default_vllm_server_and_report_the_control() -> None:
    table = [
        row(VLLM_WAY, 1, 6.0, 0.2), row(MATCHED_VLLM_WAY, 1, 5.0, 0.25), row(BEST_OF_WAY, 1, 1.5, 0.6),
        row(VLLM_WAY, 8, 12.0, 0.5), row(MATCHED_VLLM_WAY, 8, 10.0, 0.6), row(BEST_OF_WAY, 8, 5.0, 0.9),
    ]
    goals = targets(table)
    assert goals["latency_ratio"] == pytest.approx(0.25) and goals["latency_met"]
    assert goals["throughput_ratio"] == pytest.approx(1.8) and not goals["throughput_met"]
    assert goals["against_control"] == pytest.approx({"latency_ratio": 0.3, "throughput_ratio": 1.5})


def test_control_uses_the_engine_settings_whetstone_uses() -> None:
    flags = list(WHETSTONE_CPU_FLAGS)
    assert flags[flags.index("--block-size") + 1] == str(CPU_BLOCK_TOKENS)
    assert "--no-enable-chunked-prefill" in flags
    assert WHETSTONE_CPU_ENV == {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


def test_the_shipped_default_is_compared_with_greedy_and_with_vllm() -> None:
    table = [
        row(VLLM_WAY, 1, 6.0, 0.2), row(GREEDY_WAY, 1, 3.0, 0.3), row(DEFAULT_WAY, 1, 1.5, 0.6),
        row(VLLM_WAY, 8, 12.0, 0.5), row(GREEDY_WAY, 8, 2.0, 3.0), row(DEFAULT_WAY, 8, 2.0, 2.7),
    ]
    found = targets(table)["default"]
    assert found["vs_greedy"] == pytest.approx({"latency_ratio": 0.5, "throughput_ratio": 0.9})
    assert found["vs_vllm"] == pytest.approx({"latency_ratio": 0.25, "throughput_ratio": 5.4})
