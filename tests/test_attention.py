"""CPU attention for grouped-query models: the same greedy tokens as transformers' SDPA, each key/value
head read once (packed decode, no repeat_kv copies when a new turn is prefilled over a reused cache)."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tui.engine import attention
from tui.engine.attention import use_cpu_gqa_attention
from tui.engine.kv_cache import growing_cache


def load(tiny_model_dir, **kwargs):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, **kwargs).eval()


def greedy(model, ids, new_tokens=24, cache=None):
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             past_key_values=cache if cache is not None else growing_cache(model),
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return out[0].tolist()


def two_turns(model, first_ids, second_tail):
    """Greedy tokens of a second turn prefilled over the first turn's cache, as the engine reuses it."""
    cache = growing_cache(model)
    first = greedy(model, first_ids, cache=cache)
    cache.crop(-5)  # as if the last reply was edited: the cache keeps a common prefix
    kept = first[: cache.get_seq_length()]
    return greedy(model, torch.tensor([kept + second_tail]), cache=cache)


def test_greedy_tokens_equal_transformers_sdpa(tiny_model_dir):
    model = load(tiny_model_dir)
    ids = torch.randint(10, 1000, (1, 700), generator=torch.Generator().manual_seed(3))
    plain = greedy(model, ids)
    assert use_cpu_gqa_attention(model)
    assert model.config._attn_implementation == attention.NAME
    assert greedy(model, ids) == plain


def test_a_second_turn_over_a_reused_cache_equals_transformers_sdpa(tiny_model_dir):
    model = load(tiny_model_dir)
    ids = torch.randint(10, 1000, (1, 400), generator=torch.Generator().manual_seed(6))
    tail = torch.randint(10, 1000, (90,), generator=torch.Generator().manual_seed(7)).tolist()
    plain = two_turns(model, ids, tail)
    use_cpu_gqa_attention(model)
    assert two_turns(model, ids, tail) == plain


def test_decode_steps_run_on_the_key_value_heads(tiny_model_dir, monkeypatch):
    model = load(tiny_model_dir)
    use_cpu_gqa_attention(model)
    config = model.config
    kv_heads, groups = config.num_key_value_heads, config.num_attention_heads // config.num_key_value_heads
    assert groups > 1  # the tiny model uses grouped-query attention, like SmolLM2
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, *args, **kwargs):
        calls.append((tuple(query.shape), kwargs.get("enable_gqa", False)))
        return sdpa(query, key, value, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    greedy(model, torch.randint(10, 1000, (1, 50), generator=torch.Generator().manual_seed(4)), new_tokens=5)
    prefill = [shape for shape, _ in calls if shape[2] == 50]
    decode = [(shape, gqa) for shape, gqa in calls if shape[2] != 50]
    assert prefill and all(shape[1] == config.num_attention_heads for shape in prefill)
    assert decode and all(shape == (1, kv_heads, groups, shape[3]) and not gqa for shape, gqa in decode)

    calls.clear()  # a new turn over the cache: a masked prefill, keys/values not copied out per head
    cache = growing_cache(model)
    with torch.inference_mode():
        model(torch.randint(10, 1000, (1, 40)), past_key_values=cache, use_cache=True)
        model(torch.randint(10, 1000, (1, 12)), past_key_values=cache, use_cache=True)
    assert calls[-1] == ((1, config.num_attention_heads, 12, calls[-1][0][3]), True)


def test_a_chosen_implementation_is_left_alone(tiny_model_dir):
    model = load(tiny_model_dir, attn_implementation="eager")
    assert not use_cpu_gqa_attention(model)
    assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize("mask_heads", [1, 2])
def test_single_query_output_matches_sdpa_with_and_without_a_mask(tiny_model_dir, mask_heads):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = load(tiny_model_dir).model.layers[0].self_attn
    generator = torch.Generator().manual_seed(5)
    query = torch.randn(1, 4, 1, 16, generator=generator)
    key, value = torch.randn(1, 2, 30, 16, generator=generator), torch.randn(1, 2, 30, 16, generator=generator)
    for mask in (None, torch.rand(1, mask_heads, 1, 30, generator=generator) > 0.3):
        ours, _ = attention._cpu_gqa_sdpa(module, query, key, value, mask, scaling=0.25)
        theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
        assert ours.shape == theirs.shape == (1, 1, 4, 16)
        assert torch.allclose(ours, theirs, atol=1e-6)
