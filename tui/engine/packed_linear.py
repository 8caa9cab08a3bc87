"""Linear layers whose weights are packed once, at load, into oneDNN's blocked layout (CPU only).

`torch.nn.Linear` on CPU hands oneDNN a plain row-major weight at every call, and oneDNN reorders
or walks it in a layout its kernels do not like; for one token at a time that costs most of a
decode step. Packing the weight once (what torch.compile's freezing pass does for CPU) gives the
same numbers (bf16 bit for bit; fp32 to the last bit, summed in another order), faster.
Measured on the 2-core AVX512-BF16 machine this was built on
(bare generate, greedy): SmolLM2-135M bf16 27.4 -> 33.9 tok/s, fp32 17.7 -> 24.6; SmolLM2-1.7B's
shape in bf16 4.4 -> 6.5 tok/s, with fewer milliseconds of prefill too.

The packed tensor is opaque (an MKLDNN tensor): only these layers can use it. An output layer that
shares its weight with the input embeddings therefore gets its own packed copy, and only when that
copy is small (TIED_COPY_LIMIT_BYTES): on the bundled model it is 57 MB for 8% more tokens a second.
"""

from __future__ import annotations

from typing import Any

# The most memory a packed copy of a tied output layer may add.
TIED_COPY_LIMIT_BYTES = 256 * 2**20

PACKED_DTYPES = ("float32", "bfloat16")


def can_pack(device: str, dtype: str) -> bool:
    """Packing helps CPU float32 and bfloat16 where torch was built with oneDNN."""
    if device != "cpu" or dtype not in PACKED_DTYPES:
        return False
    import torch

    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_class: type | None = None


def packed_linear_class() -> type:
    """The PackedLinear class, one for the process (made on first use: importing this module needs
    no torch; peft's custom-module mapping needs the very class of the layers)."""
    global _class
    if _class is None:
        _class = _packed_linear_class()
    return _class


def is_packed_linear(module: Any) -> bool:
    return _class is not None and isinstance(module, _class)


def _packed_linear_class() -> type:
    import torch

    class PackedLinear(torch.nn.Module):
        """A torch.nn.Linear whose weight is packed for oneDNN; the same outputs, computed faster."""

        weight: torch.Tensor  # buffers, registered in __init__
        bias: torch.Tensor | None

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features = linear.in_features
            self.out_features = linear.out_features
            weight = linear.weight.detach()
            # the batch-size hint is one row: decode steps, which dominate a chat, have one token
            self.register_buffer("weight", torch.ops.mkldnn._reorder_linear_weight(weight, 1), persistent=False)
            bias = None if linear.bias is None else linear.bias.detach()
            self.register_buffer("bias", bias, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, self.in_features)
            if rows.dtype != self.weight.dtype or not rows.is_contiguous():
                rows = rows.to(self.weight.dtype).contiguous()
            out = torch.ops.mkldnn._linear_pointwise(rows, self.weight, self.bias, "none", [], "")
            return out.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed for oneDNN"

    return PackedLinear


def pack_linear_layers(model: Any) -> int:
    """Swap every plain torch.nn.Linear of `model` (not quantized ones) for a packed one; returns
    how many were swapped. Call it after the model is on the CPU in its final dtype."""
    import torch

    packed_class = packed_linear_class()
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    shared = embedding.weight if embedding is not None else None
    count = 0
    with torch.no_grad():
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is not torch.nn.Linear or child.weight.device.type != "cpu":
                    continue
                weight = child.weight
                if shared is not None and weight is shared:
                    if weight.numel() * weight.element_size() > TIED_COPY_LIMIT_BYTES:
                        continue
                setattr(parent, name, packed_class(child))
                count += 1
    return count


def unpack(model: Any, path: str) -> bool:
    """The packed layer at `path` back to a plain torch.nn.Linear with the same weights (to merge
    an adapter into); False when it is not a packed layer."""
    import torch

    module = model.get_submodule(path) if path else model
    if not is_packed_linear(module):
        return False
    linear = torch.nn.Linear(
        module.in_features, module.out_features, bias=module.bias is not None, device="meta", dtype=module.weight.dtype
    )
    linear.weight = torch.nn.Parameter(module.weight.to_dense(), requires_grad=False)
    if module.bias is not None:
        linear.bias = torch.nn.Parameter(module.bias.detach(), requires_grad=False)
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, linear)
    return True
