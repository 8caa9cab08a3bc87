"""Snapshots of the app (pytest-textual-snapshot). Deterministic: a scripted engine with fixed
replies and timings, a fixed memory figure, no cursor blink. Update with --snapshot-update after
checking the pictures by eye."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import ScriptedEngine
from pilot import wait_for

from tui.cli.main import parse_args
from tui.store import AutoSaver, Library
from tui.store.config import Config
from tui.ui.app import ChatApp
from tui.ui.screens.chat import ChatScreen
from tui.ui.screens.chat_model import ModelLoader
from tui.ui.themes import load_themes

REPLY = (
    "Here is a function that adds two numbers:\n\n"
    "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\n\n"
    "- It takes **two** integers\n- It returns their *sum*"
)
SIZE = (110, 34)


class PinnedMemoryLoader(ModelLoader):
    clock = staticmethod(lambda: 0.0)  # a load takes no time: no clock in the welcome panel

    def refresh_memory(self) -> None:
        self.screen.status.update_info(rss_bytes=900 * 2**20)


class SnapshotScreen(ChatScreen):
    """The real chat screen with the two things that vary between runs pinned down."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loader = PinnedMemoryLoader(self)

    def on_mount(self) -> None:  # after ChatScreen.on_mount (Textual calls each class's handler)
        self.prompt_input.cursor_blink = False


class SnapshotApp(ChatApp):
    def make_chat_screen(self, session) -> ChatScreen:
        return SnapshotScreen(session, self.engine, self.config, self.keymap, self.activity, self.collector)


def snapshot_app(tmp_path: Path, *args: str, engine=None, theme: str | None = None) -> SnapshotApp:
    options = parse_args(list(args) + (["--theme", theme] if theme else []))
    saver = AutoSaver(Library(tmp_path / "library.sqlite3"))
    return SnapshotApp(
        options, Config(path=tmp_path / "config.toml"), engine=engine or ScriptedEngine([REPLY]), saver=saver
    )


async def converse(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.chat_screen.state == "ready")
    app.chat_screen.prompt_input.load_text("Write a Python function that adds two numbers.")
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: app.chat_screen.state == "ready" and any(m.role == "assistant" for m in app.chat_screen.messages),
        what="the reply",
    )
    app.clear_notifications()
    await pilot.pause(0.1)


def test_loading_state(snap_compare, tmp_path):
    assert snap_compare(snapshot_app(tmp_path, engine=ScriptedEngine(hold_load=True)), terminal_size=SIZE)


def test_finished_conversation(snap_compare, tmp_path):
    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=converse)


def test_sidebar_hidden(snap_compare, tmp_path):
    async def before(pilot):
        await converse(pilot)
        await pilot.press("ctrl+b")

    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=before)


def test_load_error(snap_compare, tmp_path):
    engine = ScriptedEngine(load_error="model path not found: /models/missing")

    async def before(pilot):
        await wait_for(pilot, lambda: pilot.app.chat_screen.state == "error")
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path, "/models/missing", engine=engine), terminal_size=SIZE, run_before=before)


def test_sidebar_generation_form(snap_compare, tmp_path):
    async def before(pilot):
        await converse(pilot)
        pilot.app.query_one("#param-temperature").value = "-1"  # an inline error
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(110, 50), run_before=before)


def test_conversations_browser(snap_compare, tmp_path):
    library = Library(tmp_path / "library.sqlite3")
    for title, words in (
        ("Penguins", "Penguins are flightless birds"),
        ("Rust lifetimes", "Borrowing rules"),
        ("Sourdough", "Feed the starter daily"),
    ):
        conv = library.create(model="scripted-model", title=title, created=1_700_000_000)
        library.add_message(conv.id, "user", words, created=1_700_000_000)
    library.close()

    async def before(pilot):
        await wait_for(pilot, lambda: pilot.app.chat_screen.state == "ready")
        await pilot.press("ctrl+o")
        await pilot.pause(0.1)
        await pilot.press(*"bird")
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare, tmp_path):
    async def before(pilot):
        # The sidebar behind the dialog laid out whole first (it mounts lazily, after the first frame).
        await wait_for(pilot, lambda: pilot.app.chat_screen.settings_panel.ready)
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause(0.1)

    assert snap_compare(
        snapshot_app(tmp_path, engine=ScriptedEngine(hold_load=True)), terminal_size=(110, 50), run_before=before
    )


@pytest.mark.parametrize("theme", sorted(t.name for t in load_themes()[0]))
def test_theme(snap_compare, tmp_path, theme):
    assert snap_compare(snapshot_app(tmp_path, theme=theme), terminal_size=SIZE, run_before=converse)


def test_sidebar_model_section(snap_compare, tmp_path):
    async def before(pilot):
        await converse(pilot)
        pilot.app.chat_screen.settings_panel.scroll_end(animate=False)
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(120, 40), run_before=before)


