"""chatui's pieces inside transformers' `generate`, each defined once.

This is the only engine module that imports torch and transformers at the top. It is imported
on the engine's torch thread, the first time a model loads (`tui.engine.session`), so the app's
first frame never waits for torch. The pieces:

- `EventStreamer`: decodes new tokens on the torch thread and queues them as events.
- `StopWhenAsked`: ends `generate` within one token of `Turn.stop()`.
- `ScoresTap`: hands each step's scores to the token recorder (token_recorder.py).
- `growing_cache` / `GrowingLayer`: a KV cache that grows in place instead of being copied at
  every token.
- `AdaptivePromptLookup`: prompt lookup decoding that backs off where text does not repeat.
- `use_cpu_gqa_attention`: attention that reads each shared key/value head once on CPU.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from transformers import AttentionInterface, DynamicCache, LogitsProcessor, StoppingCriteria, TextStreamer
from transformers.cache_utils import DynamicLayer
from transformers.generation.candidate_generator import CandidateGenerator
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

# ---------------------------------------------------------------------------------------------
# Streaming and stopping


class EventStreamer(TextStreamer):
    """Decodes on the torch thread (word by word, as transformers' streamers do) and hands each
    piece of text to `emit(text, tokens_so_far)`. `on_token(n)` is told of every new token."""

    def __init__(
        self,
        tokenizer: Any,
        emit: Callable[[str], None],
        on_token: Callable[[int], None],
        on_ids: Callable[[list[int]], None] | None = None,
    ) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._emit = emit
        self._on_token = on_token
        self._on_ids = on_ids  # told the ids of each new token (for the token recorder)
        self.parts: list[str] = []

    def put(self, value: Any) -> None:
        if not self.next_tokens_are_prompt:
            self._on_token(int(value.numel()))
            if self._on_ids is not None:
                self._on_ids(value.reshape(-1).tolist())
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.parts.append(text)
            self._emit(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class StopWhenAsked(StoppingCriteria):
    """Checked after every token: True once `asked()` is (a Turn's `stop_requested`). Returns
    cached tensors, so the hot loop allocates nothing."""

    def __init__(self, asked: Callable[[], bool]) -> None:
        self.asked = asked
        self.answers: dict[tuple[bool, int, torch.device], torch.Tensor] = {}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        key = (self.asked(), input_ids.shape[0], input_ids.device)
        answer = self.answers.get(key)
        if answer is None:
            answer = self.answers[key] = torch.full(key[1:2], key[0], dtype=torch.bool, device=key[2])
        return answer


# ---------------------------------------------------------------------------------------------
# A KV cache that grows in place
#
# transformers' DynamicCache appends each new token with `torch.cat`, which copies the whole cache
# of every layer at every step: at 4,000 tokens of SmolLM2-135M that is ~180 MB of copying per
# token, and decode fell from ~14 to ~8 tok/s here. `GrowingLayer` keeps each layer's keys and
# values in a buffer with spare room (half as much again when full, so the copies are amortised
# away, never more than the model's context) and hands attention a view of the filled part. It is
# still a DynamicCache to generate(): crop() (used to reuse the cache across turns) and every
# other DynamicLayer operation keep working.

MIN_CAPACITY = 256  # tokens


class ScoresTap(LogitsProcessor):
    """A logits processor that hands the scores it is given to `keep` and passes them on
    untouched (token_recorder.py puts one first and one last in generate's list)."""

    def __init__(self, keep: Callable[[torch.Tensor], None]) -> None:
        self.keep = keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.keep(scores)
        return scores


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose keys/values are views into buffers with room to grow."""

    def __init__(self, max_tokens: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_tokens = max_tokens  # the model's context: no room is made past it
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None

    def _owns(self, tensor: torch.Tensor | None, buffer: torch.Tensor | None) -> bool:
        # keys/values may have been replaced by DynamicLayer methods (reorder, batch select):
        # then they are no longer views of our buffers, and the buffers start again from them.
        return (
            tensor is not None
            and buffer is not None
            and tensor.dim() == 4
            and tensor.data_ptr() == buffer.data_ptr()
            and tensor.shape[:2] == buffer.shape[:2]
            and tensor.shape[-1] == buffer.shape[-1]
        )

    def _room_for(self, old: torch.Tensor | None, buffer: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
        length = old.shape[-2] if old is not None and old.dim() == 4 else 0
        needed = length + new.shape[-2]
        if buffer is not None and self._owns(old, buffer) and buffer.shape[-2] >= needed:
            return buffer
        previous = buffer.shape[-2] if buffer is not None else 0
        # room for a reply past a long prompt too: growing right after prefill would copy it all
        capacity = max(previous + previous // 2, needed + MIN_CAPACITY)
        if self.max_tokens:
            capacity = min(capacity, self.max_tokens)
        capacity = max(capacity, needed)
        grown = new.new_empty((*new.shape[:2], capacity, new.shape[-1]))
        if old is not None and length:
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


def growing_cache(model: Any, max_tokens: int | None = None) -> DynamicCache:
    """A DynamicCache for `model` whose full-attention layers grow in place (others unchanged)."""
    cache = DynamicCache(config=model.config)
    cache.layers = [GrowingLayer(max_tokens) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


# ---------------------------------------------------------------------------------------------
# Adaptive prompt lookup decoding
#
# transformers' prompt lookup (`prompt_lookup_num_tokens`) proposes, at every step, the tokens that
# followed the *first* earlier occurrence of the last 1-2 tokens. In a chat almost every pair of
# tokens has occurred before, so on free text it proposes 10 tokens that are nearly always wrong,
# and verifying them costs more than the step it saves (0.6x plain decoding here on a story).
# `AdaptivePromptLookup` keeps what works and drops what does not:
# - it matches the longest suffix n-gram (4 down to 2 tokens) and takes its *latest* occurrence
#   (recent text is what a reply repeats: code being edited, a list being continued);
# - it proposes as many tokens as recently got accepted, plus two (1 to `max_tokens`);
# - after a proposal is rejected outright, it stops proposing for 1, 2, 4 ... 64 steps, so on text
#   that does not repeat it decays to plain one-token steps.
# Verification is transformers' own: only tokens the model itself would pick are kept.

MIN_NGRAM, MAX_NGRAM = 2, 4
MAX_BACKOFF = 64


class AdaptivePromptLookup(CandidateGenerator):
    def __init__(self, eos_token_id: Any, max_length: int, max_tokens: int) -> None:
        self.eos = set(eos_token_id.tolist()) if eos_token_id is not None else set()
        self.max_length = max_length
        self.max_tokens = max_tokens
        self.want = min(4, max_tokens)  # tokens to propose next time
        self.skip = 0  # steps left without proposing
        self.backoff = 1
        self.proposed = 0  # length of the last proposal
        self.stats = {"proposals": 0, "proposed": 0, "accepted": 0, "steps": 0}
        self.ids: list[int] = []
        self.index: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(MIN_NGRAM, MAX_NGRAM + 1)}
        self.indexed = dict.fromkeys(self.index, 0)  # per n: the next start to index

    def _find(self, ids: list[int]) -> list[int]:
        # Index every n-gram that has a continuation (newest start wins), incrementally: the
        # sequence only grows during one generate() call.
        for n, table in self.index.items():
            for start in range(self.indexed[n], len(ids) - n):
                table[tuple(ids[start : start + n])] = start
            self.indexed[n] = max(self.indexed[n], len(ids) - n)
        for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
            found = self.index[n].get(tuple(ids[-n:]))
            if found is not None:
                follow = ids[found + n : found + n + self.want]
                cut = next((i for i, t in enumerate(follow) if t in self.eos), len(follow))
                return follow[:cut]
        return []

    def get_candidates(self, input_ids: torch.LongTensor, **kwargs: Any):
        self.stats["steps"] += 1
        self.proposed = 0
        room = self.max_length - input_ids.shape[1] - 1
        if self.skip > 0 or room <= 0:
            self.skip = max(0, self.skip - 1)
            return input_ids, None
        self.ids.extend(input_ids[0, len(self.ids) :].tolist())
        found = self._find(self.ids)[:room]
        if not found:
            return input_ids, None
        self.proposed = len(found)
        self.stats["proposals"] += 1
        self.stats["proposed"] += len(found)
        extra = torch.tensor([found], dtype=input_ids.dtype, device=input_ids.device)
        return torch.cat((input_ids, extra), dim=1), None

    @property
    def num_drafting_tokens(self) -> int:
        """The most tokens one proposal holds (transformers >= 5.25 asks, to size its cache's record)."""
        return self.max_tokens

    def update_candidate_strategy(self, input_ids: torch.LongTensor, scores: torch.Tensor, num_matches: int):
        if not self.proposed:
            return
        matches = int(num_matches)
        self.stats["accepted"] += matches
        if matches == 0:
            self.skip, self.backoff = self.backoff, min(2 * self.backoff, MAX_BACKOFF)
            self.want = max(1, self.want // 2)
        else:
            self.backoff = 1
            self.want = min(self.max_tokens, matches + 2 if matches == self.proposed else matches + 1)


def use_adaptive_prompt_lookup(model: Any) -> None:
    """Make `model.generate(prompt_lookup_num_tokens=N)` use AdaptivePromptLookup (N = most tokens)."""
    original = type(model)._get_candidate_generator

    def _get_candidate_generator(self, generation_config, *args: Any, **kwargs: Any):
        if generation_config.prompt_lookup_num_tokens and kwargs.get("assistant_model") is None:
            generator = AdaptivePromptLookup(
                generation_config._eos_token_tensor,
                generation_config.max_length,
                generation_config.prompt_lookup_num_tokens,
            )
            self.last_candidate_generator = generator
            return generator
        return original(self, generation_config, *args, **kwargs)

    model._get_candidate_generator = types.MethodType(_get_candidate_generator, model)


# ---------------------------------------------------------------------------------------------
# Attention for grouped-query models on CPU that reads each key/value head once
#
# Models with grouped-query attention (SmolLM2-135M: 9 query heads share 3 key/value heads) pay
# for it twice in transformers' SDPA path on CPU:
# - Decode (one query token, no mask): `enable_gqa=True`, and torch's CPU kernel walks the whole
#   cache once per *query* head, 3x the reads on a machine whose decode is memory-bound. Here the
#   query heads of a group are stacked as rows of one query against their shared key/value head
#   ("packing"): the same arithmetic, each key/value read once. Measured (30 layers, 4,000 tokens,
#   fp32, 2 threads): 29 -> 19 ms of attention per token.
# - Prefill on top of a reused cache (a new turn: ~100 tokens over thousands cached) needs a mask,
#   and with a mask transformers copies the keys/values out to every query head (`repeat_kv`)
#   before attention: ~430 MB of copies at 3,000 tokens. torch's CPU kernel takes the mask with
#   `enable_gqa=True` directly, with bit-identical output: 371-644 -> 230 ms per prefill.
# `chatui_sdpa` does both on CPU and hands everything else (GPUs, masks that differ per head,
# position biases, torch.compile) to transformers' own SDPA.

ATTENTION_NAME = "chatui_sdpa"


def cpu_gqa_sdpa(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
):
    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, q_length, dim = query.shape
    mask_shared = attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[1] == 1)
    ours = (
        groups > 1
        and query.device.type == "cpu"
        and mask_shared
        and not dropout
        and kwargs.get("position_bias") is None
        and kwargs.get("cache") is None
        and kwargs.get("softcap") is None
        and not torch.compiler.is_compiling()
        # a causal prefill without a mask already gets enable_gqa from transformers
        and (q_length == 1 or attention_mask is not None)
    )
    if not ours:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    if q_length > 1:  # a new turn over a reused cache: the mask goes to the kernel, no repeat_kv copies
        output = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=True
        )
        return output.transpose(1, 2).contiguous(), None
    # (batch, heads, 1, dim) -> (batch, kv_heads, groups, dim): query head h uses key/value head h // groups.
    packed = query.reshape(batch, heads // groups, groups, dim)
    output = torch.nn.functional.scaled_dot_product_attention(
        packed, key, value, attn_mask=attention_mask, scale=scaling
    )
    # back to transformers' layout: (batch, 1, heads, dim)
    return output.reshape(batch, heads, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, cpu_gqa_sdpa)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def use_cpu_gqa_attention(model: Any) -> bool:
    """Switch a model on transformers' SDPA to `chatui_sdpa`; True when it was switched."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False  # eager, flash-attention, or chosen by the user: left as it is
    try:
        model.set_attn_implementation(ATTENTION_NAME)
    except (ValueError, TypeError, ImportError):
        return False
    return config._attn_implementation == ATTENTION_NAME
