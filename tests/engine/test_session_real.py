"""The real path: SmolLM2-135M-Instruct from the bundled GGUF, converted once and cached."""

import time

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings
from tui.engine.sources import default_gguf_path, gguf_cache_path

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 48})


def test_capital_of_france_is_paris(smollm2_engine):
    final = smollm2_engine.generate([{"role": "user", "content": "What is the capital of France?"}], GREEDY).wait()
    assert isinstance(final, Finished) and final.reason == "stop"
    assert "Paris" in final.text
    m = final.metrics
    assert 0 < m.ttft_s < 10 and m.decode_tok_s > 1 and m.new_tokens < 48


def test_cached_conversion_loads_fast(smollm2_dir):
    assert gguf_cache_path(default_gguf_path()) == smollm2_dir
    assert (smollm2_dir / "model.safetensors").is_file()
    engine = Engine()
    try:
        started = time.perf_counter()
        info = engine.load(LoadSettings()).result()
        elapsed = time.perf_counter() - started
    finally:
        engine.close()
    assert info.name == "SmolLM2-135M-Instruct" and info.context_size == 8192
    print(f"default model load from the safetensors cache: {elapsed:.2f} s")


def test_greedy_output_with_kv_reuse_and_growing_cache_equals_plain_transformers(smollm2_fp32_engine):
    """chatui's speed work (KV reuse across turns, drafts prefilled while typing, the growing
    cache, CPU GQA attention) against plain transformers (DynamicCache, its own SDPA). In float32:
    in bf16 the two attention kernels round differently and greedy decoding can take another
    word after a few tokens ("1. Grapes" vs "1. Bananas"), which says nothing about correctness."""
    smollm2_engine = smollm2_fp32_engine
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 40})
    turns = ["Name three fruits.", "Which of them is red?", "Write one sentence about it."]
    messages, with_reuse = [], []
    smollm2_engine.turn_cache.drop()
    for text in turns:
        messages.append({"role": "user", "content": text})
        final = smollm2_engine.generate(messages, settings).wait()
        with_reuse.append(final)
        messages.append({"role": "assistant", "content": final.text})
    assert all(f.metrics.prefill_tokens < f.metrics.prompt_tokens for f in with_reuse[1:])
    messages = []
    smollm2_engine.turn_cache.drop()
    for text, reused in zip(turns, with_reuse, strict=False):
        half = text[: len(text) // 2]  # what was typed when the user paused
        assert smollm2_engine.prefill(messages + [{"role": "user", "content": half}], settings).result() > 0
        messages.append({"role": "user", "content": text})
        final = smollm2_engine.generate(messages, settings).wait()
        assert final.text == reused.text and final.metrics.prefill_tokens < 15
        messages.append({"role": "assistant", "content": final.text})
    model = smollm2_engine.loaded.model
    smollm2_engine.turn_cache.reuse = False
    smollm2_engine.turn_cache.grow_in_place = False  # the reference is plain transformers: DynamicCache
    model.set_attn_implementation("sdpa")
    try:
        messages = []
        for text, reused in zip(turns, with_reuse, strict=False):
            messages.append({"role": "user", "content": text})
            final = smollm2_engine.generate(messages, settings).wait()
            assert final.metrics.prefill_tokens == final.metrics.prompt_tokens
            assert final.text == reused.text
            messages.append({"role": "assistant", "content": final.text})
    finally:
        smollm2_engine.turn_cache.reuse = True
        smollm2_engine.turn_cache.grow_in_place = True
        model.set_attn_implementation("chatui_sdpa")


def test_stop_mid_stream_on_the_real_model(smollm2_engine):
    from tui.engine import TokenDelta

    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 300})
    turn = smollm2_engine.generate([{"role": "user", "content": "Write a long story about a dragon."}], settings)
    at_stop = None
    for event in turn:
        if isinstance(event, TokenDelta) and event.tokens >= 10 and at_stop is None:
            at_stop = event.tokens
            turn.stop()
    assert turn.final.reason == "stopped" and turn.final.text
    assert turn.final.metrics.new_tokens <= at_stop + 1


