"""LoRA adapters (peft) on chatui's int4 layers (int4_linear.py), unmerged: the base layer keeps
its packed weights and the adapter's update is added to its output, as peft does on torchao's or
bitsandbytes' layers. peft does not know the layer type, so it is registered through LoraConfig's
custom-module mapping, with peft's own LoRA Linear doing the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.engine import int4_linear


def _lora_class() -> type:
    from peft.tuners.lora.layer import Linear

    class Int4LoraLinear(Linear):
        """peft's LoRA Linear on an Int4Linear: sizes from the layer (it has no float weight)."""

        def _get_in_out_features(self, module: Any) -> tuple[int, int]:
            return module.in_features, module.out_features

    return Int4LoraLinear


def peft_config(folder: Path, model: Any) -> Any:
    """The adapter's LoraConfig with chatui's int4 layers registered, or None when `model` has
    none (peft reads the config itself then)."""
    if not any(int4_linear.is_int4_linear(module) for module in model.modules()):
        return None
    from peft import PeftConfig

    config: Any = PeftConfig.from_pretrained(str(folder))  # a LoraConfig (adapters.py accepts only LoRA)
    config._register_custom_module({int4_linear.int4_linear_class(): _lora_class()})
    return config
