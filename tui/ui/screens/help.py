"""F1: every key and slash command, from the table of actions, with the user's own keys."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Markdown, Static

from tui.ui.actions import ACTIONS, Keymap, bindings, in_scope
from tui.ui.screens.modal import Modal


def key_rows(keymap: Keymap, palette_key: str) -> list[tuple[str, str]]:
    """The chat's, the prompt's and a focused message's keys; the text area's cursor keys (history)
    and the palette's are Textual's, not actions of the table."""
    rows = [(keymap.shown(a.id), a.title) for a in in_scope("chat", "app", "prompt") if keymap.keys(a.id)]
    rows += [("up / down", "Earlier prompts (empty input)"), (palette_key, "Command palette")]
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


class HelpScreen(Modal[None]):
    BINDINGS = bindings("help")
    AUTO_FOCUS = "#help-dialog"

    def __init__(self, keymap: Keymap) -> None:
        super().__init__()
        self.keymap = keymap

    def compose_dialog(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Static("Keys", classes="section-title")
            table: DataTable[str] = DataTable(show_cursor=False, zebra_stripes=True, id="help-keys")
            table.can_focus = False  # the dialog scrolls (PageDown, End, the wheel), not the table
            table.add_columns("Key", "Action")
            for key, title in key_rows(self.keymap, self.app.COMMAND_PALETTE_BINDING):
                table.add_row(key, title)
            # Every row, the header too: DataTable caps itself at its container's height (100%),
            # which cut rows off in a small terminal; the dialog scrolls instead.
            table.styles.height = table.styles.max_height = table.row_count + 1
            table.styles.overflow_x = "hidden"  # a scrollbar would take the last row's line
            yield table
            yield Static("Slash commands", classes="section-title")
            yield Markdown(command_lines(), id="help-commands")
            yield Static(
                f"{self.keymap.key('help.close')} or {self.keymap.key('app.help')} closes this screen.",
                classes="muted dialog-keys",
                markup=False,
            )

    def on_key(self, event: events.Key) -> None:
        if event.key in (self.keymap.keys("app.help") or "").split(","):  # the user's help key closes help too
            event.stop()
            self.dismiss()
