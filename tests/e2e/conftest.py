"""One real whetstone server (vLLM engine, embedded model, eager mode) for the whole session."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from clients.processes import free_port, spawned_process

STARTUP_TIMEOUT_S = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an end-to-end test."""
    for item in items:
        if Path(str(item.fspath)).parent.name == "e2e":
            item.add_marker(pytest.mark.e2e)


@contextmanager
def spawned_server(
    log_path: Path, *extra_args: str, dtype: str = "float32"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real whetstone server (eager engine, small KV cache) in its own process group; stopped after.

    float32 by default: the tests compare scores with float32 references and across batches, which
    bfloat16 does not reproduce on every CPU (docs/api.md#how-exact-a-score-is-and-ties); and no tie
    tolerance, so selection is checked against the exact best score (tests/sharpening test ties).
    """
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--enforce-eager",
               "--kv-cache-gib", "1", "--max-model-len", "2048", "--dtype", dtype, "--tie-tolerance", "0",
               *extra_args]
    url = f"http://127.0.0.1:{port}"
    with spawned_process(command, url, log_path, startup_timeout=STARTUP_TIMEOUT_S) as proc:
        yield url, proc


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no /v1) of a real server on loopback; its log is kept for failures."""
    with spawned_server(tmp_path_factory.mktemp("server") / "server.log") as (url, _):
        yield url


@pytest.fixture(scope="session")
def served_dtype(server_url: str) -> str:
    """The dtype the session's server computes in (its /health): score tolerances follow from it."""
    return str(httpx.get(f"{server_url}/health", timeout=30).json()["dtype"])


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared embedded model directory (prepared by `make model`)."""
    from server.embedded import prepare_embedded_model

    return prepare_embedded_model()