def test_token_view(snap_compare, tmp_path):
    """F5 on a reply recorded with token probabilities (made-up, fixed ones: see fakes.scripted_choice)."""
    from tui.ui.screens.token_view import TokenViewScreen

    engine = ScriptedEngine(["The capital of France is Paris, a city on the Seine."], token_probs=True)

    async def before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: app.chat_screen.state == "ready")
        await pilot.press("f4")  # record token probabilities
        app.chat_screen.prompt_input.load_text("What is the capital of France?")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.chat_screen.state == "ready" and any(m.role == "assistant" for m in app.chat_screen.messages),
            what="the reply",
        )
        app.clear_notifications()
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, TokenViewScreen), what="the token view")
        await pilot.press("right", "right", "right")
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path, engine=engine), terminal_size=SIZE, run_before=before)


def test_compare_screen(snap_compare, tmp_path):
    """/compare: the last prompt answered under the current settings and the three built-in presets
    (one after the other, so each column gets the next scripted reply; a fixed seed)."""
    from tui.ui.screens.compare import CompareScreen

    replies = [
        REPLY,
        "Column one: add them with a plus.",
        "Column two: return a + b, the sum.",
        "Column three: def add(a, b): return a + b",
        "Column four: the sum of two numbers.",
    ]
    engine = ScriptedEngine(replies, token_probs=True)

    async def before(pilot):
        app = pilot.app
        await converse(pilot)
        app.chat_screen.prompt_input.load_text("/compare")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, CompareScreen)
                and len(engine.calls) == 5
                and all(c.final is not None for c in app.screen.columns)
            ),
            what="the compare columns",
        )
        app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path, "seed=7", engine=engine), terminal_size=(120, 34), run_before=before)


def test_tool_approval_card(snap_compare, tmp_path):
    """The card asking to run a tool call, over a finished conversation."""
    from tui.tools.calls import ToolCall
    from tui.ui.screens.tool_approval import ToolApprovalScreen

    async def before(pilot):
        await converse(pilot)
        call = ToolCall("get_weather", {"city": "Paris", "units": "metric", "days": 3}, id="call_1")
        pilot.app.push_screen(ToolApprovalScreen(call, "weather"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ToolApprovalScreen), what="the card")
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=before)


def test_reply_mid_stream(snap_compare, tmp_path):
    """A reply held after 12 words, while the app is generating."""
    engine = ScriptedEngine([REPLY], pause_after=12)

    async def before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: app.chat_screen.state == "ready")
        app.chat_screen.prompt_input.load_text("Write a Python function that adds two numbers.")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.chat_screen.state == "generating" and app.chat_screen.replies.live_tokens >= 12,
            what="12 words of the reply",
        )
        status = app.chat_screen.status  # the live tok/s follows the wall clock: pinned to one figure
        update = status.update_info
        status.update_info = lambda **info: update(**{k: v for k, v in info.items() if k != "tok_s"})
        update(tok_s=20.0)
        app.clear_notifications()
        await pilot.pause(0.1)

    try:
        assert snap_compare(snapshot_app(tmp_path, engine=engine), terminal_size=SIZE, run_before=before)
    finally:
        engine.resume.set()


def test_small_terminal(snap_compare, tmp_path):
    """A finished conversation at 60x20."""
    assert snap_compare(snapshot_app(tmp_path), terminal_size=(60, 20), run_before=converse)


def test_sidebar_adapter_section(snap_compare, tmp_path):
    """Two adapters loaded, one in use: the sidebar's Adapters section and the status bar."""

    async def before(pilot):
        await converse(pilot)
        screen = pilot.app.chat_screen
        screen.engine.adapters.load("/loras/tone-v2")
        screen.engine.adapters.load("/loras/concise", "concise", activate=False)
        screen.adapters.show()
        screen.settings_panel.scroll_end(animate=False)
        await pilot.pause(0.2)

    engine = ScriptedEngine([REPLY], adapters=True)
    assert snap_compare(snapshot_app(tmp_path, engine=engine), terminal_size=(120, 40), run_before=before)


def test_compare_with_adapter_columns(snap_compare, tmp_path):
    """/compare adapter:none adapter:tone-v2 adapter:concise: base vs two adapters, side by side."""

    async def before(pilot):
        from tui.engine import Finished
        from tui.ui.screens.compare import CompareScreen

        await converse(pilot)
        app = pilot.app
        app.chat_screen.engine.adapters.load("/loras/tone-v2")
        app.chat_screen.engine.adapters.load("/loras/concise")
        app.chat_screen.action_compare("adapter:none adapter:tone-v2 adapter:concise")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_for(pilot, lambda: all(isinstance(c.final, Finished) for c in app.screen.columns))
        await pilot.pause(0.2)

    engine = ScriptedEngine([REPLY, "Base reply.", "Tuned reply, in the tone-v2 style.", "Concise."], adapters=True)
    assert snap_compare(snapshot_app(tmp_path, "seed=7", engine=engine), terminal_size=SIZE, run_before=before)
