"""Driving the app in tests: build it on a scripted engine, wait for it, type into it, and time
how fast it shows a key (as the terminal driver delivers keys, not through Pilot's idle waits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fakes import ScriptedEngine
from textual.notifications import Notification, SeverityLevel

from tui.cli.main import parse_args
from tui.store import AutoSaver, Library
from tui.store.config import Config
from tui.ui.app import ChatApp
from tui.ui.widgets.message import MessageView


def run(coro):
    return asyncio.run(coro)


class RecordingApp(ChatApp):
    """The real app, keeping every notification it was asked to show in `notified`, in order and
    for good (Textual keeps only the ones still on screen, in a private set)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.notified: list[Notification] = []

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        self.notified.append(
            Notification(message, title, severity, timeout or self.NOTIFICATION_TIMEOUT, markup=markup)
        )
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


def make_app(
    tmp_path: Path, *args: str, engine=None, config: Config | None = None, saver: AutoSaver | None = None
) -> RecordingApp:
    """The real app on `engine` (a ScriptedEngine by default), its library and config in tmp_path."""
    saver = saver or AutoSaver(Library(tmp_path / "library.sqlite3"))
    return RecordingApp(
        parse_args(list(args)),
        config or Config(path=tmp_path / "config.toml"),
        engine=engine or ScriptedEngine(),
        saver=saver,
    )


def chat_ready(app: ChatApp) -> bool:
    """The model is loaded and the settings panel shows its values: the app takes a message."""
    return app.chat_screen.state == "ready" and app.chat_screen.settings_panel.ready


@asynccontextmanager
async def booted(
    tmp_path: Path,
    *args: str,
    engine=None,
    config: Config | None = None,
    saver: AutoSaver | None = None,
    size: tuple[int, int] | None = None,
    timeout: float = 30.0,
) -> AsyncIterator[tuple]:
    """make_app(...) running headless, once ready for a message: `async with booted(tmp_path) as (pilot, app)`."""
    app = make_app(tmp_path, *args, engine=engine, config=config, saver=saver)
    async with app.run_test(**({"size": size} if size else {})) as pilot:
        await wait_for(pilot, lambda: chat_ready(app), timeout, what="the model to load")
        yield pilot, app


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "the app") -> None:
    """Wait until `condition` holds once the app has handled what was queued when it first held
    (as after `pilot.pause()`). Between polls it only sleeps: a pause waits for every widget on
    screen to empty its queue (a call_later to each), which with a long reply's hundreds of
    Markdown blocks cost the app more than the work waited for, and on a loaded machine starved
    it past the deadline. So the pause comes only once the condition holds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            await pilot.pause(0)
            if condition():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def send(pilot, app: ChatApp, text: str) -> None:
    app.chat_screen.prompt_input.load_text(text)
    app.chat_screen.prompt_input.focus()
    await pilot.press("enter")


def message_views(screen) -> list[MessageView]:
    """The message views in the chat pane, top to bottom."""
    return list(screen.chat.query_children(MessageView))


def reply_texts(app: ChatApp) -> list[str]:
    return [m.content for m in app.chat_screen.messages if m.role == "assistant"]


def notes(app: RecordingApp) -> list[str]:
    """Every notification's message so far, oldest first."""
    return [n.message for n in app.notified]


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
    before = app.chat_screen.prompt_input.cursor_location
    started = time.perf_counter()
    post_key(app, char, char)
    while app.chat_screen.prompt_input.cursor_location == before:
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
                self.frames.append((time.perf_counter(), app.chat_screen.prompt_input.cursor_location))

        app._display = timed

    def first_showing(self, cursor: tuple[int, int], since: float) -> float | None:
        return next((at for at, shown in self.frames if at >= since and shown == cursor), None)


async def keypress_to_frame(pilot, app: ChatApp, clock: FrameClock) -> tuple[float, float]:
    """Seconds from a key arriving until the prompt has it, and until a frame shows it."""
    started = time.perf_counter()
    handled = await keypress_latency(pilot, app)
    cursor = app.chat_screen.prompt_input.cursor_location
    while (shown_at := clock.first_showing(cursor, started)) is None:
        if time.perf_counter() - started > 10:
            raise AssertionError("a keypress was not drawn within 10 s")
        await asyncio.sleep(0.001)
    return handled, shown_at - started
