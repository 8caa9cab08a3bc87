"""`/tools`: the configured MCP servers, each with its state and its tools (names and
descriptions), probed when asked. `ToolActions` is the chat screen's part (a mixin)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from tui.actions import bindings
from tui.text import inert
from tui.tools.client import ServerStatus


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


class ToolsScreen(ModalScreen[None]):
    """Needs an app with `keymap` (tui.actions.Keymap): it names the user's close key."""

    BINDINGS = bindings("tools")
    AUTO_FOCUS = "#tools-dialog"

    def __init__(self, statuses: list[ServerStatus], problems: list[str]) -> None:
        super().__init__()
        self.statuses, self.problems = statuses, problems

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tools-dialog"):
            yield Static("Tools (MCP servers)", classes="section-title")
            yield Markdown(tools_markdown(self.statuses, self.problems), id="tools-list")
            yield Static("The model may call these tools in a chat where they are on (/tools on|off); "
                         f"each call waits for your approval. {self.app.keymap.key('tools.close')} closes.", classes="muted",
                         markup=False)


class ToolActions:
    """Part of ChatScreen, which provides `config`, `notify` and (ToolCalls) the configured
    servers and `probe_servers`."""

    @work(exclusive=True, group="tools")
    async def action_tools(self, argument: str = "") -> None:
        """The configured MCP servers, their state and their tools (probed now); `/tools off
        [NAME ...]` and `/tools on [NAME ...]` switch tools off and on for this chat."""
        words = argument.split()
        if words and words[0] in ("on", "off"):
            self.switch_tools(words[0] == "on", words[1:])
            return
        servers, problems = self.tool_servers, self.tool_problems
        if not servers and not problems:
            self.notify(f"No MCP servers are configured: add [mcp.servers.NAME] to {self.config.path} "
                        "(see the README's Tools section).", severity="warning", timeout=10)
            return
        self.notify(f"Asking {len(servers)} MCP server(s) for their tools…")
        statuses = await self.probe_servers()  # the model is offered what they offer now
        await self.app.push_screen(ToolsScreen(statuses, problems))
