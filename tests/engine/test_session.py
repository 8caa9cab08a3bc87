"""Engine behaviour on the tiny random-weight model (fast)."""

import threading

import pytest
from conftest import TINY_CONTEXT

from tui.engine import (
    Engine,
    Failed,
    Finished,
    GenerationSettings,
    LoadError,
    LoadSettings,
    TokenDelta,
)
from tui.engine.prompt import PromptBuilder

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 20})


def ask(text):
    return [{"role": "user", "content": text}]


def test_model_info_is_sane(tiny_engine, tiny_model_dir):
    info = tiny_engine.info
    assert info.device == "cpu" and info.dtype == "float32" and info.quantization == "none"
    assert info.context_size == TINY_CONTEXT
    assert info.footprint_bytes > 0 and info.parameters > 0
    assert info.has_chat_template


def test_stream_events_add_up_to_the_final_text(tiny_engine):
    turn = tiny_engine.generate(ask("Hello"), GREEDY)
    events = list(turn)
    deltas = [e for e in events if isinstance(e, TokenDelta)]
    final = events[-1]
    assert isinstance(final, Finished) and final.reason == "length"
    assert "".join(d.text for d in deltas) == final.text and final.text
    m = final.metrics
    assert m.new_tokens == 20 and m.prompt_tokens > 5
    assert m.ttft_s > 0 and m.decode_tok_s > 0 and m.total_s >= m.ttft_s
    assert m.rss_bytes > 50 * 2**20 and m.context_size == TINY_CONTEXT
    assert deltas[-1].tokens <= 20


def test_greedy_is_deterministic_and_seeded_sampling_repeats(tiny_engine):
    first = tiny_engine.generate(ask("Hi"), GREEDY).wait().text
    tiny_engine.turn_cache.drop()
    assert tiny_engine.generate(ask("Hi"), GREEDY).wait().text == first
    seeded = GenerationSettings().with_updates({"seed": 7, "max_new_tokens": 15, "temperature": 1.5})
    a = tiny_engine.generate(ask("Hi"), seeded).wait().text
    b = tiny_engine.generate(ask("Hi"), seeded).wait().text
    assert a == b


def test_stop_ends_within_one_token_and_keeps_the_text(tiny_engine):
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 400})
    turn = tiny_engine.generate(ask("Tell me a long story"), settings)
    seen = 0
    for event in turn:
        if isinstance(event, TokenDelta):
            seen = event.tokens
            if seen >= 5 and not turn.stop_requested:
                turn.stop()
                at_stop = seen
    final = turn.final
    assert isinstance(final, Finished) and final.reason == "stopped"
    assert final.metrics.new_tokens <= at_stop + 1
    assert final.text  # the partial reply is kept


def test_stop_before_start_finishes_at_once(tiny_engine):
    blocker = threading.Event()
    tiny_engine._executor.submit(blocker.wait)  # keep the torch thread busy
    turn = tiny_engine.generate(ask("Hi"), GREEDY)
    turn.stop()
    blocker.set()
    final = turn.wait()
    assert isinstance(final, Finished) and final.reason == "stopped" and final.text == ""


def test_exception_in_forward_becomes_failed_with_partial_text(tiny_engine, monkeypatch):
    model = tiny_engine.loaded.model
    calls = {"n": 0}
    original = type(model).forward

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 8:
            raise RuntimeError("simulated kernel failure")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", flaky)
    final = tiny_engine.generate(ask("Hello there"), GREEDY).wait()
    assert isinstance(final, Failed)
    assert "simulated kernel failure" in final.error
    assert final.text  # tokens before the failure are kept
    monkeypatch.setattr(type(model), "forward", original)
    assert isinstance(tiny_engine.generate(ask("Hello again"), GREEDY).wait(), Finished)


def test_continue_extends_an_assistant_reply(tiny_engine):
    messages = ask("Hi") + [{"role": "assistant", "content": "Once upon a time"}]
    final = tiny_engine.generate(messages, GREEDY).wait()
    assert isinstance(final, Finished) and final.metrics.new_tokens == 20


