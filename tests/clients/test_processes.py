"""free_port: below the kernel's ephemeral range, never a port that is taken."""

import socket
from pathlib import Path

import pytest

from clients import processes


def bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_ports_come_from_below_the_ephemeral_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("40000\t60999\n")
    monkeypatch.setattr(processes, "EPHEMERAL_PORTS", ranges)
    ports = {processes.free_port() for _ in range(20)}
    assert all(processes.QUIET_PORTS_FROM <= port < 40000 and bindable(port) for port in ports)
    assert len(ports) > 1  # drawn at random, so parallel servers rarely meet


def test_a_taken_port_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(processes, "quiet_ports", lambda: range(port, port + 1))
        other = processes.free_port()  # the only quiet port is taken: the kernel picks one
        assert other != port and bindable(other)


def test_no_room_falls_back_to_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("1024 65535\n")
    monkeypatch.setattr(processes, "EPHEMERAL_PORTS", ranges)
    assert processes.quiet_ports() == range(processes.QUIET_PORTS_FROM, processes.QUIET_PORTS_FROM)
    assert bindable(processes.free_port())
