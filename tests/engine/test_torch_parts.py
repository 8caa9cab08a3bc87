"""chatui's pieces inside generate (tui/engine/torch_parts.py): the in-place growing KV cache,
adaptive prompt lookup and the CPU grouped-query attention, each checked against transformers'
own path on the same weights."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tui.engine import GenerationSettings, torch_parts
from tui.engine.torch_parts import AdaptivePromptLookup as Lookup
from tui.engine.torch_parts import growing_cache, use_cpu_gqa_attention

# -- the growing KV cache ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def greedy(model, ids, cache, new_tokens=24):
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            cache=cache,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
            return_dict_in_generate=True,
        )
    return out.sequences[0].tolist(), out.cache


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
    assert layer._key_buffer.shape[-2] == 3 + torch_parts.MIN_CAPACITY


def test_a_long_prompt_leaves_room_for_the_reply(tiny_model):
    # growing on the first decode step would copy the whole prompt's keys/values again
    layer = growing_cache(tiny_model, max_tokens=8192).layers[0]
    layer.update(torch.zeros(1, 2, 4000, 8), torch.zeros(1, 2, 4000, 8))
    buffer = layer._key_buffer
    for _ in range(torch_parts.MIN_CAPACITY):
        layer.update(torch.zeros(1, 2, 1, 8), torch.zeros(1, 2, 1, 8))
    assert layer._key_buffer is buffer


# -- adaptive prompt lookup ---------------------------------------------------------------------


def ids(*tokens):
    return torch.tensor([list(tokens)])


def test_proposes_what_followed_the_latest_occurrence_of_the_longest_suffix():
    gen = Lookup(None, max_length=100, max_tokens=4)
    #          0  1  2  3  4  5  6  7  8  9 10 11 12
    sequence = [5, 6, 7, 1, 2, 5, 6, 8, 9, 3, 4, 5, 6]
    out, logits = gen.get_candidates(ids(*sequence))
    assert logits is None
    assert out[0, len(sequence) :].tolist() == [8, 9, 3, 4]  # after the later "5 6", not the first


def test_stops_at_end_of_sequence_and_at_max_length():
    gen = Lookup(torch.tensor([9]), max_length=100, max_tokens=4)
    out, _ = gen.get_candidates(ids(1, 2, 3, 9, 4, 1, 2))
    assert out[0, 7:].tolist() == [3]  # never proposes past an end-of-sequence token
    gen = Lookup(None, max_length=9, max_tokens=4)
    out, _ = gen.get_candidates(ids(1, 2, 3, 4, 5, 1, 2))
    assert out[0, 7:].tolist() == [3]  # room for one guess plus the model's own token


def test_no_repeat_no_proposal():
    gen = Lookup(None, max_length=100, max_tokens=4)
    out, _ = gen.get_candidates(ids(1, 2, 3, 4, 5, 6))
    assert out.shape[1] == 6


def test_rejected_guesses_back_off_exponentially_and_accepted_ones_grow():
    gen = Lookup(None, max_length=1000, max_tokens=10)
    repeating = [1, 2, 3, 4] * 5
    silent = []
    for _ in range(4):
        out, _ = gen.get_candidates(ids(*repeating))
        assert out.shape[1] > len(repeating)  # it guesses...
        gen.update_candidate_strategy(out, None, 0)  # ...and is wrong
        quiet = 0
        while gen.get_candidates(ids(*repeating))[0].shape[1] == len(repeating):
            quiet += 1
        silent.append(quiet)
    assert silent == [1, 2, 4, 8]
    gen = Lookup(None, max_length=1000, max_tokens=10)
    quoted = list(range(100, 140)) + [7, 8] + [100, 101]  # a long passage, now being quoted
    proposals = []
    for _ in range(4):
        out, _ = gen.get_candidates(ids(*quoted))
        proposals.append(out.shape[1] - len(quoted))
        gen.update_candidate_strategy(out, None, proposals[-1])  # all accepted
    assert proposals == [4, 6, 8, 10]
    gen.update_candidate_strategy(out, None, 3)  # partly accepted: propose about that many
    assert gen.want == 4


def test_prompt_lookup_is_off_by_default_and_validated():
    assert "prompt_lookup_num_tokens" not in GenerationSettings().generate_kwargs()
    on = GenerationSettings().with_updates({"prompt_lookup_num_tokens": 10})
    assert on.generate_kwargs()["prompt_lookup_num_tokens"] == 10


# -- CPU grouped-query attention ----------------------------------------------------------------


def load(tiny_model_dir, **kwargs):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, **kwargs).eval()


def greedy_ids(model, ids, new_tokens=24, cache=None):
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            cache=cache if cache is not None else growing_cache(model),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    return out[0].tolist()


def two_turns(model, first_ids, second_tail):
    """Greedy tokens of a second turn prefilled over the first turn's cache, as the engine reuses it."""
    cache = growing_cache(model)
    first = greedy_ids(model, first_ids, cache=cache)
    cache.crop(-5)  # as if the last reply was edited: the cache keeps a common prefix
    kept = first[: cache.get_seq_length()]
    return greedy_ids(model, torch.tensor([kept + second_tail]), cache=cache)


def test_greedy_tokens_equal_transformers_sdpa(tiny_model_dir):
    model = load(tiny_model_dir)
    ids = torch.randint(10, 1000, (1, 700), generator=torch.Generator().manual_seed(3))
    plain = greedy_ids(model, ids)
    assert use_cpu_gqa_attention(model)
    assert model.config._attn_implementation == torch_parts.ATTENTION_NAME
    assert greedy_ids(model, ids) == plain


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
    greedy_ids(model, torch.randint(10, 1000, (1, 50), generator=torch.Generator().manual_seed(4)), new_tokens=5)
    prefill = [shape for shape, _ in calls if shape[2] == 50]
    decode = [(shape, gqa) for shape, gqa in calls if shape[2] != 50]
    assert prefill and all(shape[1] == config.num_attention_heads for shape in prefill)
    assert decode and all(shape == (1, kv_heads, groups, shape[3]) and not gqa for shape, gqa in decode)

    calls.clear()  # a new turn over the cache: a masked prefill, keys/values not copied out per head
    cache = growing_cache(model)
    with torch.inference_mode():
        model(torch.randint(10, 1000, (1, 40)), cache=cache, use_cache=True)
        model(torch.randint(10, 1000, (1, 12)), cache=cache, use_cache=True)
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
        ours, _ = torch_parts.cpu_gqa_sdpa(module, query, key, value, mask, scaling=0.25)
        theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
        assert ours.shape == theirs.shape == (1, 1, 4, 16)
        assert torch.allclose(ours, theirs, atol=1e-6)
