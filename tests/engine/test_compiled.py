"""`--compile`: static cache + torch.compile, compiled on the engine's torch thread right after
the load; replies wait for it and then use it, and a failed compile leaves the usual path working."""

from __future__ import annotations

import os
import threading

import pytest

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings
from tui.engine.compiled import CompileJob
from tui.paths import cache_dir

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12})
ASK = [{"role": "user", "content": "Tell me a story"}]


@pytest.fixture(scope="module")
def plain_reply(tiny_engine) -> str:
    tiny_engine.turn_cache.drop()
    return tiny_engine.generate(ASK, GREEDY).wait().text


def test_compiled_replies_use_the_static_cache_and_match(tiny_model_dir, plain_reply, monkeypatch):
    threads = []
    compile_run = CompileJob.run
    monkeypatch.setattr(
        CompileJob, "run", lambda job: threads.append(threading.current_thread().name) or compile_run(job)
    )
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what inductor sets once imported
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), compile=True)).result()
        job = engine.compile
        assert job is not None
        during = engine.generate(ASK, GREEDY).wait()  # sent while it compiles: it waits its turn
        assert job.done.done() and isinstance(during, Finished) and during.text == plain_reply
        assert job.done.result() == "ready", job.error
        assert threads and threads[0].startswith("chatui-torch")  # the engine's one torch thread
        inductor = cache_dir() / "inductor"  # its compiled code is kept for the next start
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(inductor) and any(inductor.iterdir())
        model = engine.loaded.model
        calls = []
        compiled_call = model._compiled_call  # transformers' compiled forward, made by the warm-up
        model._compiled_call = lambda *a, **k: calls.append(1) or compiled_call(*a, **k)
        final = engine.generate(ASK, GREEDY).wait()
        assert isinstance(final, Finished) and final.text == plain_reply
        assert calls  # decode steps ran through the compiled forward
        assert type(job._cache).__name__ == "StaticCache" and engine.turn_cache._cache is None  # not kept for reuse
    finally:
        engine.close()


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
        engine.close()


def test_a_compile_folder_the_user_set_is_kept(monkeypatch, tmp_path):
    from tui.engine.compiled import keep_compiled_code

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    keep_compiled_code()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path)


def test_a_reply_too_long_for_the_static_cache_uses_the_usual_path(tiny_model_dir):
    job = CompileJob(model=None, context_size=8192)
    job.state = "ready"
    assert job.max_cache_len == 2048
    assert job.generate_kwargs(prompt_tokens=2000, max_new_tokens=100) is None
