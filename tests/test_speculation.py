"""Adaptive prompt lookup: proposes from the latest repeat, backs off when its guesses fail."""

import torch

from tui.engine import GenerationSettings
from tui.engine.speculation import _lookup_class

Lookup = _lookup_class()


def ids(*tokens):
    return torch.tensor([list(tokens)])


def test_proposes_what_followed_the_latest_occurrence_of_the_longest_suffix():
    gen = Lookup(None, max_length=100, max_tokens=4)
    #          0  1  2  3  4  5  6  7  8  9 10 11 12
    sequence = [5, 6, 7, 1, 2, 5, 6, 8, 9, 3, 4, 5, 6]
    out, logits = gen.get_candidates(ids(*sequence))
    assert logits is None
    assert out[0, len(sequence):].tolist() == [8, 9, 3, 4]  # after the later "5 6", not the first


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
    for round_ in range(4):
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


def test_copying_on_the_real_model_takes_fewer_steps_and_gives_the_same_text(smollm2_engine):
    text = ("The lighthouse stood on a rock at the edge of the bay. Every night the keeper climbed the "
            "spiral stairs, trimmed the wick, and watched the beam sweep across the water.")
    messages = [{"role": "user", "content": f"Repeat this text exactly, word for word:\n\n{text}"}]
    greedy = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 60})
    smollm2_engine._drop_cache()
    plain = smollm2_engine.generate(messages, greedy).wait()
    smollm2_engine._drop_cache()
    fast = smollm2_engine.generate(messages, greedy.with_updates({"prompt_lookup_num_tokens": 10})).wait()
    assert fast.text == plain.text and "spiral stairs" in fast.text
    stats = smollm2_engine._loaded.model.last_candidate_generator.stats
    assert stats["accepted"] > fast.metrics.new_tokens / 2  # most tokens came from the lookup
    assert stats["steps"] < fast.metrics.new_tokens / 2  # in far fewer forward passes
    smollm2_engine._drop_cache()


def test_a_draft_model_assists_and_the_greedy_text_is_the_same(tiny_model_dir):
    from tui.engine import Engine, LoadSettings

    greedy = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 24})
    messages = [{"role": "user", "content": "Tell me about bees."}]
    engine = Engine(reuse_cache=False)
    try:
        plain_info = engine.load(LoadSettings(model=str(tiny_model_dir))).result()
        assert plain_info.draft is None
        plain = engine.generate(messages, greedy).wait()
        info = engine.load(LoadSettings(model=str(tiny_model_dir), draft_model=str(tiny_model_dir))).result()
        assert info.draft == tiny_model_dir.name and not info.warnings
        calls = []
        draft = engine._draft.model
        draft.register_forward_hook(lambda *args: calls.append(1))
        assisted = engine.generate(messages, greedy).wait()
        assert calls, "the draft model was not used"
        assert assisted.text == plain.text and assisted.metrics.new_tokens == plain.metrics.new_tokens
    finally:
        engine.shutdown()


def test_a_draft_model_that_cannot_load_is_a_warning_not_a_failure(tiny_model_dir, tmp_path):
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    try:
        info = engine.load(LoadSettings(model=str(tiny_model_dir), draft_model=str(tmp_path / "nope"))).result()
        assert info.draft is None
        assert any(w.startswith("draft model not used:") and "nope" in w for w in info.warnings)
        final = engine.generate([{"role": "user", "content": "hi"}],
                                GenerationSettings().with_updates({"max_new_tokens": 4})).wait()
        assert final.metrics.new_tokens == 4
    finally:
        engine.shutdown()
