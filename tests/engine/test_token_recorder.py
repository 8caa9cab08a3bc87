"""Token probabilities recorded while a reply streams: the chosen token with the most likely
alternatives before and after the sampling filters, checked against transformers' own scores."""

from __future__ import annotations

import math

import pytest

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings, TokenDelta, TokenProbs

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def record(engine, messages, settings, logprobs=10):
    turn = engine.generate(messages, settings, logprobs=logprobs)
    choices, order = [], []
    for event in turn:
        if isinstance(event, TokenProbs):
            choices.extend(event.choices)
            order.append("probs")
        elif isinstance(event, TokenDelta):
            order.append("text")
    return turn.final, choices, order


def test_under_greedy_decoding_the_chosen_token_is_the_top_one_at_every_step(smollm2_engine):
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 24})
    final, choices, order = record(smollm2_engine, ASK, settings)
    assert isinstance(final, Finished) and "Paris" in final.text
    assert len(choices) == final.metrics.new_tokens
    assert order[0] == "probs"  # a token's probabilities come before its text
    for choice in choices:
        assert choice.top[0].id == choice.id and choice.top_raw[0].id == choice.id
        assert len(choice.top) == len(choice.top_raw) == 10
        assert choice.logprob <= 0 and math.isclose(choice.logprob, choice.top[0].logprob)
        assert [a.logprob for a in choice.top] == sorted((a.logprob for a in choice.top), reverse=True)
    tokenizer = smollm2_engine.loaded.tokenizer
    assert tokenizer.decode([c.id for c in choices], skip_special_tokens=True) == final.text
    paris = next(c for c in choices if "Paris" in c.token)
    assert math.exp(paris.raw_logprob) > 0.5  # the model is sure of it


def test_the_probabilities_after_the_filters_are_transformers_own(tiny_model_dir):
    """Sampling with a seed, every filter on: the recorded top tokens, before and after the
    filters, equal the raw logits and processed scores transformers' generate returns for the
    same seed (output_logits / output_scores)."""
    import torch

    engine = Engine(reuse_cache=False)
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), dtype="float32")).result()
        settings = GenerationSettings().with_updates(
            {
                "do_sample": True,
                "temperature": 0.7,
                "top_k": 20,
                "top_p": 0.9,
                "min_p": 0.02,
                "repetition_penalty": 1.3,
                "seed": 7,
                "max_new_tokens": 12,
            }
        )
        final, choices, _ = record(engine, ASK, settings, logprobs=8)
        assert isinstance(final, Finished) and len(choices) == 12

        loaded = engine.loaded
        prompt = engine.prompt_builder.build(ASK, loaded.info.context_size, 12).ids
        torch.manual_seed(7)
        with torch.inference_mode():
            out = loaded.model.generate(
                input_ids=torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                output_scores=True,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=loaded.tokenizer.pad_token_id,
                **settings.generate_kwargs(),
            )
    finally:
        engine.close()
    assert out.sequences[0, len(prompt) :].tolist() == [c.id for c in choices]  # the same draws
    for step, choice in enumerate(choices):
        final_lp = torch.log_softmax(out.scores[step][0].float(), -1)
        raw_lp = torch.log_softmax(out.logits[step][0].float(), -1)
        assert choice.logprob == pytest.approx(final_lp[choice.id].item(), abs=1e-4)
        assert choice.raw_logprob == pytest.approx(raw_lp[choice.id].item(), abs=1e-4)
        kept = torch.isfinite(final_lp)
        expected_top = torch.topk(final_lp, 8)
        survivors = [
            (i, v)
            for i, v in zip(expected_top.indices.tolist(), expected_top.values.tolist(), strict=False)
            if math.isfinite(v)
        ]
        assert [a.id for a in choice.top] == [i for i, _ in survivors]
        assert [a.logprob for a in choice.top] == pytest.approx([v for _, v in survivors], abs=1e-4)
        expected_raw = torch.topk(raw_lp, 8)
        assert [a.id for a in choice.top_raw] == expected_raw.indices.tolist()
        assert [a.kept for a in choice.top_raw] == [bool(kept[i]) for i in expected_raw.indices.tolist()]
    assert any(not a.kept for c in choices for a in c.top_raw)  # the filters removed some


def test_off_by_default_and_the_model_is_left_as_it_was(tiny_engine):
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 6})
    final, choices, order = record(tiny_engine, ASK, settings, logprobs=0)
    assert isinstance(final, Finished) and choices == [] and "probs" not in order
    record(tiny_engine, ASK, settings, logprobs=5)
    assert "_get_logits_processor" not in vars(tiny_engine.loaded.model)  # the wrapper is gone


def test_prompt_lookup_is_set_aside_while_recording(tiny_engine):
    settings = GenerationSettings().with_updates(
        {"do_sample": False, "max_new_tokens": 10, "prompt_lookup_num_tokens": 10}
    )
    final, choices, _ = record(tiny_engine, [{"role": "user", "content": "a b c a b c a b c a b c"}], settings, 3)
    assert isinstance(final, Finished) and len(choices) == final.metrics.new_tokens == 10


def test_a_branch_from_a_token_continues_as_generate_does_from_that_prefix(smollm2_engine):
    import torch

    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 16})
    _, choices, _ = record(smollm2_engine, ASK, settings)
    index = 2
    alternative = choices[index].top_raw[1]  # the model's second choice there
    prefix_ids = [c.id for c in choices[:index]] + [alternative.id]
    prefix_text = smollm2_engine.decode(prefix_ids).result()
    branch = smollm2_engine.generate(ASK + [{"role": "assistant", "content": prefix_text}], settings).wait()
    assert isinstance(branch, Finished)

    loaded, builder = smollm2_engine.loaded, smollm2_engine.prompt_builder
    prompt = builder.build(ASK, loaded.info.context_size, 16).ids
    continued = builder.build(ASK + [{"role": "assistant", "content": prefix_text}], loaded.info.context_size, 16).ids
    assert continued == prompt + prefix_ids  # the branch's prompt is that prefix, token for token
    with torch.inference_mode():
        out = loaded.model.generate(
            torch.tensor([continued]),
            attention_mask=torch.ones(1, len(continued), dtype=torch.long),
            max_new_tokens=16,
            do_sample=False,
            pad_token_id=loaded.tokenizer.eos_token_id,
        )
    expected = loaded.tokenizer.decode(out[0, len(continued) :], skip_special_tokens=True)
    assert branch.text == expected and branch.text
