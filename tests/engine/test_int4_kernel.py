"""chatui's int4 kernel (tui/engine/kernels/int4_linear.cpp): every ISA path this CPU runs against a
float64 reference read straight from the documented packed layout, odd shapes padded, bad input
refused with a message, the fake implementation torch.compile needs, the build on first use and
the fallback to torchao when it cannot build."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tui.engine import int4_kernel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ops():
    status = int4_kernel.kernel()
    assert status.available, status.reason  # this machine has a compiler and AVX2: it must build
    return torch.ops.chatui


def parse_packed(packed, out_features: int, in_features: int):
    """The packed bytes read as the C++ source documents them: levels q [N, K], scales and
    minimums d, m [N, blocks] (rows padded to 16 and columns to 32 are cut off)."""
    tiles, blocks = -(-out_features // 16), -(-in_features // 32)
    data = packed.view(tiles, blocks, 320)
    nibbles = data[:, :, :256].reshape(tiles, blocks, 4, 16, 4).long()  # chunk i, row n, byte t
    low, high = nibbles & 0x0F, nibbles >> 4  # weights 4i+t and 16+4i+t of the block
    q = torch.cat([low.permute(0, 3, 1, 2, 4), high.permute(0, 3, 1, 2, 4)], dim=3)  # tile, n, block, i', t
    q = q.reshape(tiles * 16, blocks * 32)
    d = data[:, :, 256:288].contiguous().view(torch.float16).permute(0, 2, 1).reshape(tiles * 16, blocks)
    m = data[:, :, 288:320].contiguous().view(torch.float16).permute(0, 2, 1).reshape(tiles * 16, blocks)
    return q[:out_features, :in_features], d[:out_features].double(), m[:out_features].double()


def reference(x, packed, bias, out_features: int, in_features: int):
    """The kernel's arithmetic in float64: activations rounded to int8 per block of 32 (scale
    max|x|/127, ties to even, in float32 as the kernel does), exact integer dot products, the
    minimums times the rounded activations' sum: the dequantized weights times the rounded
    activations."""
    q, d, m = parse_packed(packed, out_features, in_features)
    blocks = d.shape[1]
    rows = torch.zeros(x.reshape(-1, in_features).shape[0], blocks * 32)
    rows[:, :in_features] = x.reshape(-1, in_features).float()
    grouped = rows.view(rows.shape[0], blocks, 32)
    scale = grouped.abs().amax(-1) / 127
    inverse = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    xq = torch.round(grouped * inverse.unsqueeze(-1)).long()
    qb = torch.zeros(out_features, blocks * 32, dtype=torch.long)
    qb[:, :in_features] = q
    dots = torch.einsum("rbk,nbk->rnb", xq, qb.view(out_features, blocks, 32)).double()
    sums = xq.sum(-1).double() * scale.double()
    y = (dots * d * scale.double().unsqueeze(1)).sum(-1) + sums @ m.T
    if bias is not None:
        y = y + bias.double()
    return y.reshape(*x.shape[:-1], out_features)


SHAPES = [(37, 100), (16, 32), (64, 576), (130, 1536)]  # N odd, K padded; exact tiles; model-like


@pytest.mark.parametrize(("out_features", "in_features"), SHAPES)
def test_every_isa_matches_the_layouts_arithmetic(ops, out_features, in_features):
    torch.manual_seed(out_features)
    weight = torch.randn(out_features, in_features) * 0.05
    packed = ops.int4_pack(weight)
    assert packed.numel() == int4_kernel.packed_bytes(out_features, in_features)
    bias = torch.randn(out_features)
    isas = ops.int4_isas()
    assert "scalar" in isas and set(isas) >= {int4_kernel.kernel().isa}
    for rows in (1, 3, 4, 5, 17):  # one token, a partial and a full group of 4, prefill
        x = torch.randn(2, rows, in_features)
        expected = reference(x, packed, bias, out_features, in_features)
        for isa in isas:
            got = ops.int4_linear_isa(x, packed, bias, out_features, in_features, isa)
            assert got.shape == (2, rows, out_features) and got.dtype == torch.float32
            error = float((got.double() - expected).norm() / expected.norm())
            assert error < 1e-5, (isa, rows, error)
    default = ops.int4_linear(x, packed, None, out_features, in_features)
    assert torch.allclose(default, ops.int4_linear_isa(x, packed, None, out_features, in_features, isas[0]))


def test_bf16_in_bf16_out_and_close_to_the_float_matmul(ops):
    torch.manual_seed(1)
    weight = torch.randn(96, 256) * 0.05
    packed = ops.int4_pack(weight)
    x = torch.randn(3, 256, dtype=torch.bfloat16)
    y = ops.int4_linear(x, packed, None, 96, 256)
    assert y.dtype == torch.bfloat16 and y.shape == (3, 96)
    dequantized = ops.int4_unpack(packed, 96, 256)
    exact = x.double() @ dequantized.double().T
    assert float((y.double() - exact).norm() / exact.norm()) < 0.02  # only the activations' int8 rounding


def test_a_bf16_prompt_is_the_dequantized_matmul(ops):
    """Many bf16 rows (a prompt): on a CPU with AMX through the unpacked bf16 weights and oneDNN,
    else the int8 path; either way the matmul of the dequantized weights, to bf16's rounding."""
    torch.manual_seed(3)
    weight = torch.randn(200, 96) * 0.05  # rows not a multiple of 16 are padded in the unpacked copy
    packed = ops.int4_pack(weight)
    bias = torch.randn(200)
    x = torch.randn(2, 40, 96, dtype=torch.bfloat16)  # 80 rows: a prompt
    y = ops.int4_linear(x, packed, bias.bfloat16(), 200, 96)
    assert y.shape == (2, 40, 200) and y.dtype == torch.bfloat16
    exact = x.double() @ ops.int4_unpack(packed, 200, 96).double().T + bias.bfloat16().double()
    assert float((y.double() - exact).norm() / exact.norm()) < 0.01
    with_int8 = ops.int4_linear_isa(x, packed, bias.bfloat16(), 200, 96, int4_kernel.kernel().isa)
    assert float((y.double() - with_int8.double()).norm() / exact.norm()) < 0.02


