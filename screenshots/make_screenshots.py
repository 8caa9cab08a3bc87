"""`make screenshots`: SVG screenshots of scripted sessions on the real SmolLM2 (greedy).

Live figures that change from run to run (timings, memory, load time, dates) are pinned to fixed
values here, so re-running changes nothing unless the UI or the model's output changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.cli.main import parse_args  # noqa: E402
from tui.store import AutoSaver, Library  # noqa: E402
from tui.store.config import Config  # noqa: E402
from tui.ui.app import ChatApp  # noqa: E402
from tui.ui.bridge import LoadDone, ReplyEnded  # noqa: E402
from tui.ui.screens.chat import ChatScreen  # noqa: E402
from tui.ui.screens.chat_model import ModelLoader  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (112, 36)
PROMPT = "Write a Python function that reverses a string, with a short explanation."


class PinnedMemoryLoader(ModelLoader):
    def refresh_memory(self) -> None:
        self.screen.status.update_info(rss_bytes=640 * 2**20)


class ScreenshotScreen(ChatScreen):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loader = PinnedMemoryLoader(self)

    # Textual calls these before ChatScreen's own handlers of the same message (each class's
    # handler runs, subclass first), so they pin the figures in the message itself.

    def on_load_done(self, message: LoadDone) -> None:
        if message.info is not None:
            message.info.load_seconds = 1.0

    def on_reply_ended(self, message: ReplyEnded) -> None:
        final = message.final
        if final.metrics is not None:
            fixed = dataclasses.replace(final.metrics, ttft_s=0.15, decode_tok_s=20.0, total_s=5.0, rss_bytes=0)
            message.final = dataclasses.replace(final, metrics=fixed)

    def on_mount(self) -> None:
        self.prompt_input.cursor_blink = False


class ScreenshotApp(ChatApp):
    def make_chat_screen(self, session) -> ChatScreen:
        return ScreenshotScreen(session, self.engine, self.config, self.keymap, self.activity, self.collector)


def make_app(tmp: Path, *extra: str, library: Library | None = None) -> ScreenshotApp:
    options = parse_args(["do_sample=false", "max_new_tokens=220", *extra])
    saver = AutoSaver(library or Library(tmp / "library.sqlite3"))
    return ScreenshotApp(options, Config(path=tmp / "config.toml"), saver=saver)


async def wait(pilot, condition) -> None:
    while not condition():
        await pilot.pause(0.05)


async def converse(pilot) -> None:
    app = pilot.app
    await wait(pilot, lambda: app.chat_screen.state == "ready")
    app.chat_screen.prompt_input.load_text(PROMPT)
    await pilot.press("enter")
    await wait(
        pilot, lambda: app.chat_screen.state == "ready" and any(m.role == "assistant" for m in app.chat_screen.messages)
    )
    app.clear_notifications()
    await pilot.pause(0.3)


async def shoot(app: ScreenshotApp, name: str, script) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await script(pilot)
        await pilot.pause(0.2)
        app.save_screenshot(str(OUT / f"{name}.svg"))
    print(f"screenshots/{name}.svg")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        async def chat_only(pilot):
            await converse(pilot)
            await pilot.press("ctrl+b")

        await shoot(make_app(tmp / "a"), "conversation", chat_only)
        await shoot(make_app(tmp / "b"), "sidebar", converse)
        await shoot(make_app(tmp / "c", "--theme", "chatui-paper"), "light-theme", chat_only)

        library = Library(tmp / "library-browser.sqlite3")
        for day, (title, question) in enumerate(
            (
                ("Reverse a string in Python", "Write a Python function that reverses a string."),
                ("Why is the sky blue?", "Why is the sky blue? Explain Rayleigh scattering simply."),
                ("Sourdough starter schedule", "How often should I feed a sourdough starter?"),
                ("Rust borrow checker", "Explain the borrow checker in Rust like I'm new to it."),
            )
        ):
            stamp = 1_790_000_000 + day * 86_400
            conv = library.create(model="SmolLM2-135M-Instruct", title=title, created=stamp)
            library.add_message(conv.id, "user", question, created=stamp)

        async def browse(pilot):
            await wait(pilot, lambda: pilot.app.chat_screen.state == "ready")
            await pilot.press("ctrl+b", "ctrl+o")
            await pilot.pause(0.2)
            await pilot.press(*"python")
            await pilot.pause(0.2)

        await shoot(make_app(tmp / "d", library=library), "browser", browse)

        async def help_screen(pilot):
            await wait(pilot, lambda: pilot.app.chat_screen.state == "ready")
            await pilot.press("f1")
            await pilot.pause(0.2)

        await shoot(make_app(tmp / "e"), "help", help_screen)


if __name__ == "__main__":
    (OUT).mkdir(exist_ok=True)
    asyncio.run(main())
