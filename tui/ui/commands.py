"""The command palette (ctrl+p): every action of the table with its help and the user's key,
and the generation presets. Typing filters by fuzzy match, as in Textual's own palette."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.ui.actions import Keymap, in_scope
from tui.ui.screens.chat import ChatScreen


class ChatCommands(Provider):
    """The app's actions and the chat screen's (its default screen, a ChatScreen), with the
    user's keys."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app, keymap = self.app, Keymap.of(self.app)
        chat = app.get_default_screen()
        commands: list[tuple[str, str, Callable[[], object]]] = []
        for action in in_scope("app", "chat"):
            if not action.palette:
                continue
            key = keymap.key(action.id)
            help_text = f"{action.help} ({key})" if key else action.help
            namespace = app if action.scope == "app" else chat
            commands.append((action.title, help_text, partial(namespace.run_action, action.action)))
        if isinstance(chat, ChatScreen):
            editor = chat.settings_editor
            for name in editor.preset_names():
                commands.append(
                    (
                        f"Preset: {name}",
                        f"Use the {name} generation settings for the next replies.",
                        partial(editor.apply_preset, name),
                    )
                )
        return commands

    async def discover(self) -> Hits:
        for title, help_text, command in self._commands():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_text)
