"""The dtype rule: what the hardware computes natively decides `auto`, and the tie tolerance follows."""

from __future__ import annotations

import pytest

from server.precision import TIE_TOLERANCE, choose_dtype, cpu_flags, resolve_precision

AMD_EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n\nprocessor\t: 1\n"
INTEL_AMX = "flags\t\t: avx512f avx512_vnni amx_tile amx_bf16 amx_int8\n"
INTEL_NO_BF16 = "flags\t\t: fpu avx2 avx512f avx512_vnni\n"  # the issue-29 host
AVX2_ONLY = "flags\t\t: fpu sse2 avx avx2 fma\n"


@pytest.mark.parametrize(
    ("cpuinfo", "dtype"),
    [(AMD_EPYC, "bfloat16"), (INTEL_AMX, "bfloat16"), (INTEL_NO_BF16, "float32"), (AVX2_ONLY, "float32"),
     ("", "float32")],
)
def test_native_bf16_cpus_get_bfloat16_the_rest_float32(cpuinfo: str, dtype: str) -> None:
    assert choose_dtype(cpu_flags(cpuinfo)).dtype == dtype


def test_the_reason_names_the_flags_that_decided() -> None:
    assert "avx512_bf16" in choose_dtype(cpu_flags(AMD_EPYC)).reason
    assert "emulated" in choose_dtype(cpu_flags(INTEL_NO_BF16)).reason


def test_a_gpu_decides_by_its_own_bf16_support_whatever_the_cpu() -> None:
    assert choose_dtype(cpu_flags(INTEL_NO_BF16), gpu_bf16=True).dtype == "bfloat16"
    assert choose_dtype(cpu_flags(AMD_EPYC), gpu_bf16=False).dtype == "float32"


def test_arm_features_line_is_read() -> None:
    assert cpu_flags("Features\t: fp asimd bf16\n") == {"fp", "asimd", "bf16"}


def test_an_explicit_dtype_is_used_as_given() -> None:
    precision = resolve_precision("float16")
    assert precision.dtype == "float16" and "--dtype" in precision.reason


def test_upstream_mode_does_not_claim_a_dtype_and_ties_widely() -> None:
    precision = resolve_precision("auto", upstream=True)
    assert precision.dtype == "unknown"
    assert precision.tie_tolerance == TIE_TOLERANCE["bfloat16"]


def test_bfloat16_ties_more_widely_than_float32() -> None:
    assert 0 < TIE_TOLERANCE["float32"] < TIE_TOLERANCE["bfloat16"]
