"""F1: every key and slash command, from the table of actions, with the user's own keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Markdown, Static

from tui.actions import ACTIONS, Keymap, in_scope

# Keys of the prompt itself (a TextArea), not actions of the table.
PROMPT_KEYS = [("enter", "Send the message"), ("shift+enter / ctrl+j", "New line in the message"),
               ("up / down", "Earlier prompts (when the input is empty)"), ("ctrl+p", "Command palette")]


def key_rows(keymap: Keymap) -> list[tuple[str, str]]:
    rows = [(keymap.shown(a.id), a.title) for a in in_scope("chat", "app") if keymap.keys(a.id)]
    rows += PROMPT_KEYS
    rows += [(f"{keymap.shown(a.id)} (on a message)", a.title) for a in in_scope("message") if keymap.keys(a.id)]
    return rows


def command_lines() -> str:
    """The slash commands as a Markdown list (each wraps under its own bullet)."""
    lines = []
    for action in ACTIONS:
        if action.slash:
            usage = f"/{action.slash[0]} {action.argument}".rstrip()
            aliases = "".join(f" or `/{alias}`" for alias in action.slash[1:])
            lines.append(f"- `{usage}`{aliases}: {action.help}")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]
    AUTO_FOCUS = "#help-dialog"

    def __init__(self, keymap: Keymap) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static("Keys", classes="section-title")
            table = DataTable(show_cursor=False, zebra_stripes=True, id="help-keys")
            table.can_focus = False  # the dialog scrolls (PageDown, End, the wheel), not the table
            table.add_columns("Key", "Action")
            for key, title in key_rows(self.keymap):
                table.add_row(key, title)
            yield table
            yield Static("Slash commands", classes="section-title")
            yield Markdown(command_lines(), id="help-commands")
            yield Static("Esc closes this screen.", classes="muted")
