"""What every benchmark shares about where it runs: the machine's description and the log setup."""

from __future__ import annotations

import logging
import os
import platform
import shutil
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, if readable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine() -> str:
    """A one-line description of this machine."""
    gpu = "an NVIDIA GPU" if shutil.which("nvidia-smi") else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu_model()}), "
            f"{platform.system()} {platform.release()}, {gpu}")


def log_progress() -> None:
    """Log benchmark progress at INFO, without httpx's line per request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
