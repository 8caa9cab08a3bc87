"""`--compile`: static cache + torch.compile, compiled in the background after load; replies use
it once it is ready, and a failed compile leaves the usual path working."""

from __future__ import annotations

import pytest

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings
from tui.engine.compiled import BackgroundCompile

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12})
ASK = [{"role": "user", "content": "Tell me a story"}]


@pytest.fixture(scope="module")
def plain_reply(tiny_engine) -> str:
    tiny_engine._drop_cache()
    return tiny_engine.generate(ASK, GREEDY).wait().text


def test_compiled_replies_use_the_static_cache_and_match(tiny_model_dir, plain_reply):
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), compile=True)).result()
        job = engine.compile
        assert job is not None
        during = engine.generate(ASK, GREEDY).wait()  # while it compiles: the usual path
        assert isinstance(during, Finished) and during.text == plain_reply
        assert job.done.result(timeout=240) == "ready", job.error
        model = engine._loaded.model
        calls = []
        compiled_call = model._compiled_call  # transformers' compiled forward, made by the warm-up
        model._compiled_call = lambda *a, **k: calls.append(1) or compiled_call(*a, **k)
        final = engine.generate(ASK, GREEDY).wait()
        assert isinstance(final, Finished) and final.text == plain_reply
        assert calls  # decode steps ran through the compiled forward
        assert type(job._cache).__name__ == "StaticCache" and engine._cache is None  # not kept for reuse
    finally:
        engine.shutdown()


def test_a_failed_compile_is_reported_and_replies_still_work(tiny_model_dir, plain_reply, monkeypatch):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("simulated: no C compiler")

    monkeypatch.setattr(torch, "compile", broken)
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), compile=True)).result()
        assert engine.compile.done.result(timeout=120) == "failed"
        assert "simulated: no C compiler" in engine.compile.error
        final = engine.generate(ASK, GREEDY).wait()
        assert isinstance(final, Finished) and final.text == plain_reply
    finally:
        engine.shutdown()


def test_a_reply_too_long_for_the_static_cache_uses_the_usual_path(tiny_model_dir):
    job = BackgroundCompile(model=None, context_size=8192)
    job.state = "ready"
    assert job.max_cache_len == 2048
    assert job.generate_kwargs(prompt_tokens=2000, max_new_tokens=100) is None
