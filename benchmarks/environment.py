"""A one-line description of the machine a benchmark ran on, for its report."""

from __future__ import annotations

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
