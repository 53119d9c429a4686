"""The engine's dtype: `auto` follows what the hardware computes natively, and says why.

The rule itself (`choose_dtype`) is pure: CPU flags and the GPU's bf16 support in, a dtype and
the reason out. `detect_precision` reads them from this host (torch only where an NVIDIA driver
is present). The tie tolerance of selection follows from the dtype in use: scores of the same
tokens move with the batch around them by about that much (benchmarks/precision.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 instructions computing bf16
CPUINFO = Path("/proc/cpuinfo")
NVIDIA_DRIVER = Path("/proc/driver/nvidia")
# the largest gap between two scores of the same tokens that batching caused on the measured
# host, rounded up (benchmarks/results/precision.md: 0.77 nats in bf16, none in float32); unknown
# dtypes get bf16's
TIE_TOLERANCE = {"float32": 0.01, "bfloat16": 1.0}
UNKNOWN_DTYPE_TOLERANCE = TIE_TOLERANCE["bfloat16"]
# how far the score of T tokens may sit from the model's float32 score of the same tokens, as
# (nats per token, nats): float32 matched to 1e-4; bfloat16 was off by up to 0.77 nats over 32
# tokens and 0.51 over 3 under a grammar's mask (docs/api.md#how-exact-a-score-is-and-ties)
SCORE_BOUND = {"float32": (0.002, 0.01), "bfloat16": (0.025, 0.6)}


@dataclass(frozen=True)
class Precision:
    """The dtype the engine runs in and why it was chosen."""

    dtype: str
    reason: str

    @property
    def tie_tolerance(self) -> float:
        """Scores closer than this are ties at this precision."""
        return TIE_TOLERANCE.get(self.dtype, UNKNOWN_DTYPE_TOLERANCE)


def score_drift(dtype: str) -> tuple[float, float]:
    """(nats per token, nats): how far a score computed in `dtype` may be from the float32 one
    (an unknown dtype, e.g. an upstream's, is taken as bfloat16)."""
    return SCORE_BOUND.get(dtype, SCORE_BOUND["bfloat16"])


def score_bound(dtype: str, num_tokens: int) -> float:
    """How far a score of `num_tokens` tokens computed in `dtype` may be from the float32 one."""
    per_token, constant = score_drift(dtype)
    return per_token * num_tokens + constant


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first CPU listed in /proc/cpuinfo's text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def choose_dtype(flags: frozenset[str], gpu_bf16: bool | None = None) -> Precision:
    """bfloat16 where the hardware computes it natively, float32 otherwise.

    `gpu_bf16` is None without a GPU (the CPU's flags decide), else whether the GPU supports bf16.
    """
    if gpu_bf16 is not None:
        if gpu_bf16:
            return Precision("bfloat16", "auto: the GPU computes bfloat16 natively")
        return Precision("float32", "auto: the GPU has no bfloat16 support")
    native = sorted(flags & NATIVE_BF16_FLAGS)
    if native:
        return Precision("bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return Precision(
        "float32",
        "auto: the CPU has no avx512_bf16 or amx_bf16, so bfloat16 would be emulated "
        "(slower for batched decoding, scores further from the model's)",
    )


def gpu_bf16_support() -> bool | None:
    """Whether this host's CUDA GPU supports bf16; None when there is no CUDA GPU."""
    if not NVIDIA_DRIVER.exists():
        return None
    import torch  # only where a GPU may be: importing torch takes seconds

    return bool(torch.cuda.is_bf16_supported()) if torch.cuda.is_available() else None


def detect_precision() -> Precision:
    """The rule applied to this host."""
    try:
        flags = cpu_flags(CPUINFO.read_text())
    except OSError:
        flags = frozenset()
    return choose_dtype(flags, gpu_bf16_support())


def resolve_precision(requested: str, upstream: bool = False) -> Precision:
    """`auto` decided by this host's hardware; any other dtype used as given."""
    if upstream:
        return Precision("unknown", "upstream mode: the upstream servers choose their own dtype")
    if requested == "auto":
        return detect_precision()
    return Precision(requested, "set by --dtype")
