"""Child server processes: start one in its own process group, wait until /health answers 200,
stop the whole group on exit (engine workers included).

    with spawned(command, f"http://127.0.0.1:{port}", log_path) as url:
        ...  # the server answers GET /health with 200 here; on exit it and its children are gone

Used by `whetstone sharpen-sft` (a server to collect from, without --url), the benchmarks and the
end-to-end tests.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from clients.errors import WhetstoneError

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 900.0
STOP_TIMEOUT = 60.0
LEFTOVER_TIMEOUT = 15.0
POLL_INTERVAL = 2.0
LOG_TAIL_LINES = 20
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
QUIET_PORTS_FROM = 10000
PORT_TRIES = 64


class ServerStartError(WhetstoneError):
    """The child server exited, or did not answer /health in time."""


def free_port() -> int:
    """A loopback TCP port that is free now and that the kernel will not hand out meanwhile.

    A whetstone server binds its port only after its engine has started, seconds later. A port
    from the kernel's ephemeral range could by then be taken by an outgoing connection or a
    port-0 bind (vLLM's own sockets), so the port is drawn below that range where there is room.
    """
    candidates = quiet_ports()
    for port in random.sample(candidates, min(PORT_TRIES, len(candidates))):
        with socket.socket() as probe, suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port
    with socket.socket() as probe:  # no quiet port free: any port the kernel gives
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def quiet_ports() -> range:
    """Unprivileged ports below the kernel's ephemeral range (empty when that range starts low)."""
    try:
        ephemeral_low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default
    return range(QUIET_PORTS_FROM, max(QUIET_PORTS_FROM, ephemeral_low))


@contextmanager
def spawned(
    command: Sequence[str],
    url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[str]:
    """`spawned_process`, yielding the server's URL."""
    with spawned_process(command, url, log_path, env, startup_timeout):
        yield url


@contextmanager
def spawned_process(
    command: Sequence[str],
    url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group (its pid is the group id) until `url`/health answers
    200; stop the group on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with log_path.open("w", encoding="utf-8") as server_log:
        log.info("starting %s (log: %s)", " ".join(command), log_path)
        process = subprocess.Popen(
            list(command),
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # its own process group: children are stopped with it
        )
        previous = exit_on_sigterm()
        try:
            wait_until_healthy(url, process, log_path, startup_timeout)
            yield process
        finally:
            stop_process_group(process)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def exit_on_sigterm() -> Any:
    """Make SIGTERM raise SystemExit so the server is stopped (not orphaned); returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, leave)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a server log, for error messages."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = STARTUP_TIMEOUT
) -> None:
    """Poll GET /health until it answers 200; fail when the process exits or the wait is too long."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=5.0) as http:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise ServerStartError(
                    f"the server exited with {process.returncode}; see {log_path}:\n{log_tail(log_path)}"
                )
            try:
                if http.get("/health").status_code == 200:
                    log.info("server ready after %.0f s", time.monotonic() - started)
                    return
            except httpx.TransportError:  # not listening yet
                pass
            time.sleep(POLL_INTERVAL)
    raise ServerStartError(f"the server did not become healthy in {timeout:.0f} s; see {log_path}")


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Interrupt the server's group (a graceful engine shutdown), then kill whatever is left of it."""
    pgid = process.pid  # start_new_session made the server the leader of its own group
    if process.poll() is None:
        # Like Ctrl-C in a terminal: the whole group (API server, engine core, workers) is interrupted,
        # which also stops a server that is still starting up.
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the server did not stop in %.0f s; killing its process group", timeout)
            os.killpg(pgid, signal.SIGKILL)
            process.wait()
            return
    deadline = time.monotonic() + LEFTOVER_TIMEOUT
    while group_alive(pgid) and time.monotonic() < deadline:  # engine-core children exiting
        time.sleep(0.5)
    if group_alive(pgid):
        log.warning("processes of the server's group outlived it; killing them")
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