@pytest.mark.parametrize(
    ("rows", "out_features", "in_features"),
    [
        (21, 300, 2100),  # rows pad to 32; 19 output tiles: two slices of 8 and an odd 3; k in two slices
        (45, 16, 40),  # one tile (paired with zeros), k padded to 64
        (64, 1536, 576),  # SmolLM2-135M's MLP shape
        (1030, 200, 96),  # a long prompt: the whole layer unpacked for oneDNN's GEMM
        (33, 17, 33),  # no bias (below), a 3-D input that is not contiguous
    ],
)
def test_a_prompt_on_any_shape_is_the_dequantized_matmul(ops, rows, out_features, in_features):
    """A prompt's rows go through AMX tiles where the CPU has them (the weights unpacked slice by
    slice into AMX's pair layout; a long prompt through oneDNN): every padding and slice edge
    gives the dequantized matmul."""
    torch.manual_seed(rows)
    weight = torch.randn(out_features, in_features) * 0.05
    packed = ops.int4_pack(weight)
    bias = None if rows == 33 else torch.randn(out_features).bfloat16()
    x = torch.randn(rows, in_features, dtype=torch.bfloat16)
    if rows == 33:
        x = torch.randn(in_features, 3, 11, dtype=torch.bfloat16).permute(1, 2, 0)  # 3 x 11 rows, strided
    y = ops.int4_linear(x, packed, bias, out_features, in_features)
    exact = x.double() @ ops.int4_unpack(packed, out_features, in_features).double().T
    if bias is not None:
        exact = exact + bias.double()
    assert y.shape == (*x.shape[:-1], out_features) and y.dtype == torch.bfloat16
    assert float((y.double() - exact).norm() / exact.norm()) < 0.01
    worst = (y.double() - exact).abs().max() / exact.abs().max()
    assert worst < 0.02  # no row or column left out or shifted
    if has_amx():  # it ran on AMX (or oneDNN): in bf16, not the int8 path's rounded activations
        int8 = ops.int4_linear_isa(x, packed, bias, out_features, in_features, int4_kernel.kernel().isa)
        assert not torch.equal(y, int8)
        assert (y.double() - exact).norm() < (int8.double() - exact).norm()


