"""What every benchmark shares about where it runs: the machine's description and the log setup."""

from __future__ import annotations

import logging
import os
import platform
import shutil
from pathlib import Path

from server.precision import CPUINFO, NATIVE_BF16_FLAGS, cpu_flags, detect_precision


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, if readable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def bf16_support() -> str:
    """Whether this CPU computes bfloat16 natively, with the flags that say so."""
    try:
        native = sorted(cpu_flags(CPUINFO.read_text()) & NATIVE_BF16_FLAGS)
    except OSError:
        return "bf16 support unknown"
    return f"native bf16 ({', '.join(native)})" if native else "no native bf16"


def machine(dtype: str | None = None) -> str:
    """A one-line description of this machine and the dtype served (None: the server's `auto` here)."""
    gpu = "an NVIDIA GPU" if shutil.which("nvidia-smi") else "no GPU"
    served = dtype or f"auto = {detect_precision().dtype}"
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu_model()}, {bf16_support()}), "
            f"{platform.system()} {platform.release()}, {gpu}, dtype {served}")


def log_progress() -> None:
    """Log benchmark progress at INFO, without httpx's line per request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
