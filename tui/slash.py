"""Slash commands typed in the prompt (`/set temperature=0.5`), after `transformers chat`'s `!`
commands and Ollama's `/` ones. The names come from the table of actions (`tui.actions`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tui.actions import BY_SLASH, Action


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
    return stripped.startswith("/") and not stripped.startswith("//")


def parse_slash(text: str) -> SlashCommand:
    """Parse `/name args`; an unknown name raises SlashError that says so."""
    body = text.strip()[1:]
    name, _, argument = body.partition(" ")
    name = name.lower()
    action = BY_SLASH.get(name)
    if action is None:
        raise SlashError(f"unknown command /{name} (try /help)")
    return SlashCommand(name, action, argument.strip())
