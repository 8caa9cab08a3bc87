"""What `auto` means on this machine and on others: the checkpoint's dtype where the device
computes it natively (bf16 on CPUs with bf16 instructions), fp32 otherwise."""

from __future__ import annotations

import pytest

from tui.engine import hardware


@pytest.mark.parametrize(
    "native, checkpoint, expected",
    [
        (True, "bfloat16", "bfloat16"),  # a bf16 chat model on a CPU with AVX512-BF16
        (True, None, "bfloat16"),  # the bundled GGUF: dequantized, bf16 where it is fast
        (True, "float16", "bfloat16"),  # fp16 is not native on CPUs: bf16 keeps its range
        (True, "float32", "float32"),  # the checkpoint's own dtype
        (False, "bfloat16", "float32"),  # no bf16 instructions: emulated bf16 is slow
        (False, None, "float32"),
    ],
)
def test_auto_dtype_on_cpu(monkeypatch, native, checkpoint, expected):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    assert hardware.pick_dtype("auto", "cpu", checkpoint) == expected
    assert hardware.pick_dtype("float16", "cpu", checkpoint) == "float16"  # asked for: as asked


def test_this_cpu_is_read_right():
    flags = open("/proc/cpuinfo").read().split()
    assert hardware.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags or "bf16" in flags)


def test_options_that_cannot_work_say_why(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("torchao", "bitsandbytes") else real(name, *a)
    )
    reasons = hardware.unavailable_options()
    assert "quantization:int4" not in reasons  # chatui's own kernel needs no torchao
    from tui.engine import int4_kernel

    monkeypatch.setattr(int4_kernel, "build_problem", lambda: "no C++ compiler (c++) to build chatui's int4 kernel")
    reasons = hardware.unavailable_options()
    assert reasons["quantization:int4"] == (
        "no C++ compiler (c++) to build chatui's int4 kernel, and torchao is not installed (pip install torchao)"
    )
    assert reasons["quantization:bnb-4bit"] == reasons["quantization:bnb-8bit"] == "bitsandbytes is not installed"
