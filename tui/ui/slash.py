"""Slash commands typed in the prompt (`/set temperature=0.5`), after Ollama's `/` commands, with
`transformers chat`'s `!` commands as aliases (`!set`, `!status`, `!clear`, `!help`, `!save`,
`!exit`). The names come from the table of actions (`tui.ui.actions`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tui.ui.actions import BY_SLASH, Action

# `transformers chat`'s commands → chatui's. `!save` writes transformers chat's own JSON.
BANG_ALIASES = {
    "set": "set",
    "status": "status",
    "clear": "clear",
    "help": "help",
    "save": "save-tf-chat",
    "exit": "exit",
}


class SlashError(ValueError):
    pass


@dataclass(frozen=True)
class SlashCommand:
    name: str
    action: Action
    argument: str  # the raw text after the name

    def words(self) -> list[str]:
        try:
            return shlex.split(self.argument)
        except ValueError as exc:
            raise SlashError(f"/{self.name}: {exc}") from None


def is_slash_command(text: str) -> bool:
    stripped = text.lstrip()
    if stripped.startswith("!"):  # only transformers chat's own commands: "!important" is a message
        return stripped[1:].partition(" ")[0].lower() in BANG_ALIASES
    return stripped.startswith("/") and not stripped.startswith("//")


def parse_slash(text: str) -> SlashCommand:
    """Parse `/name args` (or `!name args`); an unknown name raises SlashError that says so."""
    body = text.strip()
    name, _, argument = body[1:].partition(" ")
    name = name.lower()
    if body.startswith("!"):
        name = BANG_ALIASES.get(name, name)
    action = BY_SLASH.get(name)
    if action is None:
        raise SlashError(f"unknown command /{name} (try /help)")
    return SlashCommand(name, action, argument.strip())
