"""The welcome panel of an empty chat: the model and its state (while it loads, the real progress
with the time so far and the time left), what to type, and the keys that matter. Given its
values by the chat screen (`show`); it posts nothing."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui.text import inert


@dataclass
class Welcome:
    model: str = ""
    state: str = "loading"  # loading, ready, generating, error
    detail: str = ""  # what the load is doing, the model's figures, or the error
    elapsed_s: float | None = None  # the load so far (shown from MIN_SHOWN_S)
    left_s: float | None = None  # the load's time left, estimated from its progress
    keys: tuple[tuple[str, str], ...] = ()  # (key, what it does)
    send_key: str = "enter"


MIN_SHOWN_S = 2.0  # a load quicker than this needs no clock


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


def welcome_text(welcome: Welcome, width: int = 0) -> Text:
    """The panel's text; `width` (its content's, 0: unknown) lays the key line out in whole pairs."""
    text = Text()
    text.append("chatui", style="bold")
    if welcome.model:
        text.append(" · ")
        text.append(inert(welcome.model), style="bold")
    text.append("\n")
    icon = {"loading": "◌", "ready": "●", "generating": "▶", "error": "✖"}.get(welcome.state, "·")
    line = f"{icon} {welcome.state}"
    if welcome.detail:
        line += f": {inert(welcome.detail)}"
    if welcome.state == "loading" and welcome.elapsed_s is not None and welcome.elapsed_s >= MIN_SHOWN_S:
        line += f" · {_seconds(welcome.elapsed_s)}"
        if welcome.left_s is not None:
            line += f" · about {_seconds(welcome.left_s)} left"
    text.append(line + "\n", style="red" if welcome.state == "error" else "")
    text.append(
        f"Type a message, {welcome.send_key} sends; /help lists commands"
        + (" (type while the model loads)" if welcome.state == "loading" else "")
        + ".\n",
    )
    used = 0
    for key, what in welcome.keys:  # a key and its name never part: a pair that does not fit starts a line
        pair = len(key) + 1 + len(what)
        if used and width and used + 3 + pair > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("   ")
            used += 3
        text.append(key, style="bold")
        text.append(f" {what}")
        used += pair
    return text


class WelcomePanel(Static):
    DEFAULT_CSS = """
    WelcomePanel {
        height: auto;
        max-height: 45%;  /* the chat under it keeps its room in a small terminal */
        margin: 0 1;
        padding: 0 1;
        border: round $primary 50%;
        color: $foreground;
        overflow: hidden;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.welcome = Welcome()

    def show(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self.welcome, key, value)
        self.update(welcome_text(self.welcome, self.content_size.width))

    def on_resize(self) -> None:
        self.update(welcome_text(self.welcome, self.content_size.width))
