"""Generation settings, the system prompt and presets, from the sidebar, `/set`, `/system` and
the palette. A part of the chat screen (screens/chat.py); the settings themselves live in the
session, the user's presets here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.engine import SettingsError
from tui.engine.settings import BUILTIN_PRESETS, format_value, parse_key_values
from tui.store.config import ConfigError, save_presets
from tui.ui.slash import SlashError, parse_slash

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class SettingsEditor:
    def __init__(self, screen: ChatScreen, user_presets: dict[str, dict[str, Any]]) -> None:
        self.screen = screen
        self.user_presets = dict(user_presets)  # config.toml's [presets], and those saved since

    async def action_show_status(self) -> None:
        screen = self.screen
        await screen.transcript.add_note(screen.session.status_report(screen.engine.info, screen.state.value))

    def action_set(self, argument: str = "") -> None:
        try:
            words = parse_slash(f"/set {argument}").words()
            if not words:
                raise SlashError("/set needs key=value pairs, e.g. /set temperature=0.5")
            updates = parse_key_values(words)
            self.set_generation(updates)
        except (SlashError, SettingsError) as exc:
            self.screen.notify(str(exc) if isinstance(exc, SlashError) else f"/set: {exc}", severity="error")
            return
        self.screen.notify("Set " + " ".join(f"{k}={format_value(v)}" for k, v in updates.items()))

    def action_system(self, argument: str = "") -> None:
        self.set_system_prompt(argument)
        self.screen.notify("System prompt set for the next turns." if argument else "System prompt cleared.")

    def set_generation(self, updates: dict[str, Any]) -> None:
        """Apply validated generation values (raises SettingsError, changing nothing, if bad)."""
        screen = self.screen
        info = screen.engine.info
        screen.settings_panel.show_generation(
            screen.session.set_generation(updates, info.context_size if info else None)
        )

    def generation_changed(self, updates: dict[str, Any]) -> None:
        try:
            self.set_generation(updates)
        except SettingsError as exc:
            for name in updates:
                self.screen.settings_panel.show_field_error(name, str(exc))

    def generation_reset(self, key: str) -> None:
        session = self.screen.session
        session.generation = session.generation.without(key)
        self.screen.settings_panel.show_generation(session.generation)
        self.screen.notify(f"{key} is back to its default.")

    def set_system_prompt(self, text: str) -> None:
        self.screen.session.system_prompt = text
        self.screen.settings_panel.show_system_prompt(text)

    def preset_names(self) -> list[str]:
        return list(BUILTIN_PRESETS) + [n for n in self.user_presets if n not in BUILTIN_PRESETS]

    def presets(self) -> dict[str, dict[str, Any]]:
        """Every preset by name: the built-in ones, then the user's (which may replace one)."""
        return {**BUILTIN_PRESETS, **self.user_presets}

    def apply_preset(self, name: str) -> None:
        values = self.presets().get(name)
        if values is None:
            self.screen.notify(f"No preset named {name!r}.", severity="error")
            return
        try:
            self.set_generation(values)
        except SettingsError as exc:
            self.screen.notify(f"Preset {name}: {exc}", severity="error")
            return
        self.screen.notify(f"Preset {name} in use.")

    def save_preset(self, name: str) -> None:
        screen = self.screen
        self.user_presets[name] = screen.session.generation.as_dict()
        screen.settings_panel.set_presets(self.preset_names())
        try:
            path = save_presets(self.user_presets, screen.config.path)
        except ConfigError as exc:
            screen.notify(str(exc), title="Could not save the preset", severity="error")
            return
        screen.notify(f"Preset saved in {path}")
