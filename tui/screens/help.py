"""F1: every key, and the slash commands."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.slash import help_text


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("Keys", classes="section-title")
            table = DataTable(show_cursor=False, zebra_stripes=True, id="help-keys")
            table.add_columns("Key", "Action")
            extra = [("enter", "Send the message"), ("shift+enter / ctrl+j", "New line in the message"),
                     ("up / down", "Earlier prompts (when the input is empty)")]
            for key, action in self.rows + extra:
                table.add_row(key, action)
            yield table
            yield Static("Slash commands", classes="section-title")
            yield Static(help_text(), markup=False, id="help-commands")
            yield Static("Esc closes this screen.", classes="muted")
