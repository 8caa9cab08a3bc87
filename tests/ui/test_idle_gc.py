"""The app's garbage-collection policy: no full collection while a reply streams, one when idle."""

import gc

import pytest
import torch

from tui.ui import idle_gc
from tui.ui.idle_gc import IdleCollector


@pytest.fixture
def collector():
    thresholds = gc.get_threshold()
    yield IdleCollector()
    gc.set_threshold(*thresholds)


def test_full_collections_are_off_while_a_reply_streams_until_the_idle_collection(collector, monkeypatch):
    gen0, gen1, gen2 = gc.get_threshold()
    collector.reply_started()
    assert gc.get_threshold() == (gen0, gen1, idle_gc.NO_FULL_COLLECTIONS)
    collector.reply_ended()  # switched back on here, one would fire at once as the reply's end is drawn
    assert gc.get_threshold() == (gen0, gen1, idle_gc.NO_FULL_COLLECTIONS)
    monkeypatch.setattr(idle_gc, "IDLE_S", 0.0)
    assert collector.tick()
    assert gc.get_threshold() == (gen0, gen1, gen2)


def test_the_owed_collection_waits_for_the_user_to_be_idle(collector, monkeypatch):
    full: list[int] = []

    def on_gc(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    gc.callbacks.append(on_gc)
    try:
        collector.reply_started()
        assert not collector.tick()  # streaming: not now
        collector.reply_ended()
        assert not collector.tick()  # the user was just here
        monkeypatch.setattr(idle_gc, "IDLE_S", 0.0)
        collector.activity.mark()
        assert collector.tick() and full == [1]
        assert not collector.tick()  # nothing owed any more
    finally:
        gc.callbacks.remove(on_gc)


def test_a_collection_is_never_put_off_for_ever(collector, monkeypatch):
    collector.reply_started()
    monkeypatch.setattr(idle_gc, "MAX_DEFER_S", 0.0)
    assert collector.tick()  # still streaming, but it has waited long enough
    assert collector.pending_since is not None  # and the rest of this reply owes another


def test_freezing_moves_what_exists_out_of_the_collectors_sight(collector):
    before = gc.get_freeze_count()
    try:
        collector.freeze_long_lived()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_a_reload_in_the_app_frees_the_old_model(tmp_path, tiny_model_dir, monkeypatch):
    """The model is frozen out of the collector's sight after a load; it must be thawed before the
    next one, and its reference cycles collected before the new one is frozen, or they keep the old
    model (and its memory) alive for good. The engine's own collection when it frees a model can be
    skipped (CPython skips `gc.collect()` while another thread's collection is running: seen in CI),
    so here it is skipped always, and no automatic collection runs either."""
    import asyncio
    import types
    import weakref

    from pilot import booted, wait_for

    import tui.engine.loading
    from tui.engine import Engine

    monkeypatch.setattr(tui.engine.loading, "gc", types.SimpleNamespace(collect=lambda: 0))

    async def scenario():
        async with booted(tmp_path, str(tiny_model_dir), engine=Engine(), timeout=120) as (pilot, app):
            assert gc.get_freeze_count() > 0
            old = weakref.ref(app.engine.loaded.model)
            gc.disable()
            app.chat_screen.loader.reload(app.chat_screen.loader.load_settings.replace(dtype="bfloat16"))
            await wait_for(pilot, lambda: app.chat_screen.state == "loading", 30)
            await wait_for(pilot, lambda: app.chat_screen.state == "ready", 120)
            assert app.engine.loaded.model.dtype == torch.bfloat16
            gc.enable()
            gc.collect()
            assert old() is None, "the old model is still alive after the reload"

    try:
        asyncio.run(scenario())
    finally:
        gc.enable()