def test_kv_cache_is_reused_for_the_next_turn_and_output_matches(tiny_engine):
    tiny_engine.turn_cache.drop()
    first = tiny_engine.generate(ask("Hello"), GREEDY).wait()
    follow = ask("Hello") + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "More"}]
    reused = tiny_engine.generate(follow, GREEDY).wait()
    assert reused.metrics.prefill_tokens < reused.metrics.prompt_tokens / 2
    tiny_engine.turn_cache.drop()
    fresh = tiny_engine.generate(follow, GREEDY).wait()
    assert fresh.metrics.prefill_tokens == fresh.metrics.prompt_tokens
    assert fresh.text == reused.text
    # An edited earlier message invalidates the cache from the edit on.
    edited = [{"role": "user", "content": "Goodbye"}] + follow[1:]
    builder = PromptBuilder(tiny_engine.loaded.tokenizer)
    before_ids = builder.build(follow, TINY_CONTEXT, 20).ids
    edited_ids = builder.build(edited, TINY_CONTEXT, 20).ids
    unchanged = next(i for i, (a, b) in enumerate(zip(before_ids, edited_ids, strict=False)) if a != b)
    after_edit = tiny_engine.generate(edited, GREEDY).wait()
    assert after_edit.metrics.prefill_tokens == len(edited_ids) - unchanged


def test_a_draft_prefilled_while_typing_leaves_only_the_rest_and_output_matches(tiny_engine):
    tiny_engine.turn_cache.drop()
    first = tiny_engine.generate(ask("Hello"), GREEDY).wait()
    history = ask("Hello") + [{"role": "assistant", "content": first.text}]
    sent = history + [{"role": "user", "content": "Tell me about the sea and the ships on it"}]
    tiny_engine.turn_cache.drop()
    plain = tiny_engine.generate(sent, GREEDY).wait()  # everything prefilled at send

    tiny_engine.turn_cache.drop()
    draft = history + [{"role": "user", "content": "Tell me about the sea"}]  # typed so far
    assert tiny_engine.prefill(draft, GREEDY).result() > 0
    assert tiny_engine.prefill(draft, GREEDY).result() == 0  # nothing new: nothing to do
    after_draft = tiny_engine.generate(sent, GREEDY).wait()
    assert after_draft.text == plain.text
    assert after_draft.metrics.prefill_tokens < 20 < plain.metrics.prefill_tokens

    tiny_engine.turn_cache.drop()
    tiny_engine.prefill(sent, GREEDY).result()  # the whole message, before Enter
    assert tiny_engine.generate(sent, GREEDY).wait().metrics.prefill_tokens == 1


def test_a_prefill_that_fails_loses_nothing_and_is_logged(tiny_engine, monkeypatch, tui_log):
    model = tiny_engine.loaded.model
    tiny_engine.turn_cache.drop()

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(model, "forward", out_of_memory)
    assert tiny_engine.prefill(ask("Hello"), GREEDY).result() == 0
    assert any("prefill" in r.getMessage() and "simulated out of memory" in r.getMessage() for r in tui_log.records)
    monkeypatch.undo()
    assert isinstance(tiny_engine.generate(ask("Hello"), GREEDY).wait(), Finished)


def test_oldest_turns_are_dropped_to_fit_the_context_and_system_is_kept(tiny_engine):
    long = "word " * 60
    messages = [{"role": "system", "content": "SYSTEM-MARK"}]
    for i in range(8):
        messages += [{"role": "user", "content": f"q{i} {long}"}, {"role": "assistant", "content": f"a{i} {long}"}]
    messages.append({"role": "user", "content": "last question"})
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 50})
    final = tiny_engine.generate(messages, settings).wait()
    assert isinstance(final, Finished)
    assert final.dropped_messages >= 2 and final.dropped_messages % 2 == 0
    assert final.metrics.prompt_tokens + 50 <= TINY_CONTEXT
    prompt = PromptBuilder(tiny_engine.loaded.tokenizer).build(messages, TINY_CONTEXT, 50)
    text = tiny_engine.loaded.tokenizer.decode(prompt.ids)
    assert "SYSTEM-MARK" in text and "last question" in text and "q0 " not in text


