"""The in-place growing KV cache: same greedy tokens as transformers' DynamicCache, fewer copies."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tui.engine import kv_cache
from tui.engine.kv_cache import growing_cache


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def greedy(model, ids, cache, new_tokens=24):
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=0, return_dict_in_generate=True)
    return out.sequences[0].tolist(), out.past_key_values


def test_greedy_tokens_equal_the_dynamic_cache_across_growth(tiny_model):
    ids = torch.randint(10, 1000, (1, 600), generator=torch.Generator().manual_seed(0))
    plain, _ = greedy(tiny_model, ids, None)
    grown, cache = greedy(tiny_model, ids, growing_cache(tiny_model, 4096))
    assert grown == plain
    layer = cache.layers[0]
    assert type(layer).__name__ == "GrowingLayer"
    assert layer.keys.shape[-2] == len(grown) - 1  # the last token is not in the cache yet
    assert layer._key_buffer.shape[-2] >= layer.keys.shape[-2]
    assert layer.keys.data_ptr() == layer._key_buffer.data_ptr()  # a view, not a copy


def test_crop_then_continue_writes_over_the_dropped_part(tiny_model):
    ids = torch.randint(10, 1000, (1, 300), generator=torch.Generator().manual_seed(1))
    first, cache = greedy(tiny_model, ids, growing_cache(tiny_model))
    cache.crop(-(cache.get_seq_length() - 200))  # keep the first 200 tokens, as turn reuse does
    follow = torch.tensor([first[:200] + [42, 43, 44]])
    reused, _ = greedy(tiny_model, follow, cache)
    fresh, _ = greedy(tiny_model, follow, None)
    assert reused == fresh


def test_growth_is_amortised_and_stops_at_the_context(tiny_model):
    layer = growing_cache(tiny_model, max_tokens=1000).layers[0]
    heads, dim = 2, 8
    reallocations, buffer = 0, None
    for _ in range(1000):
        layer.update(torch.zeros(1, heads, 1, dim), torch.zeros(1, heads, 1, dim))
        if layer._key_buffer is not buffer:
            reallocations, buffer = reallocations + 1, layer._key_buffer
    assert layer.get_seq_length() == 1000
    assert reallocations <= 6  # 257, 385, 577, 865, 1000 (capped at the context)
    assert layer._key_buffer.shape[-2] == 1000


def test_replaced_tensors_are_taken_back_into_a_buffer(tiny_model):
    layer = growing_cache(tiny_model).layers[0]
    layer.update(torch.ones(1, 2, 5, 8), torch.ones(1, 2, 5, 8))
    layer.batch_repeat_interleave(2)  # DynamicLayer replaces keys/values with new tensors
    keys, _ = layer.update(torch.zeros(2, 2, 1, 8), torch.zeros(2, 2, 1, 8))
    assert keys.shape == (2, 2, 6, 8) and keys[:, :, :5].eq(1).all() and keys[:, :, 5].eq(0).all()


def test_a_short_first_turn_gets_the_minimum_room(tiny_model):
    layer = growing_cache(tiny_model).layers[0]
    layer.update(torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8))
    assert layer._key_buffer.shape[-2] == 3 + kv_cache.MIN_CAPACITY


def test_a_long_prompt_leaves_room_for_the_reply(tiny_model):
    # growing on the first decode step would copy the whole prompt's keys/values again
    layer = growing_cache(tiny_model, max_tokens=8192).layers[0]
    layer.update(torch.zeros(1, 2, 4000, 8), torch.zeros(1, 2, 4000, 8))
    buffer = layer._key_buffer
    for _ in range(kv_cache.MIN_CAPACITY):
        layer.update(torch.zeros(1, 2, 1, 8), torch.zeros(1, 2, 1, 8))
    assert layer._key_buffer is buffer
