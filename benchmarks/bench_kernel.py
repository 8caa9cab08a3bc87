"""chatui's int4 kernel alone: for each linear shape of SmolLM2-1.7B and Qwen2.5-1.5B, one token
(decode) through the kernel on every ISA path this CPU runs and through torchao's int4 CPU kernel
(aten's `_weight_int4pack_mm_for_cpu`, what int4 used before), as the bytes of weights read per
second against the memory bandwidth measured in the same run (torch summing 1 GiB: a read, as a
decode step's weights are). Then a 64-token prefill per shape against bf16's matmul (oneDNN).

Weights rotate over enough copies (over 1 GiB) that each call reads them from memory, not from
the caches. Figures and ratios from one run, medians of 5; no pass/fail.

    python benchmarks/bench_kernel.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (in, out) of each linear layer kind: attention q/o, k/v, MLP up/gate, MLP down, the output layer
SHAPES = {
    "smollm2-1.7b": [(2048, 2048), (2048, 8192), (8192, 2048), (2048, 49152)],
    "qwen2.5-1.5b": [(1536, 1536), (1536, 256), (1536, 8960), (8960, 1536), (1536, 151936)],
}
ROTATE_BYTES = 1.2e9
PREFILL_TOKENS = 64


def median_seconds(call, repeats: int) -> float:
    for _ in range(2):
        call()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            call()
        times.append((time.perf_counter() - started) / repeats)
    return statistics.median(times)


def read_bandwidth() -> float:
    import torch

    data = torch.rand(2**28)
    return 2**28 * 4 / median_seconds(data.sum, 3)


def torchao_layers(weight, copies: int):
    """torchao's int4 (group 32) packing of `weight`, `copies` times, or None without torchao."""
    import torch

    try:
        from torchao.quantization import quantize_

        from tui.engine.quantization import _torchao_int4_config
    except ImportError:
        return None
    layers = []
    for _ in range(copies):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.bfloat16)
        linear.weight.data.copy_(weight)
        quantize_(linear, _torchao_int4_config())
        layers.append(linear)
    return layers


def decode_line(ops, isas: list[str], in_features: int, out_features: int, bandwidth: float) -> str:
    import torch

    from tui.engine import int4_kernel

    weight = (torch.randn(out_features, in_features) * 0.02).to(torch.bfloat16)
    size = int4_kernel.packed_bytes(out_features, in_features)
    copies = max(2, int(ROTATE_BYTES // size))
    packed = [ops.int4_pack(weight) for _ in range(copies)]
    x = torch.randn(1, in_features, dtype=torch.bfloat16)
    turn = [0]

    def ours(isa: str) -> None:
        turn[0] = (turn[0] + 1) % copies
        ops.int4_linear_isa(x, packed[turn[0]], None, out_features, in_features, isa)

    figures = []
    for isa in isas:
        seconds = median_seconds(lambda isa=isa: ours(isa), 10)
        figures.append(f"{isa} {size / seconds / 1e9:5.1f} ({size / seconds / bandwidth:4.0%})")
    packed.clear()  # memory back before torchao's copies
    theirs = torchao_layers(weight, max(2, copies // 2))
    if theirs is not None:
        their_bytes = out_features * in_features // 2 + out_features * (in_features // 32) * 4

        def torchao_call() -> None:
            turn[0] = (turn[0] + 1) % len(theirs)
            theirs[turn[0]](x)

        seconds = median_seconds(torchao_call, 10)
        figures.append(f"torchao {their_bytes / seconds / 1e9:5.1f} ({their_bytes / seconds / bandwidth:4.0%})")
    return f"  {in_features:>5} -> {out_features:<6} " + "  ".join(figures)


def prefill_line(ops, in_features: int, out_features: int) -> str:
    import torch

    weight = (torch.randn(out_features, in_features) * 0.02).to(torch.bfloat16)
    packed = ops.int4_pack(weight)
    rows = torch.randn(PREFILL_TOKENS, in_features, dtype=torch.bfloat16)
    int4_s = median_seconds(lambda: ops.int4_linear(rows, packed, None, out_features, in_features), 3)
    bf16_s = median_seconds(lambda: torch.nn.functional.linear(rows, weight), 3)
    return (
        f"  {in_features:>5} -> {out_features:<6} int4 {int4_s * 1e3:7.2f}  bf16 {bf16_s * 1e3:7.2f}  "
        f"= {int4_s / bf16_s:4.2f} x"
    )


def main() -> None:
    import torch

    from tui.engine import int4_kernel

    status = int4_kernel.kernel(print)
    if not status.available:
        print(f"chatui's int4 kernel is not usable here: {status.reason}")
        return
    ops = torch.ops.chatui
    isas = [isa for isa in ops.int4_isas() if isa != "scalar"]
    bandwidth = read_bandwidth()
    threads = torch.get_num_threads()
    print(f"memory bandwidth (read, torch sum over 1 GiB, {threads} threads): {bandwidth / 1e9:.1f} GB/s")
    print(f"kernel paths this CPU runs: {', '.join(isas)} (the first is used)")
    for model, shapes in SHAPES.items():
        print(f"== {model}: one token (GB/s of weights read, share of the bandwidth)")
        for in_features, out_features in shapes:
            print(decode_line(ops, isas, in_features, out_features, bandwidth), flush=True)
        print(f"== {model}: {PREFILL_TOKENS}-token prefill (ms per layer; int4 / bf16)")
        for in_features, out_features in shapes:
            print(prefill_line(ops, in_features, out_features), flush=True)


if __name__ == "__main__":
    main()
