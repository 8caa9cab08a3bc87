"""The welcome panel of an empty chat: the model and its state, what to type, the keys that
matter, and while a model loads its real progress with the time so far and the time left."""

from __future__ import annotations

import pytest
from fakes import ScriptedEngine
from pilot import booted, make_app, run, send, wait_for

from tui.engine.loading import _gguf_tensor_progress
from tui.ui.screens.chat_model import ModelLoader
from tui.ui.widgets.welcome import Welcome, welcome_text


def test_the_clock_shows_from_two_seconds_with_the_time_left() -> None:
    quick = welcome_text(Welcome("m", "loading", "loading weights", elapsed_s=1.0, left_s=1.0)).plain
    assert "◌ loading: loading weights\n" in quick and "left" not in quick
    slow = welcome_text(Welcome("m", "loading", "converting GGUF: tensors (128/272)", elapsed_s=12.0, left_s=8.4))
    assert "◌ loading: converting GGUF: tensors (128/272) · 12 s · about 8 s left" in slow.plain
    assert "about 2.0 min left" in welcome_text(Welcome("m", "loading", "x", elapsed_s=30.0, left_s=120.0)).plain


def test_the_gguf_conversion_bar_is_the_loads_progress_not_the_terminals(capsys: pytest.CaptureFixture[str]) -> None:
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    reports: list[tuple[int, int, str]] = []
    with _gguf_tensor_progress(lambda done, total, label: reports.append((done, total, label))):
        for _ in gguf_utils.tqdm(range(32), desc="Converting and de-quantizing GGUF tensors..."):
            pass
    assert reports[-1] == (30, 100, "converting GGUF: tensors (32/32)")
    assert [done for done, _, _ in reports] == sorted(done for done, _, _ in reports)
    assert capsys.readouterr().err == ""  # no tqdm bar on the terminal
    assert gguf_utils.tqdm.__module__.startswith("tqdm")  # put back


def test_an_empty_chat_welcomes_and_a_message_hides_it(tmp_path) -> None:
    async def scenario():
        async with booted(tmp_path, size=(100, 30)) as (pilot, app):
            chat = app.chat_screen
            text = str(chat.welcome.render()).replace("\u00a0", " ")
            assert "chatui · scripted-model" in text and "● ready: cpu · float32 · 135M parameters" in text
            assert "f1 help" in text and "ctrl+b settings" in text and "ctrl+o chats" in text
            assert chat.welcome.display
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: chat.state == "ready" and len(chat.messages) == 2)
            assert not chat.welcome.display
            await pilot.press("ctrl+n")
            await wait_for(pilot, lambda: chat.welcome.display)

    run(scenario())


def test_a_slow_load_shows_its_progress_the_time_so_far_and_left(tmp_path, monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ModelLoader, "clock", staticmethod(lambda: now[0]))

    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(hold_load=True))  # stays at 40 % "loading weights"
        async with app.run_test(size=(100, 30)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: "loading weights" in str(chat.welcome.render()))
            now[0] += 12.0
            chat.loader.tick()
            await pilot.pause()
            assert "◌ loading: loading weights · 12 s · about 18 s left" in str(chat.welcome.render())

    run(scenario())


def test_the_key_line_breaks_between_pairs_never_inside_one() -> None:
    keys = (("f1", "help"), ("ctrl+b", "settings"), ("ctrl+o", "chats"), ("ctrl+l", "models"))
    for width in (30, 54, 80):
        lines = welcome_text(Welcome("m", "ready", keys=keys), width).plain.splitlines()
        key_lines = lines[lines.index(next(line for line in lines if line.startswith("f1 help"))) :]
        assert all(len(line) <= width for line in key_lines), (width, key_lines)
        assert sorted(pair for line in key_lines for pair in line.split("   ")) == sorted(
            f"{key} {what}" for key, what in keys
        )
    assert len(welcome_text(Welcome("m", "ready", keys=keys), 80).plain.splitlines()) == 4  # one key line


def test_the_last_step_of_a_load_reads_finishing_not_loading_ready(tmp_path) -> None:
    from fakes import ScriptedEngine
    from pilot import make_app

    from tui.ui.bridge import LoadProgress

    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(hold_load=True))
        async with app.run_test() as pilot:
            loader = app.chat_screen.loader
            await wait_for(pilot, lambda: loader.started is not None)
            loader.progress(LoadProgress(100, 100, "ready"))
            text = str(app.chat_screen.welcome.render())
            assert "◌ loading: finishing" in text and "left" not in text

    run(scenario())
