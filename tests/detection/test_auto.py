"""Device features read from recorded /proc/cpuinfo texts, and the ``--precision auto`` rule on each."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectord.detection.auto import DeviceFeatures, choose_precision
from detectord.detection.devices import parse_cpuinfo

AVX2_ONLY = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes \
xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy abm sse4a misalignsse 3dnowprefetch bmi1 avx2 smep bmi2 rdseed adx \
smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr arat npt nrip_save umip rdpid
"""
VNNI = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl \
avx512_vnni arat pku ospke
"""
AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni avx_vnni \
amx_bf16 amx_tile amx_int8 arch_capabilities
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse
"""
ZEN4 = """model name\t: AMD EPYC 9B14
flags\t\t: avx2 avx512f avx512_bf16 avx512_vnni
"""


@pytest.mark.parametrize(
    ("text", "model", "flags"),
    [
        (AVX2_ONLY, "AMD EPYC 7B12", ("avx2",)),
        (VNNI, "Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", ("avx2", "avx512f", "avx512_vnni")),
        (AMX, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
         ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")),
        ("", None, ()),
    ],
)  # fmt: skip
def test_features_are_read_from_the_first_cpu_of_a_recorded_cpuinfo(
    text: str, model: str | None, flags: tuple[str, ...]
) -> None:
    assert parse_cpuinfo(text) == (model, flags)


CALIBRATION = Path("int8.pt")


@pytest.mark.parametrize(
    ("text", "calibration", "expected"),
    [
        (AVX2_ONLY, None, "fp32-fused"),
        (AVX2_ONLY, CALIBRATION, "fp32-fused"),
        (VNNI, None, "fp32-fused"),
        (VNNI, CALIBRATION, "int8-static"),
        (AMX, None, "bf16+channels_last"),
        (AMX, CALIBRATION, "int8-static"),
        (ZEN4, None, "bf16+channels_last"),
        (ZEN4, CALIBRATION, "int8-static"),
    ],
)
def test_auto_picks_the_scheme_the_cpus_features_pay_for(text: str, calibration: Path | None, expected: str) -> None:
    choice = choose_precision(DeviceFeatures("cpu", parse_cpuinfo(text)[1]), calibration)
    assert choice.precision == expected
    assert choice.reason


def test_auto_says_why_and_suggests_a_calibration_where_int8_would_pay() -> None:
    vnni = choose_precision(DeviceFeatures("cpu", parse_cpuinfo(VNNI)[1]))
    assert "calibration" in vnni.reason
    assert "calibration" not in choose_precision(DeviceFeatures("cpu", parse_cpuinfo(AVX2_ONLY)[1])).reason
    assert "amx_bf16" in choose_precision(DeviceFeatures("cpu", parse_cpuinfo(AMX)[1])).reason
    assert "avx512_bf16" in choose_precision(DeviceFeatures("cpu", parse_cpuinfo(ZEN4)[1])).reason


def test_auto_on_cuda_is_float16_whatever_the_cpu() -> None:
    choice = choose_precision(DeviceFeatures("cuda", parse_cpuinfo(AMX)[1], cuda_capability=(9, 0)), CALIBRATION)
    assert choice.precision == "fp16" and "9.0" in choice.reason


def test_ssdlite_people_prefers_bfloat16_to_a_calibration_and_channels_last_everywhere() -> None:
    """bench/ssdlite_schemes.py: int8-static's fidelity on this network was 0.904, bf16+channels_last's 0.978."""
    from detectord.detection.auto import choose_ssdlite_precision

    zen4 = DeviceFeatures("cpu", parse_cpuinfo(ZEN4)[1])
    assert choose_ssdlite_precision(zen4, CALIBRATION).precision == "bf16+channels_last+compiled"
    vnni = DeviceFeatures("cpu", parse_cpuinfo(VNNI)[1])
    assert choose_ssdlite_precision(vnni, CALIBRATION).precision == "int8-static"
    assert choose_ssdlite_precision(vnni).precision == "fp32-fused+channels_last+compiled"
    avx2 = DeviceFeatures("cpu", parse_cpuinfo(AVX2_ONLY)[1])
    assert choose_ssdlite_precision(avx2, CALIBRATION).precision == "fp32-fused+channels_last+compiled"
    cuda = DeviceFeatures("cuda", cuda_capability=(9, 0))
    assert choose_ssdlite_precision(cuda).precision == "fp16"