def test_reload_with_other_dtypes_and_quantizations_shrinks_and_still_answers(smollm2_dir):
    """fp32, bf16, bitsandbytes 8-bit and 4-bit (they run on CPU here) and torchao int4 reloads of
    the real model; `auto` is bf16 where the CPU computes it natively."""
    from tui.engine.hardware import cpu_has_native_bf16
    from tui.engine.metrics import rss_bytes

    engine = Engine()
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 8})
    question = [{"role": "user", "content": "What is the capital of France?"}]
    figures = {}
    try:
        default = engine.load(LoadSettings()).result()
        assert default.dtype == ("bfloat16" if cpu_has_native_bf16() else "float32")
        for load in (
            LoadSettings(dtype="float32"),
            LoadSettings(dtype="bfloat16"),
            LoadSettings(quantization="8bit"),
            LoadSettings(quantization="bnb-4bit"),
            LoadSettings(quantization="int4"),
        ):
            info = engine.load(load).result()
            assert info.quantization == load.quantization  # "8bit" is "bnb-8bit"
            final = engine.generate(question, settings).wait()
            assert isinstance(final, Finished) and final.metrics.new_tokens == 8, (load, final)
            if load.quantization != "int4":  # int4 over this already-4-bit GGUF model drifts more
                assert "Paris" in final.text, (load, final)
            figures[load.quantization if load.quantization != "none" else load.dtype] = info.footprint_bytes
            print(
                f"{info.dtype}/{info.quantization:9} footprint={info.footprint_bytes / 2**20:.0f} MB "
                f"rss={rss_bytes() / 2**20:.0f} MB"
            )
    finally:
        engine.close()
    assert figures["bfloat16"] <= figures["float32"] // 2 + 2**20  # bf16 halves the weights
    assert figures["bnb-4bit"] < figures["bnb-8bit"] < figures["bfloat16"]
    assert figures["int4"] < figures["bfloat16"]


def test_copying_on_the_real_model_takes_fewer_steps_and_gives_the_same_text(smollm2_engine):
    text = (
        "The lighthouse stood on a rock at the edge of the bay. Every night the keeper climbed the "
        "spiral stairs, trimmed the wick, and watched the beam sweep across the water."
    )
    messages = [{"role": "user", "content": f"Repeat this text exactly, word for word:\n\n{text}"}]
    greedy = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 60})
    smollm2_engine.turn_cache.drop()
    plain = smollm2_engine.generate(messages, greedy).wait()
    smollm2_engine.turn_cache.drop()
    fast = smollm2_engine.generate(messages, greedy.with_updates({"prompt_lookup_num_tokens": 10})).wait()
    assert fast.text == plain.text and "spiral stairs" in fast.text
    stats = smollm2_engine.loaded.model.last_candidate_generator.stats
    assert stats["accepted"] > fast.metrics.new_tokens / 2  # most tokens came from the lookup
    assert stats["steps"] < fast.metrics.new_tokens / 2  # in far fewer forward passes
    smollm2_engine.turn_cache.drop()


def test_beam_search_gives_what_a_transformers_pipeline_gives(smollm2_engine, smollm2_dir):
    """num_beams=2 cannot stream: the reply comes whole, and it is the pipeline's reply on the
    same weights and settings."""
    import torch
    from transformers import pipeline

    from tui.engine import Started, TokenDelta

    messages = [{"role": "user", "content": "Give me two tips for learning to draw."}]
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 40, "num_beams": 2})
    turn = smollm2_engine.generate(messages, settings)
    events = list(turn)
    started = next(e for e in events if isinstance(e, Started))
    deltas = [e for e in events if isinstance(e, TokenDelta)]
    assert not started.streams and len(deltas) == 1  # one piece: the whole reply at the end
    dtype = getattr(torch, smollm2_engine.info.dtype)
    generator = pipeline("text-generation", model=str(smollm2_dir), dtype=dtype, device="cpu")
    expected = generator(messages, do_sample=False, max_new_tokens=40, num_beams=2, return_full_text=False)[0][
        "generated_text"
    ]
    assert turn.final.text == expected and len(expected) > 20


def test_min_new_tokens_keeps_a_short_answer_going(smollm2_engine):
    messages = [{"role": "user", "content": "Say hi."}]
    short = smollm2_engine.generate(messages, GREEDY).wait()
    assert short.reason == "stop" and short.metrics.new_tokens < 30  # on its own it stops early
    settings = GenerationSettings().with_updates({"do_sample": False, "min_new_tokens": 30, "max_new_tokens": 30})
    final = smollm2_engine.generate(messages, settings).wait()
    assert final.metrics.new_tokens == 30
