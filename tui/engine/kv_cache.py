"""A KV cache that grows in place, so decode speed holds up as a conversation gets long.

transformers' DynamicCache appends each new token with `torch.cat`, which copies the whole cache
of every layer at every step: at 4,000 tokens of SmolLM2-135M that is ~180 MB of copying per
token, and decode fell from ~14 to ~8 tok/s here. `GrowingLayer` keeps each layer's keys and
values in a buffer with spare room (half as much again when full, so the copies are amortised
away, and never more than the model's context) and
hands attention a view of the filled part. It is still a DynamicCache to generate(): crop() (used
to reuse the cache across turns) and every other DynamicLayer operation keep working.
"""

from __future__ import annotations

from typing import Any

MIN_CAPACITY = 256  # tokens


def _growing_layer_class():  # a factory: transformers is imported on the torch thread, not at import
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose keys/values are views into buffers with room to grow."""

        def __init__(self, max_tokens: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.max_tokens = max_tokens  # the model's context: no room is made past it

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            super().lazy_initialization(key_states, value_states)
            self._key_buffer: torch.Tensor | None = None
            self._value_buffer: torch.Tensor | None = None

        def _owns(self, tensor: torch.Tensor | None, buffer: torch.Tensor | None) -> bool:
            # keys/values may have been replaced by DynamicLayer methods (reorder, batch select):
            # then they are no longer views of our buffers, and the buffers start again from them.
            return (tensor is not None and buffer is not None and tensor.dim() == 4
                    and tensor.data_ptr() == buffer.data_ptr() and tensor.shape[:2] == buffer.shape[:2]
                    and tensor.shape[-1] == buffer.shape[-1])

        def _room_for(self, old: torch.Tensor | None, buffer: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
            length = old.shape[-2] if old is not None and old.dim() == 4 else 0
            needed = length + new.shape[-2]
            if self._owns(old, buffer) and buffer.shape[-2] >= needed:
                return buffer
            previous = buffer.shape[-2] if buffer is not None else 0
            # room for a reply past a long prompt too: growing right after prefill would copy it all
            capacity = max(previous + previous // 2, needed + MIN_CAPACITY)
            if self.max_tokens:
                capacity = min(capacity, self.max_tokens)
            capacity = max(capacity, needed)
            grown = new.new_empty((*new.shape[:2], capacity, new.shape[-1]))
            if length:
                grown[:, :, :length].copy_(old)
            return grown

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            length = self.keys.shape[-2] if self.keys is not None and self.keys.dim() == 4 else 0
            end = length + key_states.shape[-2]
            self._key_buffer = self._room_for(self.keys, self._key_buffer, key_states)
            self._value_buffer = self._room_for(self.values, self._value_buffer, value_states)
            self._key_buffer[:, :, length:end].copy_(key_states)
            self._value_buffer[:, :, length:end].copy_(value_states)
            self.keys = self._key_buffer[:, :, :end]
            self.values = self._value_buffer[:, :, :end]
            return self.keys, self.values

        def reset(self) -> None:
            self._key_buffer = self._value_buffer = None
            super().reset()

    return GrowingLayer


_LAYER_CLASS = None


def growing_cache(model: Any, max_tokens: int | None = None) -> Any:
    """A DynamicCache for `model` whose full-attention layers grow in place (others unchanged)."""
    global _LAYER_CLASS
    from transformers.cache_utils import DynamicCache, DynamicLayer

    if _LAYER_CLASS is None:
        _LAYER_CLASS = _growing_layer_class()
    cache = DynamicCache(config=model.config)
    cache.layers = [_LAYER_CLASS(max_tokens) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