def has_amx() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and "amx_bf16" in cpuinfo.read_text()


def test_packing_rounds_each_weight_to_the_nearest_of_its_blocks_16_levels(ops):
    torch.manual_seed(2)
    weight = torch.randn(40, 70) * 0.1
    weight[3, :32] = 0.25  # a constant block: no range, kept exactly
    packed = ops.int4_pack(weight)
    q, d, m = parse_packed(packed, 40, 70)
    assert int(q.min()) >= 0 and int(q.max()) <= 15
    step = d.repeat_interleave(32, dim=1)[:, :70]
    base = m.repeat_interleave(32, dim=1)[:, :70]
    unpacked = ops.int4_unpack(packed, 40, 70)
    assert torch.allclose(unpacked.double(), step * q + base, atol=1e-6)
    levels = step.unsqueeze(-1) * torch.arange(16, dtype=torch.float64) + base.unsqueeze(-1)
    nearest = (levels - weight.double().unsqueeze(-1)).abs().argmin(-1)
    assert torch.equal(q, nearest)  # each weight on the nearest level of its block's fit
    assert torch.allclose(unpacked[3, :32], torch.full((32,), 0.25))
    # the fitted levels beat spreading 16 levels over each block's min..max (what Q4_1 does)
    blocks = weight[:, :64].reshape(40, 2, 32)
    lo, hi = blocks.amin(-1, keepdim=True), blocks.amax(-1, keepdim=True)
    width = ((hi - lo) / 15).clamp(min=1e-12)
    plain = (torch.round((blocks - lo) / width).clamp(0, 15) * width + lo).reshape(40, 64)
    weighted = weight[:, :64] ** 2 + (weight[:, :64] ** 2).mean()
    fitted_error = (weighted * (unpacked[:, :64] - weight[:, :64]) ** 2).sum()
    assert fitted_error < (weighted * (plain - weight[:, :64]) ** 2).sum()


def test_bad_input_is_refused_with_a_message(ops):
    packed = ops.int4_pack(torch.randn(16, 64))
    with pytest.raises(RuntimeError, match="the layer takes 64"):
        ops.int4_linear(torch.randn(1, 63), packed, None, 16, 64)
    with pytest.raises(RuntimeError, match="the bias holds 8 values"):
        ops.int4_linear(torch.randn(64, 64, dtype=torch.bfloat16), packed, torch.randn(8).bfloat16(), 16, 64)
    with pytest.raises(RuntimeError, match="sizes must be positive"):
        ops.int4_linear(torch.randn(4, 0, dtype=torch.bfloat16), packed, None, 16, 0)
    with pytest.raises(RuntimeError, match="packed weights hold 640 bytes"):
        ops.int4_linear(torch.randn(1, 64), packed, None, 32, 64)
    with pytest.raises(RuntimeError, match="unknown kernel"):
        ops.int4_linear_isa(torch.randn(1, 64), packed, None, 16, 64, "avx9000")


def test_the_fake_implementation_lets_torch_compile_trace_it(ops):
    packed = ops.int4_pack(torch.randn(24, 64))
    args = (torch.randn(2, 5, 64), packed, torch.randn(24), 24, 64)
    torch.library.opcheck(ops.int4_linear.default, args, test_utils=("test_schema", "test_faketensor"))