def test_max_new_tokens_beyond_the_context_fails_clearly(tiny_engine):
    settings = GenerationSettings().with_updates({"max_new_tokens": TINY_CONTEXT + 1})
    final = tiny_engine.generate(ask("Hi"), settings).wait()
    assert isinstance(final, Failed) and "context" in final.error


def test_system_prompt_is_merged_when_the_template_rejects_it(tiny_engine):
    import copy

    tokenizer = copy.deepcopy(tiny_engine.loaded.tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    ids = PromptBuilder(tokenizer).build(messages, 512, 10).ids
    assert tokenizer.decode(ids) == "<user>Be brief.\n\nHi</s><assistant>"


def test_model_without_template_gets_a_plain_format():
    class Tok:
        chat_template = None

        def __call__(self, text, add_special_tokens=True):
            self.text = text
            return {"input_ids": list(range(len(text.split())))}

    tok = Tok()
    PromptBuilder(tok).build([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], 512, 10)
    assert tok.text == "System: S\n\nUser: Hi\n\nAssistant:"


def test_load_without_template_warns(tiny_model_dir, tmp_path):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    import json

    cfg = json.loads((plain / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(cfg))
    engine = Engine()
    try:
        info = engine.load(LoadSettings(model=str(plain))).result()
        assert not info.has_chat_template and any("chat template" in w for w in info.warnings)
        assert isinstance(engine.generate(ask("Hi"), GREEDY).wait(), Finished)
    finally:
        engine.close()


@pytest.mark.parametrize(
    "model, fragment",
    [
        ("/no/such/model", "not found"),
        ("missing.gguf", "GGUF file not found"),
        ("someorg/not-cached-model", "not in the Hugging Face cache"),
    ],
)
def test_bad_sources_fail_with_one_clear_line(model, fragment):
    engine = Engine()
    try:
        with pytest.raises(LoadError, match=fragment) as info:
            engine.load(LoadSettings(model=model)).result()
        assert "\n" not in str(info.value)
    finally:
        engine.close()


def test_dir_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    engine = Engine()
    try:
        with pytest.raises(LoadError, match="not a model directory"):
            engine.load(LoadSettings(model=str(tmp_path))).result()
    finally:
        engine.close()


def test_remote_code_needs_the_flag(tmp_path):
    import json

    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "my_custom_arch",
                "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XModel"},
            }
        )
    )
    (tmp_path / "configuration_x.py").write_text("raise SystemExit('remote code ran')\n")
    engine = Engine()
    try:
        with pytest.raises(LoadError, match="--trust-remote-code"):
            engine.load(LoadSettings(model=str(tmp_path))).result()
    finally:
        engine.close()


def test_cuda_request_without_gpu_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    engine = Engine()
    try:
        with pytest.raises(LoadError, match="no CUDA GPU"):
            engine.load(LoadSettings(device="cuda")).result()
    finally:
        engine.close()


def test_failed_reload_keeps_the_previous_model(tiny_model_dir):
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir))).result()
        with pytest.raises(LoadError, match="not found"):
            engine.load(LoadSettings(model="/no/such/dir")).result()
        assert engine.info is not None and engine.info.source == str(tiny_model_dir)
        assert isinstance(engine.generate(ask("Hi"), GREEDY).wait(), Finished)
    finally:
        engine.close()


def test_progress_reaches_the_end(tiny_model_dir):
    seen = []
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir)), lambda d, t, label: seen.append((d, t, label))).result()
    finally:
        engine.close()
    assert seen[-1][0] == seen[-1][1] and all(0 <= d <= t for d, t, _ in seen)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_engine_runs_all_torch_work_on_one_thread(tiny_engine):
    names = set()
    for _ in range(3):
        names.add(tiny_engine._executor.submit(lambda: threading.current_thread().name).result())
    assert len(names) == 1


