"""One real whetstone server (vLLM engine, embedded model, eager mode) for the whole session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an end-to-end test."""
    for item in items:
        if Path(str(item.fspath)).parent.name == "e2e":
            item.add_marker(pytest.mark.e2e)


@contextmanager
def spawned_server(log_dir: Path, *extra_args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real whetstone server (eager engine, small KV cache) in its own session; stopped after."""
    port = free_port()
    log_path = log_dir / "server.log"
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--enforce-eager",
        "--kv-cache-gib",
        "1",
        "--max-model-len",
        "2048",
        *extra_args,
    ]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, log_path)
        yield url, proc
    finally:
        stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's session, SIGKILL it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no /v1) of a real server on loopback; its log is kept for failures."""
    with spawned_server(tmp_path_factory.mktemp("server")) as (url, _):
        yield url


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll /health until 200; fail with the server log if it dies or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"server not healthy after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared embedded model directory (prepared by `make model`)."""
    from server.embedded import prepare_embedded_model

    return prepare_embedded_model()
