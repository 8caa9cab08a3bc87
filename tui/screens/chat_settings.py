"""Generation settings, the system prompt and presets, from the sidebar, `/set`, `/system` and
the palette. A mixin of ChatScreen (screens/chat.py)."""

from __future__ import annotations

from typing import Any

from tui.engine import SettingsError
from tui.engine.settings import BUILTIN_PRESETS, format_value, parse_key_values
from tui.slash import SlashError, parse_slash
from tui.store.config import ConfigError, save_presets
from tui.widgets.settings_panel import SettingsPanel

class SettingsHandlers:
    """Part of ChatScreen, which provides what these methods use (session, engine, state, views,
    the widgets)."""

    async def action_show_status(self) -> None:
        await self.add_note(self.session.status_report(self.model_info, self.state.value))

    def action_set(self, argument: str = "") -> None:
        try:
            words = parse_slash(f"/set {argument}").words()
            if not words:
                raise SlashError("/set needs key=value pairs, e.g. /set temperature=0.5")
            updates = parse_key_values(words)
            self.set_generation(updates)
        except (SlashError, SettingsError) as exc:
            self.notify(str(exc) if isinstance(exc, SlashError) else f"/set: {exc}", severity="error")
            return
        self.notify("Set " + " ".join(f"{k}={format_value(v)}" for k, v in updates.items()))

    def action_system(self, argument: str = "") -> None:
        self.set_system_prompt(argument)
        self.notify("System prompt set for the next turns." if argument else "System prompt cleared.")

    def set_generation(self, updates: dict[str, Any]) -> None:
        """Apply validated generation values (raises SettingsError, changing nothing, if bad)."""
        context = self.model_info.context_size if self.model_info else None
        self.settings_panel.show_generation(self.session.set_generation(updates, context))

    def on_settings_panel_generation_changed(self, message: SettingsPanel.GenerationChanged) -> None:
        try:
            self.set_generation(message.updates)
        except SettingsError as exc:
            for name in message.updates:
                self.settings_panel.show_field_error(name, str(exc))

    def on_settings_panel_generation_reset(self, message: SettingsPanel.GenerationReset) -> None:
        self.session.generation = self.session.generation.without(message.key)
        self.settings_panel.show_generation(self.session.generation)
        self.notify(f"{message.key} is back to its default.")

    def set_system_prompt(self, text: str) -> None:
        self.session.system_prompt = text
        self.settings_panel.show_system_prompt(text)

    def on_settings_panel_system_prompt_changed(self, message: SettingsPanel.SystemPromptChanged) -> None:
        self.session.system_prompt = message.text

    def preset_names(self) -> list[str]:
        return list(BUILTIN_PRESETS) + [n for n in self.user_presets if n not in BUILTIN_PRESETS]

    def apply_preset(self, name: str) -> None:
        values = self.user_presets.get(name) or BUILTIN_PRESETS.get(name)
        if values is None:
            self.notify(f"No preset named {name!r}.", severity="error")
            return
        try:
            self.set_generation(values)
        except SettingsError as exc:
            self.notify(f"Preset {name}: {exc}", severity="error")
            return
        self.notify(f"Preset {name} in use.")

    def on_settings_panel_preset_chosen(self, message: SettingsPanel.PresetChosen) -> None:
        self.apply_preset(message.name)

    def on_settings_panel_preset_saved(self, message: SettingsPanel.PresetSaved) -> None:
        self.user_presets[message.name] = self.session.generation.as_dict()
        self.settings_panel.set_presets(self.preset_names())
        try:
            path = save_presets(self.user_presets, self.config.path)
        except ConfigError as exc:
            self.notify(str(exc), title="Could not save the preset", severity="error")
            return
        self.notify(f"Preset saved in {path}")
