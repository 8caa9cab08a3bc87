"""Tool calls in the chat, the screen's part: the tool loop (tui/tool_loop.py) does the work;
here each call is put to the user on a card (run once, always run this tool in this chat, or deny
with a reason the model sees), results are shown as short cards, and the model is asked again.
Esc stops a running tool; /tools shows the servers. A part of the chat screen (screens/chat.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from textual.screen import Screen

from tui.core.options import Options
from tui.core.tool_loop import RUN_ALWAYS, RUN_ONCE, Answered, Decision, ToolLoop, ToolRoundLimit
from tui.store import Message as StoredMessage
from tui.tools.calls import ToolCall
from tui.ui.screens.dialogs import TextPromptScreen
from tui.ui.screens.tool_approval import ToolApprovalScreen
from tui.ui.screens.tools import ToolsScreen

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class CardApproval:
    """The app's approval policy: each call waits on its card; a denial asks why (Esc on the
    card denies without a reason)."""

    def __init__(self, screen: Screen[None]) -> None:
        self.screen = screen

    async def decide(self, call: ToolCall, server: str) -> Decision:
        app = self.screen.app
        answer = await app.push_screen_wait(ToolApprovalScreen(call, server))
        if answer in ("once", "always"):
            return RUN_ONCE if answer == "once" else RUN_ALWAYS
        if answer != "deny":
            return Decision(run=False)
        reason = await app.push_screen_wait(TextPromptScreen("Why not? (the model reads this; empty: no reason)"))
        return Decision(run=False, reason=reason or "")


class ToolCalls:
    """The chat's tool loop, shown: its calls' cards, results and status line, and /tools."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.loop = ToolLoop(CardApproval(screen))  # its servers come with the options, at start

    def start(self) -> None:
        """At start: the servers configured for this run; their tools are probed in the background."""
        options = getattr(self.screen.app, "options", None)  # chatui's app: the servers configured for this run
        if isinstance(options, Options):
            self.loop.servers, self.loop.problems = list(options.tool_servers), list(options.tool_problems)
        if self.loop.servers or self.loop.problems:
            self.screen.run_worker(self._probe(), group="tools-probe")

    async def _probe(self) -> None:
        """The servers' tools, and what is wrong with any of them or with the configuration."""
        for status in await self.loop.probe():
            if status.state != "ready":
                self.screen.notify(
                    f"MCP server {status.server.name}: {status.detail}", title="Tools", severity="warning"
                )
        for problem in self.loop.problems:
            self.screen.notify(problem, title="Tools", severity="warning")

    def action_tools(self, argument: str = "") -> None:
        """The configured MCP servers, their state and their tools (probed now); `/tools off
        [NAME ...]` and `/tools on [NAME ...]` switch tools off and on for this chat."""
        words = argument.split()
        if words and words[0] in ("on", "off"):
            self.switch(words[0] == "on", words[1:])
            return
        servers, problems = self.loop.servers, self.loop.problems
        if not servers and not problems:
            self.screen.notify(
                f"No MCP servers are configured: add [mcp.servers.NAME] to {self.screen.config.path} "
                "(see the README's Tools section).",
                severity="warning",
                timeout=10,
            )
            return
        self.screen.notify(f"Asking {len(servers)} MCP server(s) for their tools…")
        self.screen.run_worker(self._show_tools(), exclusive=True, group="tools")

    async def _show_tools(self) -> None:
        statuses = await self.loop.probe()  # the model is offered what they offer now
        await self.screen.app.push_screen(ToolsScreen(statuses, self.loop.problems))

    def switch(self, on: bool, names: list[str]) -> None:
        """Tools on or off for this chat: all of them, or the ones named."""
        unknown = self.loop.switch(on, names)
        if unknown:
            self.screen.notify(f"No tool named {', '.join(unknown)} (/tools lists them).", severity="warning")
            return
        offered = [s["function"]["name"] for s in self.loop.offered() or []]
        self.screen.notify("Tools for this chat: " + (", ".join(offered) if offered else "none"))

    def stop(self) -> bool:
        """Esc while a tool runs: stop it (the model is told). False when none is running."""
        return self.loop.stop()

    async def after_reply(self, stored: StoredMessage) -> None:
        """A reply ended: if it calls tools, each call is put to the user."""
        try:
            calls = await self.loop.take_calls(self.screen.engine, self.screen.session, stored)
        except ToolRoundLimit as exc:
            self.screen.notify(str(exc), severity="warning")
            return
        if calls:
            await self.screen.transcript.render()  # the reply now reads without its call text
            self.screen.run_worker(self._answer(calls), exclusive=True, group="tool-calls")

    async def _answer(self, calls: list[ToolCall]) -> None:
        if await self.loop.answer(self.screen.session, calls, self._show_result, self._show_running):
            await self.screen.replies.start("send")

    def _show_running(self, call: ToolCall, server: str) -> None:
        stop = self.screen.keymap.key("chat.stop")
        self.screen.status.update_info(detail=f"running tool {call.name} on {server} ({stop} stops it)")
        self.screen.refresh_bindings()  # Esc stops the tool: the footer says so

    async def _show_result(self, answered: Answered) -> None:
        self.screen.status.update_info(detail="")
        self.screen.refresh_bindings()
        self.screen.files.report_saves()
        await self.screen.transcript.mount(answered.message)
        self.screen.chat.anchor()


def tool_card(message: StoredMessage, max_lines: int = 6) -> str:
    """A tool result as a short card: the call, the outcome, the first lines of the result."""
    result = message.meta.tool_result
    arguments = json.dumps(result.arguments if result else {}, ensure_ascii=False)
    lines = message.content.splitlines() or [""]
    shown = "\n".join(lines[:max_lines])
    more = f"\n… {len(lines) - max_lines} more lines (in the library and the exports)" if len(lines) > max_lines else ""
    name, server, outcome = (result.name, result.server, result.outcome) if result else ("?", None, "?")
    return f"`{name}({arguments})` on {server or '?'} → **{outcome}**\n\n```\n{shown}\n```{more}"
