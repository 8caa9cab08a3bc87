"""Slash commands typed in the prompt, after `transformers chat`'s `!` commands and Ollama's."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

COMMANDS: dict[str, str] = {
    "help": "show the commands and keys",
    "clear": "clear the conversation on screen (starts a new chat)",
    "new": "start a new chat",
    "set": "change generation settings: /set temperature=0.5 max_new_tokens=256",
    "system": "set the system prompt for the next turns: /system You are terse.",
    "status": "show the model, load options and generation settings in use",
    "regenerate": "generate the last reply again",
    "continue": "continue the last (stopped or cut-off) reply",
    "quit": "quit chatui",
}


class SlashError(ValueError):
    pass


@dataclass(frozen=True)
class SlashCommand:
    name: str
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
    if name not in COMMANDS:
        raise SlashError(f"unknown command /{name} (try /help)")
    return SlashCommand(name, argument.strip())


def help_text() -> str:
    return "\n".join(f"/{name:<11} {text}" for name, text in COMMANDS.items())
