"""Small modal dialogs: a yes/no question and a one-line text prompt. Both need an app with
`keymap` (tui.ui.actions.Keymap): they name the user's keys."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from tui.ui.actions import Keymap, bindings
from tui.ui.screens.modal import Modal


class ConfirmScreen(Modal[bool]):
    BINDINGS = bindings("confirm")

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose_dialog(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(self.question, markup=False)
            keymap = Keymap.of(self.app)
            yield Static(
                f"{keymap.shown('confirm.yes')}: yes   {keymap.shown('confirm.no')}: no",
                classes="muted dialog-keys",
                markup=False,
            )

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextPromptScreen(Modal[str | None]):
    """Ask for one line of text (a title, a file path); Enter (the input's own key) answers."""

    BINDINGS = bindings("text_prompt")
    AUTO_FOCUS = "#prompt-value"

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.placeholder = title, value, placeholder

    def compose_dialog(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(self.title_text, markup=False, classes="section-title")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-value")
            yield Static(
                f"enter: OK   {Keymap.of(self.app).shown('text_prompt.cancel')}: cancel",
                classes="muted dialog-keys",
                markup=False,
            )

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
