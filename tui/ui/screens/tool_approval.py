"""The card a tool call waits on: the tool, its server and its arguments; the user runs it once,
always runs this tool in this chat, or denies it (the model is told why)."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.text import inert
from tui.tools.calls import ToolCall
from tui.ui.actions import Keymap, bindings
from tui.ui.screens.modal import Modal


class ToolApprovalScreen(Modal[str | None]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap): the card names the user's keys."""

    BINDINGS = bindings("tool_approval")

    def __init__(self, call: ToolCall, server: str) -> None:
        super().__init__()
        self.call, self.server = call, server

    def compose_dialog(self) -> ComposeResult:
        arguments = json.dumps(self.call.arguments, ensure_ascii=False, indent=2)
        with VerticalScroll(classes="dialog", id="tool-approval"):
            yield Static("The model wants to run a tool", classes="section-title")
            yield Static(inert(f"{self.call.name}  (MCP server {self.server})"), markup=False)
            yield Static(inert(arguments), markup=False, id="tool-arguments")
            keymap = Keymap.of(self.app)
            yield Static(
                f"{keymap.shown('tool_approval.run_once')}: run once   "
                f"{keymap.shown('tool_approval.always')}: always run this tool in this chat   "
                f"{keymap.shown('tool_approval.deny')}: deny (with a reason)",
                classes="muted dialog-keys",
                markup=False,
                id="tool-keys",
            )

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
