"""Linear layers on chatui's int4 kernel (int4_kernel.py): weights packed once, at load, in blocks
of 32 with an fp16 scale and minimum each (5 bits a weight), activations quantized to int8 per
block at each call, int8 dot products (VNNI where the CPU has it).

Quality, measured on the real SmolLM2-135M (benchmarks/bench_quality.py): a scale and a minimum
per block keep perplexity within a few percent of the float model, where a scale alone (llama.cpp's
Q4_0) loses about 30% on a model this small. Quantizing the activations to int8 costs nothing
measurable next to the weights' rounding.

The packed tensor is a plain uint8 buffer, so the int4 cache saves and mmaps it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _int4_linear_class() -> type:
    import torch

    class Int4Linear(torch.nn.Module):
        """A torch.nn.Linear whose weight is int4 in chatui's packed layout."""

        packed: torch.nn.Parameter  # uint8, frozen: a parameter so that peft and transformers see the layer's device
        bias: torch.Tensor | None

        def __init__(self, in_features: int, out_features: int, packed: torch.Tensor, bias: Any, dtype: Any) -> None:
            super().__init__()
            self.in_features = in_features
            self.out_features = out_features
            self.dtype = dtype  # what the layer computed in before: its outputs keep it
            self.packed = torch.nn.Parameter(packed, requires_grad=False)
            self.register_buffer("bias", bias, persistent=False)

        @classmethod
        def from_linear(cls, linear: torch.nn.Linear) -> Int4Linear:
            packed = torch.ops.chatui.int4_pack(linear.weight.detach())
            bias = None if linear.bias is None else linear.bias.detach()
            return cls(linear.in_features, linear.out_features, packed, bias, linear.weight.dtype)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.chatui.int4_linear(x, self.packed, self.bias, self.out_features, self.in_features)

        def dequantized(self) -> torch.Tensor:
            """The weights the kernel multiplies by, as floats [out, in] in the layer's dtype."""
            return torch.ops.chatui.int4_unpack(self.packed, self.out_features, self.in_features).to(self.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int4 (chatui kernel)"

    return Int4Linear


_class: type | None = None


def int4_linear_class() -> type:
    """The Int4Linear class (made on first use, so importing this module needs no torch)."""
    global _class
    if _class is None:
        _class = _int4_linear_class()
    return _class


def is_int4_linear(module: Any) -> bool:
    return _class is not None and isinstance(module, _class)


def linear_names(model: Any) -> list[str]:
    """The plain linear layers of `model`, the output layer too, in module order."""
    import torch

    return [name for name, module in model.named_modules() if type(module) is torch.nn.Linear]


def quantize(model: Any, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Swap every plain linear layer of `model` for an Int4Linear; returns their names. A tied
    output layer gets a packed copy of its own (the input embedding stays as it was)."""
    import torch

    cls: Any = int4_linear_class()
    names = linear_names(model)
    with torch.no_grad():
        for done, name in enumerate(names, 1):
            replace(model, name, cls.from_linear(model.get_submodule(name)))
            if progress is not None:
                progress(done, len(names))
    return names


def replace(model: Any, name: str, module: Any) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def packed_state(model: Any, names: list[str]) -> dict[str, Any]:
    """What the int4 cache keeps: each layer's packed bytes (biases stay in the checkpoint)."""
    return {name: model.get_submodule(name).packed for name in names}


def load_packed_state(model: Any, state: dict[str, Any]) -> bool:
    """Put cached packed layers into `model`; False, with `model` untouched, when they do not fit
    (another shape, a layer that is not a plain linear)."""
    import torch

    from tui.engine.int4_kernel import packed_bytes

    cls = int4_linear_class()
    modules = dict(model.named_modules())
    for name, packed in state.items():
        module = modules.get(name)
        if type(module) is not torch.nn.Linear or not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
            return False
        if packed.numel() != packed_bytes(module.out_features, module.in_features):
            return False
    for name, packed in state.items():
        module = modules[name]
        bias = None if module.bias is None else module.bias.detach()
        replace(model, name, cls(module.in_features, module.out_features, packed, bias, module.weight.dtype))
    return True
