"""The soak's memory watch: the server's resident memory sampled through the run, its growth, a plot."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

SAMPLE_SECONDS = 5.0
VMRSS = re.compile(r"^VmRSS:\s+(\d+) kB", re.M)


def process_rss_mib(pid: int) -> float | None:
    """Resident memory of one process (MiB), None once it is gone."""
    try:
        match = VMRSS.search(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def group_rss_mib(pgid: int | None) -> float | None:
    """Resident memory of every process in a process group (MiB), or None without one."""
    if pgid is None:
        return None
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
        except (OSError, ProcessLookupError):
            continue
        total += process_rss_mib(int(pid)) or 0.0
    return total


@dataclass(frozen=True)
class RssSample:
    """The memory at one moment (time.monotonic()): the HTTP server's process, and its whole group."""

    at: float
    server_mib: float
    group_mib: float


class RssSampler:
    """Samples a server's memory every `interval` seconds in a thread, while the block runs.

    The server leads its own process group: its pid is the group id; the group adds the
    engine's processes.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[RssSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # the state at the end

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        server = process_rss_mib(self.pid)
        if server is not None:
            self.samples.append(RssSample(time.monotonic(), server, group_rss_mib(self.pid) or 0.0))


@dataclass(frozen=True)
class Growth:
    """How the memory moved from the end of warm-up to the end of the run (MiB and percent)."""

    server_start: float
    server_end: float
    group_start: float
    group_end: float

    @property
    def server_percent(self) -> float:
        """The HTTP server process's growth in percent."""
        return 100 * (self.server_end / self.server_start - 1)

    @property
    def group_percent(self) -> float:
        """The whole process group's growth in percent."""
        return 100 * (self.group_end / self.group_start - 1)


def growth(samples: Sequence[RssSample], warm_from: float, window: int = 3) -> Growth:
    """Growth between the mean of the first `window` samples from `warm_from` on and the last `window`."""
    warm = [s for s in samples if s.at >= warm_from] or list(samples)
    first, last = warm[:window], warm[-window:]
    return Growth(
        fmean(s.server_mib for s in first),
        fmean(s.server_mib for s in last),
        fmean(s.group_mib for s in first),
        fmean(s.group_mib for s in last),
    )


def plot_rss(
    samples: Sequence[RssSample],
    started: float,
    marks: dict[str, float],
    warm_from: float,
    path: Path,
) -> None:
    """RSS of the server process and of its group over the run, with the warm-up and `marks` drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [(s.at - started) / 60 for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(minutes, [s.group_mib for s in samples], color="tab:blue")
    top.set_ylabel("process group RSS (MiB)")
    top.set_title("whetstone soak: resident memory (server + engine processes)")
    bottom.plot(minutes, [s.server_mib for s in samples], color="tab:orange")
    bottom.set_ylabel("HTTP server process RSS (MiB)")
    bottom.set_xlabel("minutes since the server started")
    for axis in (top, bottom):
        axis.axvspan(0, (warm_from - started) / 60, color="grey", alpha=0.15, label="start-up and warm-up")
        for (label, at), colour in zip(marks.items(), ("tab:red", "tab:green"), strict=False):
            axis.axvline((at - started) / 60, color=colour, linestyle="--", label=label)
        axis.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
