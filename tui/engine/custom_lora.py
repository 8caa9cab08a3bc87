"""LoRA adapters (peft) on chatui's own layers, unmerged: the int4 layers (int4_linear.py) and
the oneDNN-packed ones (packed_linear.py). The base layer keeps its packed weights and the
adapter's update is added to its output, as peft does on torchao's or bitsandbytes' layers. peft
does not know these layer types, so they are registered through LoraConfig's custom-module
mapping, with peft's own LoRA Linear doing the work.

Wrapping a packed layer as it is, rather than unpacking it first, saves the unpacking (1.2 s of a
2.05 s adapter load at the SmolLM2-1.7B shape) and keeps the packed layer's speed under the
adapter. Merging needs plain weights: adapter_control.py unpacks the adapted layers then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.engine import int4_linear, packed_linear


def _lora_class() -> type:
    from peft.tuners.lora.layer import Linear

    class CustomLoraLinear(Linear):
        """peft's LoRA Linear on a layer with no float weight: sizes from the layer."""

        def _get_in_out_features(self, module: Any) -> tuple[int, int]:
            return module.in_features, module.out_features

    return CustomLoraLinear


def peft_config(folder: Path, model: Any) -> Any:
    """The adapter's LoraConfig with chatui's layer types that `model` has registered, or None
    when it has none (peft reads the config itself then)."""
    kinds = {
        kind
        for module in model.modules()
        for kind, test in (
            (int4_linear.int4_linear_class, int4_linear.is_int4_linear),
            (packed_linear.packed_linear_class, packed_linear.is_packed_linear),
        )
        if test(module)
    }
    if not kinds:
        return None
    from peft import PeftConfig

    config: Any = PeftConfig.from_pretrained(str(folder))  # a LoraConfig (adapters.py accepts only LoRA)
    lora = _lora_class()
    config._register_custom_module({kind(): lora for kind in kinds})
    return config