def test_a_reinstalled_gguf_leaves_one_converted_copy(tmp_path):
    """The cache key holds the GGUF's mtime, so a reinstalled package converts again: the copies
    from before (each as big as the model) are removed, other models' copies are not."""
    from tui.engine.sources import _remove_stale_copies

    names = ["Model.Q4_1-100-1", "Model.Q4_1-100-2", "Model.Q4_1-200-3", "Other-100-1", ".converting-x"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"w")
    _remove_stale_copies(tmp_path / "Model.Q4_1-100-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - {"Model.Q4_1-100-1"})


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
        engine.close()


def test_a_draft_model_that_cannot_load_is_a_warning_not_a_failure(tiny_model_dir, tmp_path):
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    try:
        info = engine.load(LoadSettings(model=str(tiny_model_dir), draft_model=str(tmp_path / "nope"))).result()
        assert info.draft is None
        assert any(w.startswith("draft model not used:") and "nope" in w for w in info.warnings)
        final = engine.generate(
            [{"role": "user", "content": "hi"}], GenerationSettings().with_updates({"max_new_tokens": 4})
        ).wait()
        assert final.metrics.new_tokens == 4
    finally:
        engine.close()


def test_a_turn_queued_when_the_engine_shuts_down_still_ends():
    """Every Turn that generate() returns must end, even when close() cancels its job before
    it ran: a reader blocked on it forever is a hang (see the app test below)."""
    engine = Engine()  # no model needed: the job never runs
    blocker = threading.Event()
    engine._executor.submit(blocker.wait)  # the torch thread is busy (a previous reply's last token)
    turn = engine.generate([{"role": "user", "content": "hi"}], GenerationSettings())
    engine.close()
    blocker.set()
    ended = threading.Event()
    threading.Thread(target=lambda: (turn.wait(), ended.set()), daemon=True).start()
    if not ended.wait(5):
        from tui.engine import Failed

        turn.emit(Failed("released by the test", ""))  # let the waiting thread go
        raise AssertionError("a turn whose job was cancelled by close() never ends")
    assert turn.final.text == ""


def test_stop_strings_get_the_tokenizer_and_end_the_reply(tiny_engine):
    """The tiny model writes newlines a lot: stop at the first one."""
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 40, "stop_strings": ["\n"]})
    final = tiny_engine.generate([{"role": "user", "content": "hi"}], settings).wait()
    assert isinstance(final, Finished) and final.text.endswith("\n") and final.text.count("\n") == 1
    assert final.metrics.new_tokens < 40


def tiny_engine_reply_ids(model_dir) -> list[int]:
    """The token ids of the tiny model's greedy reply to "hi" (plain transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=0)
    return out[0, ids.shape[1] :].tolist()


def test_the_models_generation_config_is_the_base_under_chatuis_defaults(tiny_model_dir, tmp_path):
    """A model's generation_config.json applies where chatui sets nothing (an end-of-turn token:
    here the one the tiny model writes first, so the reply ends at once), and chatui's defaults win
    where both set a value (max_new_tokens)."""
    import json
    import shutil

    first_token = tiny_engine_reply_ids(tiny_model_dir)[0]
    messages = [{"role": "user", "content": "hi"}]
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 40})
    for name, update in (("eos", {"eos_token_id": first_token}), ("short", {"max_new_tokens": 2})):
        model_dir = tmp_path / name
        shutil.copytree(tiny_model_dir, model_dir)
        config = json.loads((model_dir / "generation_config.json").read_text())
        (model_dir / "generation_config.json").write_text(json.dumps(config | update))
        engine = Engine()
        try:
            engine.load(LoadSettings(model=str(model_dir))).result()
            final = engine.generate(messages, settings).wait()
        finally:
            engine.close()
        if name == "eos":
            assert (final.reason, final.metrics.new_tokens) == ("stop", 1)  # the model's own end of turn
        else:
            assert (final.reason, final.metrics.new_tokens) == ("length", 40)  # chatui's 40, not the model's 2
