"""`/tools`: the configured MCP servers, each with its state and its tools (names and
descriptions), probed when asked (by the chat screen's ToolCalls, screens/chat_tools.py)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from tui.text import inert
from tui.tools.client import ServerStatus
from tui.ui.actions import Keymap, bindings
from tui.ui.screens.modal import Modal


def tools_markdown(statuses: list[ServerStatus], problems: list[str]) -> str:
    lines = []
    for status in statuses:
        server = status.server
        state = "ready" if status.state == "ready" else f"**failed**: {inert(status.detail)}"
        lines.append(f"### {inert(server.name)}\n\n`{inert(server.describe())}` · {state}\n")
        for tool in status.tools:
            summary = inert(tool.description.splitlines()[0]) if tool.description else ""
            lines.append(f"- `{inert(tool.name)}` {summary}".rstrip())
        lines.append("")
    if problems:
        lines.append("### Configuration problems\n")
        lines += [f"- {inert(problem)}" for problem in problems]
    return "\n".join(lines)


class ToolsScreen(Modal[None]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap): it names the user's close key."""

    BINDINGS = bindings("tools")
    AUTO_FOCUS = "#tools-dialog"

    def __init__(self, statuses: list[ServerStatus], problems: list[str]) -> None:
        super().__init__()
        self.statuses, self.problems = statuses, problems

    def compose_dialog(self) -> ComposeResult:
        with VerticalScroll(id="tools-dialog", classes="dialog"):
            yield Static("Tools (MCP servers)", classes="section-title")
            yield Markdown(tools_markdown(self.statuses, self.problems), id="tools-list")
            yield Static(
                "The model may call these tools in a chat where they are on (/tools on|off); "
                f"each call waits for your approval. {Keymap.of(self.app).key('tools.close')} closes.",
                classes="muted dialog-keys",
                markup=False,
            )