def test_an_int4_model_answers_like_its_float_model(ops, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from tui.engine import int4_linear
    from tui.engine.quantization import bytes_read_per_token

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    names = int4_linear.quantize(model)
    assert names and all(int4_linear.is_int4_linear(model.get_submodule(name)) for name in names)
    assert "lm_head" in names
    # the float model with the very weights the kernel uses: only the activations' rounding differs
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for name in names:
            reference.get_submodule(name).weight = torch.nn.Parameter(model.get_submodule(name).dequantized())
    ids = torch.tensor([[1, 5, 9, 13, 200, 31, 7]])
    with torch.inference_mode():
        got, expected = model(ids).logits, reference(ids).logits
    assert float((got - expected).norm() / expected.norm()) < 0.03
    # a decode step reads the packed layers and one row of the embedding, not the whole embedding
    embedding = model.get_input_embeddings().weight
    packed = sum(model.get_submodule(name).packed.numel() for name in names)
    others = sum(
        p.numel() * p.element_size() for p in model.parameters() if p is not embedding and p.dtype != torch.uint8
    )
    others += sum(b.numel() * b.element_size() for b in model.buffers())  # rotary
    assert bytes_read_per_token(model) == packed + others


def test_the_build_and_cache_folder_follow_the_torch_version(monkeypatch):
    first = int4_kernel.build_dir()
    monkeypatch.setattr(torch, "__version__", "9.9.9+test")
    assert int4_kernel.build_dir() != first and "9.9.9" in int4_kernel.build_dir().name


def test_without_a_compiler_int4_runs_on_torchao_and_says_so(monkeypatch, tmp_path, tiny_model_dir):
    from tui.engine import Engine, Finished, GenerationSettings, LoadSettings, int4_cache

    monkeypatch.setattr(int4_kernel, "build_dir", lambda: tmp_path / "kernels")  # nothing built there
    monkeypatch.setattr(int4_kernel, "_already_registered", lambda: False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(int4_cache, "cache_dir", lambda: tmp_path / "cache")
    int4_kernel.reset_for_tests()
    engine = Engine()
    try:
        info = engine.load(LoadSettings(model=str(tiny_model_dir), quantization="int4", dtype="float32")).result()
        assert any("torchao's slower kernel: no C++ compiler" in warning for warning in info.warnings), info.warnings
        head = engine.loaded.model.get_output_embeddings()
        assert "Int4" in type(head.weight).__name__  # torchao's tensor subclass
        settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 4})
        final = engine.generate([{"role": "user", "content": "hi"}], settings).wait()
        assert isinstance(final, Finished) and final.metrics.new_tokens == 4
    finally:
        engine.close()
        int4_kernel.reset_for_tests()


def test_torchao_can_be_asked_for(monkeypatch):
    from tui.engine.quantization import int4_backend

    monkeypatch.setenv("CHATUI_INT4_KERNEL", "torchao")
    int4_kernel.reset_for_tests()
    try:
        assert int4_kernel.build_problem() == "CHATUI_INT4_KERNEL=torchao is set"
        assert int4_backend() == ("torchao", "CHATUI_INT4_KERNEL=torchao is set")
    finally:
        monkeypatch.delenv("CHATUI_INT4_KERNEL")
        int4_kernel.reset_for_tests()
    assert int4_backend() == ("chatui", "")


def test_the_first_use_builds_with_a_line_and_the_second_only_loads(tmp_path):
    """A fresh cache folder, in fresh processes (a library loads once per process)."""
    script = textwrap.dedent(
        """
        from tui.engine import int4_kernel
        lines = []
        status = int4_kernel.kernel(lines.append)
        print("RESULT", status.available, status.built, status.isa, len(lines), lines[:1])
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    results = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=280)
        result = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
        assert result, done.stderr[-2000:]
        results.append(result[0])
    assert results[0].startswith("RESULT True True") and "building chatui's int4 kernel" in results[0]
    assert results[1].startswith("RESULT True False") and results[1].endswith(" 0 []")
    assert [path.name for path in (tmp_path / "chatui" / "kernels").iterdir()] == [int4_kernel.build_dir().name]
