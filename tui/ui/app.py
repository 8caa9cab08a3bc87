"""ChatApp: what is app-wide. Themes, config.toml, the keymap, the command palette and help, and
the lifetime of the engine and the conversation library. The chatting itself happens on the
chat screen (tui/screens/chat.py), driven by a Textual-free ChatSession.

The first frame draws before torch is imported: the engine loads the model on its own thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs
from textual import events
from textual.app import App, SystemCommand
from textual.screen import Screen

from tui.core.chat_session import ChatSession
from tui.core.options import Options
from tui.engine.backend import Backend
from tui.engine.backends import Backends
from tui.store import AutoSaver, Library
from tui.store.config import Config, ConfigError, save_defaults, save_theme
from tui.ui.actions import Keymap, bindings
from tui.ui.activity import UserActivity
from tui.ui.commands import ChatCommands
from tui.ui.idle_gc import IdleCollector
from tui.ui.screens.chat import ChatScreen
from tui.ui.screens.help import HelpScreen
from tui.ui.themes import DEFAULT_THEME, register_themes

log = logging.getLogger(__name__)


class ChatApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "chatui"
    BINDINGS = bindings("app")
    COMMANDS = App.COMMANDS | {ChatCommands}

    def __init__(
        self, options: Options, config: Config, *, engine: Backend | None = None, saver: AutoSaver | None = None
    ) -> None:
        super().__init__()
        self.options = options
        self.config = config
        self.keymap = Keymap(config.keys)
        self.engine: Backend = engine or Backends()
        # The library opens on the first write, after the first frame (opening checks integrity).
        self.saver = saver or AutoSaver(None, reopen=Library)
        self.activity = UserActivity()
        self.collector = IdleCollector(self.activity)
        self.chat_screen = self.make_chat_screen(
            ChatSession(self.saver, options.generation, options.system_prompt or "", options.load, self.engine)
        )
        self._theme_at_start = DEFAULT_THEME

    def make_chat_screen(self, session: ChatSession) -> ChatScreen:
        screen = ChatScreen(session, self.engine, self.config, self.keymap, self.activity, self.collector)
        screen.adapters.requested = list(self.options.adapters)  # loaded after the model
        screen.adapters.merge_requested = self.options.merge_adapter
        return screen

    def get_default_screen(self) -> Screen:
        return self.chat_screen

    def on_mount(self) -> None:
        for warning in register_themes(self):
            self.notify(warning, title="Themes", severity="warning", timeout=15)
        wanted = self.options.theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.theme = DEFAULT_THEME
            self.notify(
                f"Unknown theme {wanted!r}; try one of: {', '.join(sorted(self.available_themes))}",
                severity="warning",
                timeout=15,
            )
        self._theme_at_start = self.theme
        self.set_keymap(self.keymap.overrides)
        for error in self.config.errors + self.keymap.errors:
            self.notify(error, title="config.toml", severity="warning", timeout=15)
        self.set_interval(0.5, self.collector.tick)
        if self.options.conversation:
            self.call_after_refresh(
                self.chat_screen.files.open_conversation_ref,
                self.options.conversation,
                self.options.generation_overrides,
            )

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            self.activity.mark()  # the user is here: draw their input first, collect garbage later
        await super().on_event(event)

    # -- app-wide actions (the table in tui/actions.py binds them) -------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap))

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """An SVG of the screen, in `path` (default: the Downloads folder, else the current one)."""
        folder = Path(path) if path else Path(platformdirs.user_downloads_dir())
        if not folder.is_dir():
            folder = Path.cwd()
        try:
            saved = self.save_screenshot(filename, path=str(folder))
        except OSError as exc:
            self.notify(f"Cannot save a screenshot in {folder}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"Screenshot saved to {saved}")

    def action_save_defaults(self) -> None:
        session = self.chat_screen.session
        try:
            path = save_defaults(
                self.chat_screen.loader.load_settings,
                session.generation,
                session.system_prompt,
                self.theme,
                path=self.config.path,
            )
        except ConfigError as exc:
            self.notify(str(exc), title="Could not save", severity="error")
            return
        self.notify(f"Saved as defaults in {path}")

    def get_system_commands(self, screen: Screen) -> list[SystemCommand]:
        """Textual's own palette entries that the table of actions does not cover."""
        return [command for command in super().get_system_commands(screen) if command.title in ("Maximize", "Minimize")]

    async def on_unmount(self) -> None:
        self.chat_screen.replies.leave()
        self.collector.restore()  # the interpreter's usual thresholds, for whatever runs next
        self.engine.close()
        self.saver.retry()
        if self.theme != self._theme_at_start:
            try:
                save_theme(self.theme, self.config.path)  # the theme picked in the palette is the one next time
            except ConfigError as exc:  # quitting: no one to tell but the log
                log.warning("theme not saved: %s", exc)
