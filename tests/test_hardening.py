"""Trying to break chatui: kill -9 mid-reply, an unwritable library, model loads that must fail
cleanly, a model that fails mid-stream, bad input, a UI that must stay responsive under load, a
100-turn soak, and the security defaults. Every test fails without the protection it checks.

Figures (latencies, thread counts, RSS) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from fakes import ScriptedEngine
from tui.app import ChatApp
from tui.cli import parse_args
from tui.engine import Engine, GenerationSettings, LoadError, LoadSettings
from tui.store import AutoSaver, Library
from tui.store.config import Config

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"


# -- helpers -------------------------------------------------------------------------------------

def run(coro):
    return asyncio.run(coro)


def make_app(tmp_path: Path, *args: str, engine=None, saver: AutoSaver | None = None) -> ChatApp:
    saver = saver or AutoSaver(Library(tmp_path / "library.sqlite3"))
    return ChatApp(parse_args(list(args)), Config(path=tmp_path / "config.toml"),
                   engine=engine or ScriptedEngine(), saver=saver)


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "the app") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def send(pilot, app: ChatApp, text: str) -> None:
    app.prompt_input.load_text(text)
    app.prompt_input.focus()
    await pilot.press("enter")


def replies(app: ChatApp) -> list[str]:
    return [m.content for m in app.messages if m.role == "assistant"]


def notes(app: ChatApp) -> list[str]:
    return [n.message for n in app._notifications]


def post_key(app: ChatApp, key: str, char: str | None = None) -> None:
    """Deliver a key as the terminal driver does, without Pilot's wait for the CPU to go idle."""
    from textual import events

    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def keypress_latency(pilot, app: ChatApp, char: str = "x") -> float:
    """Seconds from a key arriving (as the terminal driver delivers it) until the prompt has it.

    Not `pilot.press`: it also waits for the whole process to go CPU-idle (up to 1 s, twice),
    which never happens while a reply streams, so it would time Pilot, not the app."""
    before = app.prompt_input.cursor_location
    started = time.perf_counter()
    post_key(app, char, char)
    while app.prompt_input.cursor_location == before:
        if time.perf_counter() - started > 10:
            raise AssertionError("a keypress was not handled within 10 s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


class FrameClock:
    """When each frame went out, and where the prompt's cursor was in it (App._display runs at the
    end of every screen update with something to draw; headless, it stops short of the terminal)."""

    def __init__(self, app: ChatApp) -> None:
        self.frames: list[tuple[float, tuple[int, int]]] = []
        display = app._display

        def timed(screen, renderable) -> None:
            display(screen, renderable)
            if renderable is not None and not app._batch_count:  # what _display draws
                self.frames.append((time.perf_counter(), app.prompt_input.cursor_location))

        app._display = timed

    def first_showing(self, cursor: tuple[int, int], since: float) -> float | None:
        return next((at for at, shown in self.frames if at >= since and shown == cursor), None)


async def keypress_to_frame(pilot, app: ChatApp, clock: FrameClock) -> tuple[float, float]:
    """Seconds from a key arriving until the prompt has it, and until a frame shows it."""
    started = time.perf_counter()
    handled = await keypress_latency(pilot, app)
    cursor = app.prompt_input.cursor_location
    while (shown_at := clock.first_showing(cursor, started)) is None:
        if time.perf_counter() - started > 10:
            raise AssertionError("a keypress was not drawn within 10 s")
        await asyncio.sleep(0.001)
    return handled, shown_at - started


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONUNBUFFERED="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def library_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "chatui" / "library.sqlite3"  # platformdirs on Linux, app name chatui


class PipeReader:
    """Collects a pipe's bytes on a thread, so the test can poll without blocking."""

    def __init__(self, pipe) -> None:
        self.data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        fd = pipe.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self.data += chunk

    def text(self) -> str:
        with self._lock:
            return self.data.decode("utf-8", "replace")

    def __len__(self) -> int:
        with self._lock:
            return len(self.data)

    def join(self) -> None:
        self._thread.join(10)


def poll(condition, timeout: float, what: str, proc: subprocess.Popen | None = None,
         output: PipeReader | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}: "
                                 f"{output.text()[-2000:] if output else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def raw_rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """A plain read (no migration, no recovery) of the library, safe while another process writes."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def integrity(path: Path) -> str:
    return raw_rows(path, "PRAGMA integrity_check")[0][0]


def kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


# -- 1. kill -9 during a reply -------------------------------------------------------------------

def test_kill_9_during_a_headless_reply_keeps_the_library_whole(tmp_path, tiny_model_dir):
    env = subprocess_env(tmp_path)
    db_path = library_file(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", str(tiny_model_dir), "do_sample=false", "max_new_tokens=400",
         "--prompt", "first", "--prompt", "second", "--stats"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = PipeReader(proc.stdout), PipeReader(proc.stderr)
    try:
        def first_reply() -> str | None:
            if not db_path.exists():
                return None
            try:
                rows = raw_rows(db_path, "SELECT content FROM messages WHERE role = 'assistant' ORDER BY seq")
            except sqlite3.Error:  # not created yet
                return None
            return rows[0][0] if rows else None

        poll(lambda: first_reply() is not None, 120, "the first reply to be saved", proc, err)
        reply1 = first_reply()
        first_turn_bytes = len(reply1.encode()) + 1  # the reply, then the newline run_headless adds
        # The second turn has begun streaming once stdout holds more than the first turn.
        poll(lambda: len(out) > first_turn_bytes, 60, "the second reply to stream", proc, err)
        streamed_at_kill = out.text()
        kill_9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.join()
    assert streamed_at_kill.startswith(reply1 + "\n")
    assert "turn=2" not in err.text()  # it really was mid-reply
    assert integrity(db_path) == "ok"
    library = Library(db_path)
    assert library.recovered_from is None  # the file was not judged damaged
    [summary] = library.list()
    conv = library.get(summary.id)
    assert [(m.role, m.content) for m in conv.messages] == [
        ("user", "first"), ("assistant", reply1), ("user", "second")]
    assert conv.messages[1].status == "length"
    library.close()
    listed = subprocess.run([sys.executable, "-m", "tui", "--list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert summary.id[:8] in listed.stdout and "first" in listed.stdout


def test_kill_9_of_the_app_mid_reply_keeps_the_first_exchange(tmp_path):
    db_path = tmp_path / "data" / "library.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, str(HELPERS / "app_kill_target.py"), str(db_path), str(tmp_path / "config.toml")],
        cwd=ROOT, env=subprocess_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    out = PipeReader(proc.stdout)
    try:
        poll(lambda: "STREAMING" in out.text(), 60, "the second reply to stream", proc, out)
        kill_9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.join()
    assert "NOT-KILLED" not in out.text()
    conv_id = out.text().split("STREAMING", 1)[1].split()[0]
    assert integrity(db_path) == "ok"
    sys.path.insert(0, str(HELPERS))
    try:
        from app_kill_target import FIRST_REPLY
    finally:
        sys.path.remove(str(HELPERS))
    library = Library(db_path)
    assert library.recovered_from is None
    conv = library.get(conv_id)
    assert [(m.role, m.content, m.status) for m in conv.messages] == [
        ("user", "first question", "ok"), ("assistant", FIRST_REPLY, "ok"), ("user", "second question", "ok")]
    assert conv.title == "first question"
    library.close()


# -- 2. an unwritable data dir -------------------------------------------------------------------

def test_unwritable_library_keeps_messages_in_memory_and_saves_them_later(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a regular file where the data folder should be\n")
    bad_path = blocker / "chatui" / "library.sqlite3"
    saver = AutoSaver(None, reopen=lambda: Library(bad_path))

    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["first answer", "second answer"]), saver=saver)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            await send(pilot, app, "hello disk")
            await wait_for(pilot, lambda: app.state == "ready" and replies(app) == ["first answer"])
            await pilot.pause()
            assert [(m.role, m.content) for m in app.messages] == [("user", "hello disk"),
                                                                   ("assistant", "first answer")]
            not_saved = [n for n in app._notifications if n.title == "Not saved"]
            assert len(not_saved) == 1  # said once, not once per message
            assert not_saved[0].severity == "error" and "kept in memory" in not_saved[0].message
            assert saver.pending > 0 and saver.library is None
            # /status tells the truth too
            await send(pilot, app, "/status")
            await pilot.pause()
            assert "not saved yet" in app.chat.messages()[-1].text
            # The disk is fixed: the next retry saves everything, in order.
            blocker.unlink()
            blocker.mkdir()
            app._retry_saves()
            await pilot.pause()
            assert saver.pending == 0 and saver.last_error is None
            assert any("Saving works again" in m for m in notes(app))
            await send(pilot, app, "and now?")
            await wait_for(pilot, lambda: app.state == "ready" and len(replies(app)) == 2)
            conv_id = app.saver.conversation.id
        stored = Library(bad_path).get(conv_id)
        assert [(m.role, m.content) for m in stored.messages] == [
            ("user", "hello disk"), ("assistant", "first answer"),
            ("user", "and now?"), ("assistant", "second answer")]
        assert stored.title == "hello disk"

    run(scenario())


def test_unwritable_or_full_config_dir_is_reported_and_settings_stay(tmp_path, monkeypatch):
    """Saving settings where the config dir cannot be written (a file where the folder should be,
    as a read-only dir is for root), then on a full disk: a clear message, the settings stay in
    effect, the old file is left whole, and saving works once the dir does."""
    import errno

    import tomli_w

    blocker = tmp_path / "config"
    blocker.write_text("a regular file where the config folder should be\n")
    config_file = blocker / "chatui" / "config.toml"

    async def scenario():
        app = ChatApp(parse_args([]), Config(path=config_file), engine=ScriptedEngine(["fine"]),
                      saver=AutoSaver(Library(tmp_path / "library.sqlite3")))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            await send(pilot, app, "/set temperature=0.3")
            await pilot.pause()
            app.save_defaults()
            await pilot.pause()
            failed = [n for n in app._notifications if n.title == "Could not save"]
            assert len(failed) == 1 and failed[0].severity == "error"
            assert str(config_file) in failed[0].message and "cannot write" in failed[0].message
            assert app.generation.temperature == 0.3  # still in effect
            await send(pilot, app, "still chatting?")
            await wait_for(pilot, lambda: replies(app) == ["fine"])

            blocker.unlink()  # the dir can be written again
            app.save_defaults()
            await pilot.pause()
            assert any(m.startswith("Saved as defaults in") for m in notes(app))
            saved = config_file.read_text()
            assert "temperature = 0.3" in saved

            # A full disk: the write fails part-way; the file that was there stays as it was.
            def no_space(*_args, **_kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(tomli_w, "dump", no_space)
            await send(pilot, app, "/set temperature=0.9")
            await pilot.pause()
            app.save_defaults()
            await pilot.pause()
            failed = [n for n in app._notifications if n.title == "Could not save"]
            assert len(failed) == 2 and "No space left on device" in failed[-1].message
            assert config_file.read_text() == saved
            assert [p.name for p in config_file.parent.iterdir()] == ["config.toml"]  # no temp file left
            assert app.generation.temperature == 0.9

    run(scenario())


# -- 3. model load failures ----------------------------------------------------------------------

def write_unsupported_gguf(path: Path) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "mamba3000")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_huge_config(folder: Path, tiny_model_dir: Path) -> Path:
    """A llama config of ~10 trillion parameters (tens of TB), and no weights at all."""
    folder.mkdir()
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(hidden_size=65536, intermediate_size=262144, num_hidden_layers=200,
                  num_attention_heads=512, num_key_value_heads=512, vocab_size=32000)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_pickle_only(folder: Path, tiny_model_dir: Path) -> Path:
    """The tiny model with its weights only as pytorch_model.bin (transformers 5 always writes
    safetensors from save_pretrained, so the .bin is written with torch.save)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.name != "model.safetensors":
            shutil.copy(item, folder / item.name)
    torch.save(load_file(tiny_model_dir / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def load_error(settings: LoadSettings) -> str:
    from tui.engine.loading import load_model

    with pytest.raises(LoadError) as caught:
        load_model(settings)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_gguf_of_an_unsupported_architecture_is_one_clear_line(tmp_path):
    gguf_file = write_unsupported_gguf(tmp_path / "weird.gguf")
    assert "mamba3000" in load_error(LoadSettings(model=str(gguf_file)))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 300)
    assert "garbage.gguf" in load_error(LoadSettings(model=str(garbage)))
    # Headless: exit code 1, one line on stderr, no traceback.
    result = subprocess.run([sys.executable, "-m", "tui", str(gguf_file), "--prompt", "hi"], cwd=ROOT,
                            env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatui: ") and "mamba3000" in lines[0], result.stderr
    assert result.stdout == ""


def test_a_model_larger_than_memory_is_refused_before_allocating(tmp_path, tiny_model_dir):
    import torch  # noqa: F401  (imported first, so RSS measures the check, not the imports)
    import transformers  # noqa: F401
    from accelerate import init_empty_weights  # noqa: F401

    huge = write_huge_config(tmp_path / "huge", tiny_model_dir)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    text = load_error(LoadSettings(model=str(huge)))
    elapsed = time.perf_counter() - started
    rss_jump = process.memory_info().rss - rss_before
    print(f"\nhuge config refused in {elapsed:.2f} s, RSS +{rss_jump / 2**20:.0f} MB: {text}")
    assert text.startswith("out of memory"), text
    assert "GiB" in text  # with the numbers: what it needs and what is there
    assert elapsed < 10
    assert rss_jump < 200 * 2**20


def test_quantization_without_bitsandbytes_names_it(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    text = load_error(LoadSettings(model=str(tiny_model_dir), quantization="8bit"))
    assert "bitsandbytes" in text and "8bit" in text


def test_pickle_only_weights_need_allow_pickle(tmp_path, tiny_model_dir):
    from tui.engine.loading import load_model

    folder = write_pickle_only(tmp_path / "pickled", tiny_model_dir)
    text = load_error(LoadSettings(model=str(folder)))
    assert "--allow-pickle" in text, text
    loaded = load_model(LoadSettings(model=str(folder), allow_pickle=True))
    assert loaded.info.parameters > 0


def test_failed_loads_in_the_app_keep_the_previous_model(tmp_path, tiny_model_dir, monkeypatch):
    gguf_file = write_unsupported_gguf(tmp_path / "weird.gguf")
    huge = write_huge_config(tmp_path / "huge", tiny_model_dir)
    pickled = write_pickle_only(tmp_path / "pickled", tiny_model_dir)
    attempts = [
        (LoadSettings(model=str(gguf_file)), "mamba3000"),
        (LoadSettings(model=str(huge)), "out of memory"),
        (LoadSettings(model=str(tiny_model_dir), quantization="4bit"), "bitsandbytes"),
        (LoadSettings(model=str(pickled)), "--allow-pickle"),
    ]

    async def scenario():
        app = make_app(tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=5", engine=Engine())
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            failures = []
            for settings, expected in attempts:
                if settings.quantization != "none":
                    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
                count = len(app._notifications)
                app.apply_load_settings(settings)
                await wait_for(pilot, lambda: app.state != "loading", 120)
                monkeypatch.delitem(sys.modules, "bitsandbytes", raising=False)
                errors = [n for n in list(app._notifications)[count:] if n.title == "Model load failed"]
                assert len(errors) == 1, (settings, notes(app))
                message = errors[0].message
                assert "\n" not in message and "Traceback" not in message
                assert app.state == "ready" and app.model_info is not None
                assert app.model_info.source == str(tiny_model_dir)  # the previous model is back
                if expected not in message:
                    failures.append(f"{settings.model} {settings.quantization}: {message}")
            await send(pilot, app, "still working?")
            await wait_for(pilot, lambda: app.state == "ready" and len(replies(app)) == 1, 60)
            assert app.messages[-1].status == "length"
            assert not failures, failures

    run(scenario())


# -- 4. generation failure mid-stream ------------------------------------------------------------

def test_generation_failure_mid_stream_on_the_tiny_model(tmp_path, tiny_model_dir, monkeypatch):
    from transformers import LlamaForCausalLM

    original = LlamaForCausalLM.forward
    state = {"calls": 0, "armed": False}

    def flaky(self, *args, **kwargs):
        if state["armed"]:
            state["calls"] += 1
            if state["calls"] > 12:
                raise RuntimeError("simulated accelerator fault")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", flaky)
    engine = Engine()
    sent: list[list[dict]] = []
    real_generate = engine.generate

    def recording_generate(messages, settings):
        sent.append([dict(m) for m in messages])
        return real_generate(messages, settings)

    engine.generate = recording_generate

    async def scenario():
        app = make_app(tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=40", engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            state["armed"] = True
            await send(pilot, app, "please fail")
            await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == 2, 60)
            state["armed"] = False
            failed = app.messages[-1]
            assert failed.role == "assistant" and failed.status == "failed"
            assert failed.content  # the partial reply is kept
            assert any("simulated accelerator fault" in m for m in notes(app))
            views = app.chat.messages()
            assert views[1].text == failed.content and "failed" in str(
                views[1].query_one(".message-header").render())
            assert views[-1].role == "error" and "simulated accelerator fault" in views[-1].text
            await send(pilot, app, "now work")
            await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == 4, 60)
            assert app.messages[-1].status == "length" and app.messages[-1].content
            assert all(m["content"] != failed.content for m in sent[-1] if m["role"] == "assistant")
            conv_id = app.saver.conversation.id
        stored = Library(tmp_path / "library.sqlite3").get(conv_id)
        assert [m.status for m in stored.messages] == ["ok", "failed", "ok", "length"]

    run(scenario())


def test_a_turn_queued_when_the_engine_shuts_down_still_ends():
    """Every Turn that generate() returns must end, even when shutdown() cancels its job before
    it ran: a reader blocked on it forever is a hang (see the app test below)."""
    engine = Engine()  # no model needed: the job never runs
    blocker = threading.Event()
    engine._executor.submit(blocker.wait)  # the torch thread is busy (a previous reply's last token)
    turn = engine.generate([{"role": "user", "content": "hi"}], GenerationSettings())
    engine.shutdown()
    blocker.set()
    ended = threading.Event()
    threading.Thread(target=lambda: (turn.wait(), ended.set()), daemon=True).start()
    if not ended.wait(5):
        from tui.engine import Failed

        turn._emit(Failed("released by the test", ""))  # let the waiting thread go
        raise AssertionError("a turn whose job was cancelled by shutdown() never ends")
    assert turn.final.text == ""


def test_quitting_while_a_reply_is_queued_does_not_hang_the_exit(tmp_path, tiny_model_dir):
    """Quit (ctrl+q) while the reply just sent waits behind other work on the torch thread (the
    last token of a reply stopped a moment before): on_unmount shuts the engine down, which
    cancels that reply's job. Its reply worker, an event-loop executor thread, must end: the UI
    closes either way, but asyncio.run() then joins the executor threads, so a worker blocked
    forever on the turn leaves the process hanging after the terminal is given back."""
    from tui.engine import Failed

    engine = Engine()
    blocker = threading.Event()
    real_shutdown = engine.shutdown

    def shutdown() -> None:
        real_shutdown()
        blocker.set()  # the job ahead of the reply ends just after, as a last token would

    engine.shutdown = shutdown
    state: dict = {}

    async def scenario():
        app = make_app(tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=5", engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            engine._executor.submit(blocker.wait)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.state == "generating")
            state["turn"] = app._turn
            await pilot.press("ctrl+q")
        turn = state["turn"]
        deadline = time.monotonic() + 3
        while turn.final is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        ended = turn.final is not None
        if not ended:  # release the worker ourselves, or asyncio.run() would hang this test too
            turn._emit(Failed("released by the test", ""))
            await asyncio.sleep(0.2)
        assert ended, "after quitting, the reply worker is blocked forever on a turn that never ends"

    run(scenario())


# -- 5. bad input --------------------------------------------------------------------------------

BAD_SETS = [
    ("/set temperature=nan", "temperature"),
    ("/set temperature=inf", "temperature"),
    ("/set top_k=1e999", "top_k"),
    ("/set max_new_tokens=abc", "max_new_tokens"),
    ("/set temperature=", "temperature"),
    ("/set temperature=0.5 top_k=abc", "top_k"),  # all or nothing: temperature is not changed
    ("/set do_sample=maybe", "do_sample"),
    ("/set seed=-1", "seed"),
    ("/set top_p=1.0000001", "top_p"),
    ("/set =5", "key=value"),
    ("/set nonsense=1", "nonsense"),
    ("/set", "key=value"),
]


def test_bad_set_values_are_rejected_and_change_nothing(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            before = app.generation.as_dict()
            for command, named in BAD_SETS:
                count = len(app._notifications)
                await send(pilot, app, command)
                await pilot.pause()
                new = list(app._notifications)[count:]
                assert len(new) == 1 and new[0].severity == "error", (command, [n.message for n in new])
                assert named in new[0].message, (command, new[0].message)
                assert app.generation.as_dict() == before, command
                assert app.messages == []  # nothing was sent to the model
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: app.state == "ready" and len(replies(app)) == 1)
            assert app.engine.calls[-1][1].as_dict() == before

    run(scenario())


# -- 6. responsiveness ---------------------------------------------------------------------------

class PacedEngine(ScriptedEngine):
    """A ScriptedEngine that keeps a fixed token rate by the clock, like a real decoder whose
    thread is in torch (not holding the GIL) most of the time: when the UI hogs the GIL it
    catches up with several tokens at once instead of slowing down."""

    def __init__(self, replies: list[str], tokens_per_s: float) -> None:
        super().__init__(replies)
        self.tokens_per_s = tokens_per_s

    def _play(self, turn, reply: str) -> None:
        from tui.engine import Finished, TokenDelta

        from fakes import fixed_metrics

        words = reply.split(" ")
        sent: list[str] = []
        started = time.perf_counter()
        for index, word in enumerate(words):
            if turn.stop_requested:
                turn._emit(Finished("".join(sent), "stopped", fixed_metrics(len(sent))))
                return
            due = started + index / self.tokens_per_s
            if due > time.perf_counter():
                time.sleep(max(0.0, due - time.perf_counter()))
            sent.append(word + (" " if index < len(words) - 1 else ""))
            turn._emit(TokenDelta(sent[-1], len(sent)))
        turn._emit(Finished("".join(sent), "stop", fixed_metrics(len(sent))))


def long_markdown_reply(tokens: int) -> str:
    """`tokens` words of Markdown: paragraphs, a code block and a list every ten paragraphs."""
    blocks = []
    for i in range(100):
        blocks.append(f"Paragraph {i} talks about **bold** ideas and `code` in a sentence of words.")
        if i % 10 == 3:
            blocks.append("```python\ndef f(x):\n    return x * 2\n```")
        if i % 10 == 6:
            blocks.append("- item one\n- item two\n- item three")
    words = "\n\n".join(blocks).split(" ")
    return " ".join((words * (tokens // len(words) + 1))[:tokens])


def test_keypresses_stay_fast_while_a_long_reply_streams(tmp_path):
    """A 3,000-token Markdown reply at 200 tokens/s (15 s): a keypress every 0.1 s over it, every
    50 ms near and just after its end, must be handled fast and be on screen soon after."""
    reply = long_markdown_reply(3000)

    async def scenario():
        app = make_app(tmp_path, engine=PacedEngine([reply], tokens_per_s=200))  # 7x this CPU's SmolLM2 decode
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            clock = FrameClock(app)
            await send(pilot, app, "write a lot")
            await wait_for(pilot, lambda: app._live_tokens >= 10)
            full_collections: list[int] = []  # generation-2 collections while the user types

            def count_full_collections(phase: str, info: dict) -> None:
                if phase == "start" and info["generation"] == 2:
                    full_collections.append(app._live_tokens)

            gc.callbacks.append(count_full_collections)
            presses: list[tuple[float, float, int, bool]] = []  # (handled, drawn, reply tokens, streaming)
            ended_at = None
            while ended_at is None or time.monotonic() - ended_at < 0.5:
                streaming, tokens = app.state == "generating", app._live_tokens
                presses.append((*await keypress_to_frame(pilot, app, clock), tokens, streaming))
                if ended_at is None and app.state == "ready":
                    ended_at = time.monotonic()
                await asyncio.sleep(0.05 if tokens >= 2850 else 0.1)
            view = app.chat.messages()[-1]
            assert view.text == reply and app.messages[-1].content == reply
            assert app.prompt_input.text == "x" * len(presses)
            gc.callbacks.remove(count_full_collections)
        during = [press for press in presses if press[3] and press[2] < 2850]
        handled = sorted(press[0] * 1000 for press in during)
        drawn = sorted(press[1] * 1000 for press in during)
        worst = max(presses)
        at_end = [press for press in presses if not press[3] or press[2] >= 2850]

        def summary(ms: list[float]) -> str:
            return (f"median {statistics.median(ms):.1f} ms, p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms, "
                    f"max {ms[-1]:.1f} ms")

        print(f"\nkeypresses while streaming 3,000 tokens at 200 tok/s, n={len(during)} (reply tokens "
              f"{during[0][2]}..{during[-1][2]}):\n  handled: {summary(handled)}\n  on screen: "
              f"{summary(drawn)}\n  {len(at_end)} presses around the end: handled within "
              f"{max(p[0] for p in at_end) * 1000:.0f} ms, on screen within {max(p[1] for p in at_end) * 1000:.0f} ms")
        assert len(during) >= 50 and during[-1][2] >= 2000  # spread over most of the reply
        # The bound, on the key being handled. Measured max 20-57 ms; before the message
        # end became a class (`:last-child` restyled every block at each mount) 64-111 ms, before
        # folding 70-190 ms, before the earlier fixes 0.5 s.
        assert handled[-1] <= 100, f"a keypress took {handled[-1]:.0f} ms to be handled"
        # On screen: measured median 5-12 ms. It was 52-69 ms when an append's layout could slip
        # in between a key and its frame (InputFirstStream now draws the key first, and the
        # reply rests longer while the user types); its p90 and max (65-85, 115-175 ms) are a
        # key that lands in a layout of the screen, which no scheduling can shorten.
        assert statistics.median(drawn) <= 35, f"keys took a median {statistics.median(drawn):.0f} ms to show"
        # A full garbage collection stops the loop for 0.2-0.7 s here: none while a reply streams,
        # nor as it ends while the user is typing (it waits until they pause).
        assert full_collections == [], f"full collections at reply tokens {full_collections}"
        # The end of the reply (its exact render, then the save) once froze input for 4.5 s, then
        # 0.4-0.7 s (a full GC); measured since: handled within 5-95 ms.
        assert worst[0] <= 0.15, f"a keypress took {worst[0] * 1000:.0f} ms (pressed at token {worst[2]})"

    run(scenario())


def test_quitting_the_moment_a_long_reply_ends_is_clean(tmp_path):
    """The end of a long reply is drawn after it ends (the last batches, then one exact render of
    each chunk); quitting right then must not raise from widgets mounted into a closing app.

    The race was found by benchmarks/bench_render.py, which hits it every run at 400-1000 tok/s
    (MountError on exit); this test walks the same path but does not reliably lose the race."""
    blocks = ["Here is a paragraph that explains the next step in some detail, with **bold** and `code`.",
              "- a list item with a few words\n- another item that is a little longer than the first",
              "```python\ndef step(value):\n    return value * 2 + 1\n```",
              "1. first point\n2. second point with *emphasis*"]
    reply = "\n\n".join(blocks[i % 4] for i in range(150)).replace("\n", " \n ")

    async def scenario():
        app = make_app(tmp_path, engine=PacedEngine([reply], tokens_per_s=1000))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            app.prompt_input.load_text("write a lot")
            app.prompt_input.focus()
            post_key(app, "enter")
            deadline = time.monotonic() + 60
            while not (app.state == "ready" and len(app.messages) == 2):
                assert time.monotonic() < deadline, "the reply did not end"
                await asyncio.sleep(0.001)
            assert app.messages[-1].content == reply  # saved before it is drawn
        # leaving run_test raised MountError here before the fix

    run(scenario())


def test_a_one_megabyte_paste_then_typing(tmp_path):
    line = "Pasted log line with some words, numbers 0123456789 and symbols <>&[]{}*_`#.\n"
    text = line * (2**20 // len(line) + 1)

    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            app.prompt_input.focus()
            started = time.perf_counter()
            app.prompt_input.insert(text)
            await pilot.pause()
            paste_s = time.perf_counter() - started
            latencies = [await keypress_latency(pilot, app) for _ in range(5)]
            assert len(app.prompt_input.text) == len(text) + 5
            ms = sorted(x * 1000 for x in latencies)
            print(f"\n1 MB paste ({len(text):,} chars): insert+frame {paste_s * 1000:.0f} ms; "
                  f"keypress after it median={statistics.median(ms):.1f} ms max={ms[-1]:.1f} ms")
            assert paste_s < 5
            assert statistics.median(ms) <= 100

    run(scenario())


def test_opening_a_500_message_conversation(tmp_path):
    library = Library(tmp_path / "library.sqlite3")
    conv = library.create(model="scripted-model", title="long one")
    for i in range(250):
        library.add_message(conv.id, "user", f"Question {i}: what about item {i}?")
        library.add_message(conv.id, "assistant",
                            f"Answer {i} with **Markdown**:\n\n- point a\n- point b\n\n```\ncode {i}\n```")
    library.close()

    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            started = time.perf_counter()
            await app.open_conversation(conv.id)
            call_s = time.perf_counter() - started
            await pilot.pause()  # until the frame with it is drawn
            open_s = time.perf_counter() - started
            assert len(app.messages) == 500
            views = app.chat.messages()
            # It shows the end of the conversation, in order (all of it, or only its latest part).
            assert len(views) >= 20 and views[-1].text.startswith("Answer 249")
            assert [v.message_id for v in views] == [m.id for m in app.messages[-len(views):]]
            app.prompt_input.focus()
            latencies = [await keypress_latency(pilot, app) for _ in range(5)]
            ms = sorted(x * 1000 for x in latencies)
            print(f"\nopen 500 messages: {open_s:.2f} s (open_conversation {call_s:.2f} s, then the first "
                  f"frame); {len(views)} message views; keypress after: median={statistics.median(ms):.1f} ms "
                  f"max={ms[-1]:.1f} ms")
            assert open_s < 3, f"opening a 500-message conversation blocked the app for {open_s:.1f} s"
            assert statistics.median(ms) <= 100

    run(scenario())


# -- 7. soak -------------------------------------------------------------------------------------

def test_soak_100_turns_threads_and_memory_stay_flat(tmp_path, tiny_model_dir):
    """100 turns on the tiny model in one app session: send, stop mid-reply, regenerate, continue.

    Reply pumps are Textual thread workers, which run on the event loop's default executor: a
    pool that starts threads lazily (asyncio_0, asyncio_1, ...) up to min(32, cpus + 4) and keeps
    them. So after each turn no reply worker may still run, no thread outside that pool may be
    left, and the total may exceed the baseline only by idle pool threads."""
    process = psutil.Process()
    pool_max = min(32, (os.cpu_count() or 1) + 4)

    def reply_workers(app) -> list:
        return [w for w in app.workers if w.group == "reply" and not w.is_finished]

    def other_threads() -> Counter:
        """Threads outside the executor pool, by name: a multiset, since engines of earlier tests
        in the same process each leave a `chatui-torch_0` until they are collected."""
        return Counter(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))

    async def scenario():
        app = make_app(tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=8", engine=Engine())
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            await send(pilot, app, "warm up")
            await wait_for(pilot, lambda: app.state == "ready" and len(replies(app)) == 1, 60)
            await pilot.pause(0.2)
            baseline, baseline_others = threading.active_count(), other_threads()
            counts, kinds, rss, stray = [], [], {}, []
            started = time.perf_counter()
            for turn in range(1, 101):
                kind = ("stop" if turn % 10 == 5 else "regenerate" if turn % 10 == 7
                        else "continue" if turn % 10 == 9 else "send")
                if turn % 25 == 0:
                    await send(pilot, app, "/new")
                    await wait_for(pilot, lambda: app.messages == [])
                n, last = len(app.messages), app.messages[-1] if app.messages else None
                turns_before = app._turn_id
                if kind == "send":
                    await send(pilot, app, f"turn {turn}")
                    await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == n + 2, 60)
                elif kind == "stop":
                    # The tiny model writes ~400 tokens/s: no Pilot idle waits between send and stop.
                    assert app.set_generation({"max_new_tokens": 400}) is None
                    app.prompt_input.load_text(f"turn {turn}: long")
                    app.prompt_input.focus()
                    post_key(app, "enter")
                    deadline = time.monotonic() + 60
                    while not (app._turn_id > turns_before and app._live_tokens >= 2):
                        assert time.monotonic() < deadline, "the long reply did not start"
                        await asyncio.sleep(0.001)
                    post_key(app, "escape")
                    await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == n + 2, 60)
                    assert app.set_generation({"max_new_tokens": 8}) is None
                    assert app.messages[-1].status == "stopped", app.messages[-1].status
                elif kind == "regenerate":
                    await pilot.press("ctrl+r")
                    await wait_for(pilot, lambda: app.state == "ready" and app.messages[-1].id != last.id, 60)
                    assert len(app.messages) == n and len(app.saver.versions(app.messages[-1].id)) >= 2
                else:
                    await pilot.press("ctrl+t")
                    await wait_for(pilot, lambda: app.state == "ready"
                                   and app.messages[-1].content != last.content, 60)
                    assert len(app.messages) == n and app.messages[-1].content.startswith(last.content)
                deadline = time.monotonic() + 2
                while (reply_workers(app) or other_threads() - baseline_others) and time.monotonic() < deadline:
                    await pilot.pause(0.02)
                if reply_workers(app) or other_threads() - baseline_others:
                    stray.append((turn, kind, len(reply_workers(app)),
                                  sorted((other_threads() - baseline_others).elements())))
                counts.append(threading.active_count())
                if counts[-1] == max(counts):
                    busiest = sorted(t.name for t in threading.enumerate())
                kinds.append(kind)
                if turn in (10, 100):
                    import gc

                    gc.collect()
                    rss[turn] = process.memory_info().rss
            elapsed = time.perf_counter() - started
            growth = rss[100] / rss[10] - 1
            pool = [t.name for t in threading.enumerate() if t.name.startswith("asyncio_")]
            print(f"\nsoak: 100 turns in {elapsed:.0f} s (stopped {kinds.count('stop')}, regenerated "
                  f"{kinds.count('regenerate')}, continued {kinds.count('continue')}); threads: baseline "
                  f"{baseline}, after each turn min {min(counts)} max {max(counts)}, at the end {counts[-1]} "
                  f"(executor pool threads {len(pool)}); RSS turn 10 {rss[10] / 2**20:.1f} MB, turn 100 "
                  f"{rss[100] / 2**20:.1f} MB ({growth * 100:+.2f}%)")
            assert not stray, f"reply workers or threads left after turns: {stray[:10]}"
            # Bounded: besides the threads there at the start, only the executor's pool, which
            # grows lazily (when a pump is still finishing as the next turn starts) up to its cap.
            assert max(counts) <= sum(baseline_others.values()) + pool_max, f"threads at the most: {busiest}"
            assert growth < 0.05

    run(scenario())


# -- 8. security defaults ------------------------------------------------------------------------

def test_library_and_exports_are_private_and_nothing_listens(tmp_path, monkeypatch, tiny_model_dir):
    data_home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    old_umask = os.umask(0o000)  # the modes must come from chatui, not from a careful umask
    try:
        async def scenario():
            # The app's own default saver: the library at the platformdirs path, opened lazily.
            app = ChatApp(parse_args([str(tiny_model_dir), "do_sample=false", "max_new_tokens=4"]),
                          Config(path=tmp_path / "config.toml"), engine=Engine())
            async with app.run_test() as pilot:
                await wait_for(pilot, lambda: app.state == "ready", 120)
                await send(pilot, app, "a secret")
                await wait_for(pilot, lambda: app.state == "ready" and len(replies(app)) == 1, 60)
                listening = [c for c in psutil.Process().net_connections(kind="inet")
                             if c.status == psutil.CONN_LISTEN]
                assert listening == []
                assert [c for c in psutil.Process().net_connections(kind="all")
                        if c.status == psutil.CONN_LISTEN] == []
                export = tmp_path / "exported.md"
                export.write_text("an older file, world-readable\n")
                os.chmod(export, 0o644)
                await pilot.press("ctrl+s")
                await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TextPromptScreen")
                app.screen.query_one("#prompt-value").value = str(export)
                await pilot.press("enter")
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


def test_a_status_tick_after_the_status_line_is_gone_is_harmless(tmp_path):
    """The live tok/s tick can fire while the app shuts down and the status bar's line is already
    removed: it must do nothing, not raise (found by quitting in the middle of a long stream)."""

    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            await app.status.query_one("#status-text").remove()
            app.status.update_info(tok_s=12.5, state="generating")
            assert app.status.info.tok_s == 12.5

    run(scenario())
