"""The whole app: its process (killed mid-reply, quitting), config.toml it cannot write, and what it
leaves on disk and on the network."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from fakes import ScriptedEngine
from pilot import booted, make_app, notes, reply_texts, run, send, wait_for
from processes import HELPERS, PipeReader, integrity, kill_9, poll, spawned, subprocess_env

from tui.cli.main import parse_args
from tui.engine import Engine
from tui.store import Library
from tui.store.config import Config
from tui.ui.app import ChatApp


def test_kill_9_of_the_app_mid_reply_keeps_all_but_the_last_two_seconds(tmp_path):
    db_path = tmp_path / "data" / "library.sqlite3"
    command = [sys.executable, str(HELPERS / "app_kill_target.py"), str(db_path), str(tmp_path / "config.toml")]
    with spawned(command, subprocess_env(tmp_path), stderr=subprocess.STDOUT) as proc:
        out = PipeReader(proc.stdout)
        poll(lambda: "STREAMING" in out.text(), 60, "the second reply to stream", proc, out)
        streaming_at = time.monotonic()
        poll(lambda: time.monotonic() - streaming_at > 4.5, 10, "four seconds of streaming", proc, out)
        killed_at = time.monotonic()
        kill_9(proc)
    out.join()
    assert "NOT-KILLED" not in out.text()
    conv_id = out.text().split("STREAMING", 1)[1].split()[0]
    before = out.data[: out.bytes_at(killed_at - 2.2)].decode()
    shown_two_seconds_before = int(before.rsplit("TOKENS", 1)[1].split()[0])
    assert shown_two_seconds_before > 20  # it streamed for a while before that
    assert integrity(db_path) == "ok"
    sys.path.insert(0, str(HELPERS))
    try:
        from app_kill_target import FIRST_REPLY, SECOND_REPLY
    finally:
        sys.path.remove(str(HELPERS))
    library = Library(db_path)
    assert library.recovered_from is None
    conv = library.get(conv_id)
    assert [(m.role, m.content, m.status) for m in conv.messages[:3]] == [
        ("user", "first question", "ok"),
        ("assistant", FIRST_REPLY, "ok"),
        ("user", "second question", "ok"),
    ]
    second = conv.messages[3]
    assert (second.role, second.status) == ("assistant", "interrupted")
    assert SECOND_REPLY.startswith(second.content)
    assert len(second.content.split()) >= shown_two_seconds_before  # at most ~2 s lost
    assert conv.title == "first question"
    library.close()


def test_quitting_while_a_reply_is_queued_does_not_hang_the_exit(tmp_path, tiny_model_dir):
    """Quit (ctrl+q) while the reply just sent waits behind other work on the torch thread (the
    last token of a reply stopped a moment before): on_unmount closes the engine, which
    cancels that reply's job. Its reply worker, an event-loop executor thread, must end: the UI
    closes either way, but asyncio.run() then joins the executor threads, so a worker blocked
    forever on the turn leaves the process hanging after the terminal is given back."""
    from tui.engine import Failed

    engine = Engine()
    blocker = threading.Event()
    real_close = engine.close

    def close() -> None:
        real_close()
        blocker.set()  # the job ahead of the reply ends just after, as a last token would

    engine.close = close
    state: dict = {}

    async def scenario():
        async with booted(
            tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=5", engine=engine, timeout=120
        ) as (pilot, app):
            engine._executor.submit(blocker.wait)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.chat_screen.state == "generating")
            state["turn"] = app.chat_screen.replies.turn
            await pilot.press("ctrl+q")
        turn = state["turn"]

        def turn_ended() -> bool:
            # read by the worker, or waiting in the queue: a worker told to stop listening may have
            # gone before the engine's shutdown ended the turn (on a loaded machine), which is fine
            return turn.final is not None or turn.end_is_waiting()

        deadline = time.monotonic() + 3
        while not turn_ended() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        ended = turn_ended()
        if not ended:  # release the worker ourselves, or asyncio.run() would hang this test too
            turn.emit(Failed("released by the test", ""))
            await asyncio.sleep(0.2)
        assert ended, "after quitting, the reply worker is blocked forever on a turn that never ends"

    run(scenario())


def test_unwritable_or_full_config_dir_is_reported_and_settings_stay(tmp_path, monkeypatch):
    """Saving settings where the config dir cannot be written (a file where the folder should be,
    as a read-only dir is for root), then on a full disk: a clear message, the settings stay in
    effect, the old file is left whole, and saving works once the dir does."""
    import errno

    from tui import paths  # the one atomic writer

    blocker = tmp_path / "config"
    blocker.write_text("a regular file where the config folder should be\n")
    config_file = blocker / "chatui" / "config.toml"

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(["fine"]), config=Config(path=config_file)) as (pilot, app):
            await send(pilot, app, "/set temperature=0.3")
            await pilot.pause()
            app.action_save_defaults()
            await pilot.pause()
            failed = [n for n in app.notified if n.title == "Could not save"]
            assert len(failed) == 1 and failed[0].severity == "error"
            assert str(config_file) in failed[0].message and "cannot write" in failed[0].message
            assert app.chat_screen.session.generation.temperature == 0.3  # still in effect
            await send(pilot, app, "still chatting?")
            await wait_for(pilot, lambda: reply_texts(app) == ["fine"])

            blocker.unlink()  # the dir can be written again
            app.action_save_defaults()
            await pilot.pause()
            assert any(m.startswith("Saved as defaults in") for m in notes(app))
            saved = config_file.read_text()
            assert "temperature = 0.3" in saved

            # A full disk: the write fails part-way (the new file is written but cannot be flushed to
            # disk); the file that was there stays as it was.
            def no_space(*_args, **_kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(paths.os, "fsync", no_space)
            await send(pilot, app, "/set temperature=0.9")
            await pilot.pause()
            app.action_save_defaults()
            await pilot.pause()
            failed = [n for n in app.notified if n.title == "Could not save"]
            assert len(failed) == 2 and "No space left on device" in failed[-1].message
            assert config_file.read_text() == saved
            assert [p.name for p in config_file.parent.iterdir()] == ["config.toml"]  # no temp file left
            assert app.chat_screen.session.generation.temperature == 0.9

    run(scenario())


def test_library_and_exports_are_private_and_nothing_listens(tmp_path, monkeypatch, tiny_model_dir):
    data_home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    old_umask = os.umask(0o000)  # the modes must come from chatui, not from a careful umask
    try:

        async def scenario():
            # The app's own default saver: the library at the platformdirs path, opened lazily.
            app = ChatApp(
                parse_args([str(tiny_model_dir), "do_sample=false", "max_new_tokens=4"]),
                Config(path=tmp_path / "config.toml"),
                engine=Engine(),
            )
            async with app.run_test() as pilot:
                await wait_for(pilot, lambda: app.chat_screen.state == "ready", 120)
                await send(pilot, app, "a secret")
                await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1, 60)
                listening = [c for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
                assert listening == []
                assert [c for c in psutil.Process().net_connections(kind="all") if c.status == psutil.CONN_LISTEN] == []
                export = tmp_path / "exported.md"
                export.write_text("an older file, world-readable\n")
                os.chmod(export, 0o644)
                await pilot.press("ctrl+s")
                await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TextPromptScreen")
                app.screen.query_one("#prompt-value").value = str(export)
                await pilot.press("enter")
                await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")  # replace it?
                await pilot.press("y")
                await wait_for(pilot, lambda: "a secret" in export.read_text())
            return app.saver.library.path

        library_path = run(scenario())
    finally:
        os.umask(old_umask)
    assert library_path == data_home / "chatui" / "library.sqlite3"
    assert library_path.stat().st_mode & 0o777 == 0o600
    assert library_path.parent.stat().st_mode & 0o777 == 0o700
    for side in ("-wal", "-shm"):
        extra = library_path.with_name(library_path.name + side)
        if extra.exists():
            assert extra.stat().st_mode & 0o777 == 0o600, side
    assert (tmp_path / "exported.md").stat().st_mode & 0o777 == 0o600
    from tui.store import write_file_atomic

    direct = tmp_path / "direct.json"
    write_file_atomic(direct, "{}")
    assert direct.stat().st_mode & 0o777 == 0o600


def test_help_lists_every_binding(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("f1")
            await pilot.pause()
            table = app.screen.query_one("#help-keys")
            keys = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            for binding in ChatApp.BINDINGS:
                assert binding.key in keys

    run(scenario())


def test_screenshot_goes_to_the_current_folder_when_there_is_no_downloads_folder(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_downloads_dir", lambda: str(tmp_path / "no-such-Downloads"))
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)

    async def scenario():
        async with booted(tmp_path) as (pilot, app):
            app.action_screenshot()
            await wait_for(pilot, lambda: any(n.startswith("Screenshot saved to ") for n in notes(app)), 10)
            saved = [n.removeprefix("Screenshot saved to ") for n in notes(app) if n.startswith("Screenshot saved")]
            assert Path(saved[0]).parent == here and Path(saved[0]).is_file()

    asyncio.run(scenario())
