"""What this machine computes fast: the device to use, whether its CPU does bf16 natively, the
dtype `auto` means, and the load options that cannot work here (each with the reason)."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
from functools import cache
from pathlib import Path

from tui.engine.errors import LoadError


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise LoadError("device cuda: no CUDA GPU is available to torch on this machine")
    if requested == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise LoadError("device mps: Apple Metal (MPS) is not available on this machine")
    return requested


@cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 in hardware (x86: AVX512-BF16 or AMX; Arm: FEAT_BF16). Without
    it torch emulates bf16 and it is slower than fp32 (measured on an older machine: prefill 3-5x)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            flags = cpuinfo.read_text(errors="replace").split()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags or "bf16" in flags  # "bf16": Arm Linux
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        try:
            answer = subprocess.run(
                ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return False
        return answer == "1"
    return False


def pick_dtype(requested: str, device: str, checkpoint: str | None) -> str:
    """What `auto` means, as in transformers (the checkpoint's dtype; bf16 for most chat models)
    where the device computes it natively: on CUDA bf16 where supported, else fp16; on CPU bf16
    when the CPU has bf16 instructions, fp32 otherwise (and for an fp32 checkpoint). `checkpoint`
    is None for a GGUF, which is dequantized: bf16 where that is the fast choice."""
    import torch

    if requested != "auto":
        return requested
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    if checkpoint == "float32" or not cpu_has_native_bf16():
        return "float32"
    return "bfloat16"


def unavailable_options() -> dict[str, str]:
    """Load options that cannot work on this machine, each with the reason."""
    import torch

    reasons: dict[str, str] = {}
    if not torch.cuda.is_available():
        reasons["device:cuda"] = "no CUDA GPU"
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        reasons["device:mps"] = "no Apple GPU"
    # find_spec, not import: importing bitsandbytes costs ~1.5 s, paid only when quantizing
    if importlib.util.find_spec("bitsandbytes") is None:
        reasons["quantization:bnb-8bit"] = reasons["quantization:bnb-4bit"] = "bitsandbytes is not installed"
    if torch.cuda.is_available():
        reasons["quantization:int4"] = "int4 is a CPU kernel: on CUDA use bnb-4bit"
    elif importlib.util.find_spec("torchao") is None:
        from tui.engine.int4_kernel import build_problem

        problem = build_problem()  # cheap checks: the platform, a built library, a compiler
        if problem:
            reasons["quantization:int4"] = f"{problem}, and torchao is not installed (pip install torchao)"
    if importlib.util.find_spec("flash_attn") is None:
        reasons["attn_implementation:flash_attention_2"] = "flash-attn is not installed"
    return reasons


def explain_dtype(device: str) -> tuple[str, str]:
    """The dtype `auto` picks for a bf16 checkpoint on `device`, and why (for `chatui --doctor`)."""
    import torch

    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bfloat16", "the GPU computes bf16 natively"
        return "float16", "the GPU has no native bf16; fp16 halves the bytes read per token against fp32"
    if device == "mps":
        return "float16", "Apple GPUs compute fp16 natively"
    if cpu_has_native_bf16():
        return "bfloat16", "the CPU computes bf16 in hardware (AVX512-BF16/AMX or Arm BF16): half the bytes of fp32"
    return "float32", "the CPU has no bf16 instructions; torch would emulate bf16, slower than fp32"
