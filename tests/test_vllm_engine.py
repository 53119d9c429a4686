"""The CPU-specific engine defaults (no engine is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm.engine.arg_utils import AsyncEngineArgs

from server.engines.vllm import CPU_BLOCK_TOKENS, for_cpu, use_every_core


def test_small_kv_blocks_unless_the_user_chose_a_block_size(tmp_path: Path) -> None:
    # a local directory: with HF_HUB_OFFLINE set, vLLM resolves any other model name in the hub cache
    args = AsyncEngineArgs(model=str(tmp_path), enable_chunked_prefill=True)
    keeps_chunking = {"enable_chunked_prefill"}
    assert for_cpu(args, keeps_chunking).block_size == CPU_BLOCK_TOKENS
    assert for_cpu(args, keeps_chunking | {"block_size"}) == args


@pytest.mark.parametrize(
    ("cpus", "workers", "expected"),
    [({0, 1}, 1, True), ({0, 1, 2, 3}, 1, True), ({0, 1}, 2, False), (set(range(8)), 1, False)],
)
def test_every_core_computes_on_small_single_worker_machines(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], workers: int, expected: bool
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: cpus)
    assert use_every_core(workers) is expected
