"""Quantization, named as `transformers serve` names it: `int4` (weight-only int4 on CPU),
`bnb-8bit` and `bnb-4bit` (bitsandbytes; they run on CPU too, slowly).

int4 is applied after the load, on the torch thread, a few layers at a time so the load's
progress bar moves. It runs on chatui's own kernel (int4_kernel.py, int4_linear.py: int8 dot
products on int4 weights with a scale and a minimum per 32) where that builds and the CPU has AVX2,
else on torchao's `PrototypeInt4WeightOnlyConfig` (aten's int4 CPU kernel), said in one line.
torchao's int8 paths are slower than bf16 here, so they are not offered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tui.engine import int4_cache, int4_kernel, int4_linear
from tui.engine.errors import LoadError
from tui.engine.sources import one_line

# Weights per scale in int4. Chosen by measured quality (benchmarks/bench_quality.py: perplexity
# of the real SmolLM2-135M on a fixed text, and agreement with fp32 over 200 greedy tokens): 32
# keeps the most, at a little more memory than 64 or 128. It divides the hidden sizes of the
# usual chat models (576, 1536, 2048, 3072, 4096, 8960 ...), so every linear layer is quantized.
INT4_GROUP_SIZE = 32

Progress = Callable[[int, int], None]


def check_quantization(quantization: str, device: str) -> None:
    """Raise LoadError, with the reason, when `quantization` cannot run here."""
    if quantization == "none":
        return
    if device == "mps":
        raise LoadError(f"quantization {quantization} does not run on mps; choose cpu or cuda")
    if quantization == "int4":
        if device != "cpu":
            raise LoadError(f"quantization int4 is a CPU kernel here; on {device} use bnb-4bit (or bnb-8bit)")
        kernel_problem = int4_kernel.build_problem()
        if kernel_problem:
            try:
                import torchao  # noqa: F401 - first: a submodule already imported would not fail

                _torchao_int4_config()
            except Exception as exc:  # ImportError, or a build that does not match torch
                raise LoadError(
                    f"quantization int4 needs chatui's kernel ({kernel_problem}) or torchao, which is not usable "
                    f"here: {one_line(exc)} (pip install torchao)"
                ) from exc
        return
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # ImportError, or a backend that fails to initialise
        raise LoadError(
            f"quantization {quantization} needs bitsandbytes, which is not usable here: {one_line(exc)}"
        ) from exc


def transformers_config(quantization: str, dtype: str) -> Any:
    """The quantization_config for from_pretrained (bitsandbytes), or None (none, or int4: applied
    after the load)."""
    if not quantization.startswith("bnb-"):
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "bnb-8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_compute_dtype=getattr(torch, dtype), bnb_4bit_quant_type="nf4"
    )


def bytes_per_parameter(quantization: str, dtype: str) -> float:
    """Memory a weight takes at its peak during the load: int4 is quantized from the loaded
    dtype, so the load needs that much first."""
    if quantization == "bnb-8bit":
        return 1
    if quantization == "bnb-4bit":
        return 0.5
    return {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)


def _torchao_int4_config() -> Any:
    from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

    return PrototypeInt4WeightOnlyConfig(group_size=INT4_GROUP_SIZE)


def int4_backend(announce: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Which kernel int4 runs on: ("chatui", "") when chatui's own builds (the first time, with a
    line to `announce`) and this CPU runs it, else ("torchao", why not)."""
    status = int4_kernel.kernel(announce)
    return ("chatui", "") if status.available else ("torchao", status.reason)


def packed_format(backend: str) -> str:
    """The int4 cache's name for the weights `backend` quantizes to."""
    return int4_kernel.PACKED_FORMAT if backend == "chatui" else int4_cache.TORCHAO


def quantize_int4(model: Any, progress: Progress | None = None, backend: str = "") -> list[str]:
    """Quantize every linear layer of `model` (the output layer too) to int4 on `backend`
    ("chatui" or "torchao"; the best usable one when not given), a few layers at a time so
    `progress(done, total)` moves; returns the quantized layers' names."""
    if not backend:
        backend, _ = int4_backend()
    if backend == "chatui":
        status = int4_kernel.kernel()  # loaded once per process (built once per machine)
        if not status.available:
            raise LoadError(f"int4 cannot use chatui's kernel: {status.reason}")
        return int4_linear.quantize(model, progress)
    return _quantize_int4_torchao(model, progress)


def _quantize_int4_torchao(model: Any, progress: Progress | None = None) -> list[str]:
    import torch
    from torchao.quantization import quantize_

    config = _torchao_int4_config()
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.in_features % INT4_GROUP_SIZE == 0
    ]
    step = max(1, len(names) // 20)
    for start in range(0, len(names), step):
        chunk = set(names[start : start + step])
        quantize_(model, config, filter_fn=lambda module, fqn, chunk=chunk: fqn in chunk)
        if progress is not None:
            progress(min(start + step, len(names)), len(names))
    return names


def weight_bytes(model: Any) -> int:
    """Bytes the model's parameters and buffers hold, each storage once (tied weights share one).
    transformers' get_memory_footprint counts a quantized tensor subclass (torchao int4) as if it
    held its logical shape in bf16; this looks inside it to the packed data and scales."""
    seen: set[tuple[int, int]] = set()

    def count(tensor: Any) -> int:
        if hasattr(tensor, "__tensor_flatten__") and type(tensor).__name__ not in ("Parameter", "Tensor"):
            names, _ = tensor.__tensor_flatten__()
            return sum(count(getattr(tensor, name)) for name in names)
        if tensor.is_mkldnn:  # packed for oneDNN (packed_linear.py): no storage to look at
            return tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if tensor.device.type == "meta" or key in seen:
            return 0
        seen.add(key)
        return storage.nbytes()

    tensors = list(model.parameters()) + list(model.buffers())
    return sum(count(tensor) for tensor in tensors)


def bytes_read_per_token(model: Any) -> int:
    """Bytes of weights one decoded token reads: every weight (`weight_bytes`) but an input
    embedding the output layer does not share, of which a token reads one row. (A tied output
    layer packed for oneDNN, packed_linear.py, holds a copy of its own: the embedding is then
    read one row a token too.)"""
    total = weight_bytes(model)
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    embedding_weight = getattr(embedding, "weight", None)
    output_weight = getattr(output, "weight", None)
    if int4_linear.is_int4_linear(output):
        output_weight = output.packed  # its own packed copy, never the embedding's storage
    if embedding_weight is None or output_weight is None or embedding_weight is output_weight:
        return total
    return total if _same_storage(embedding_weight, output_weight) else max(total - weight_bytes(embedding), 0)


def _same_storage(a: Any, b: Any) -> bool:
    """Whether two weights are one tensor's memory. A packed (mkldnn) or quantized one (torchao's
    int4 is a tensor subclass without a plain storage) is a copy of its own."""
    import torch

    plain = (torch.Tensor, torch.nn.Parameter)
    if type(a) not in plain or type(b) not in plain or a.is_mkldnn or b.is_mkldnn:
        return False
    try:
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())
    except RuntimeError:  # a storage torch cannot point at: not shared
        return False
