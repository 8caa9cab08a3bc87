"""What every modal screen shares: a footer of its own, so the keys at the bottom are the modal's
and not those of the chat under it. A modal's dialog keeps its key line outside the part that
scrolls (`compose_dialog`), so at any size the keys stay on screen."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.screen import ModalScreen

from tui.ui.widgets.keys_footer import KeysFooter

ResultType = TypeVar("ResultType")


class Modal(ModalScreen[ResultType]):
    def compose(self) -> ComposeResult:
        yield from self.compose_dialog()
        yield KeysFooter(show_command_palette=False)

    def compose_dialog(self) -> ComposeResult:
        """The dialog: subclasses yield it here."""
        yield from ()
