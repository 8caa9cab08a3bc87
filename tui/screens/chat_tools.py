"""Tool calls in the chat, the screen's part: the tool loop (tui/tool_loop.py) does the work;
here each call is put to the user on a card (run once, always run this tool in this chat, or deny
with a reason the model sees), results are shown as short cards, and the model is asked again.
Esc stops a running tool. A mixin of ChatScreen (screens/chat.py), which holds the loop."""

from __future__ import annotations

import json

from textual import work

from tui.screens.dialogs import TextPromptScreen
from tui.screens.tool_approval import ToolApprovalScreen
from tui.store import Message as StoredMessage
from tui.tool_loop import RUN_ALWAYS, RUN_ONCE, Answered, Decision, ToolLoop, ToolRoundLimit
from tui.tools.calls import ToolCall


class CardApproval:
    """The app's approval policy: each call waits on its card; a denial asks why (Esc on the
    card denies without a reason)."""

    def __init__(self, screen: ToolCalls) -> None:
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
    """Part of ChatScreen, which provides session, engine, app.options, notify, generate_reply,
    _mount_message and `tool_loop` (made in its __init__ with a CardApproval)."""

    tool_loop: ToolLoop

    def start_tools(self) -> None:
        """At start: the servers configured for this run; their tools are probed in the background."""
        options = self.app.options
        self.tool_loop.servers, self.tool_loop.problems = list(options.tool_servers), list(options.tool_problems)
        if self.tool_loop.servers or self.tool_loop.problems:
            self.probe_tools()

    @work(group="tools-probe")
    async def probe_tools(self) -> None:
        """The servers' tools, and what is wrong with any of them or with the configuration."""
        for status in await self.tool_loop.probe():
            if status.state != "ready":
                self.notify(f"MCP server {status.server.name}: {status.detail}", title="Tools", severity="warning")
        for problem in self.tool_loop.problems:
            self.notify(problem, title="Tools", severity="warning")

    def switch_tools(self, on: bool, names: list[str]) -> None:
        """Tools on or off for this chat: all of them, or the ones named."""
        unknown = self.tool_loop.switch(on, names)
        if unknown:
            self.notify(f"No tool named {', '.join(unknown)} (/tools lists them).", severity="warning")
            return
        offered = [s["function"]["name"] for s in self.tool_loop.offered() or []]
        self.notify("Tools for this chat: " + (", ".join(offered) if offered else "none"))

    def stop_tool(self) -> bool:
        """Esc while a tool runs: stop it (the model is told). False when none is running."""
        return self.tool_loop.stop()

    async def after_reply(self, stored: StoredMessage) -> None:
        """A reply ended: if it calls tools, each call is put to the user."""
        try:
            calls = await self.tool_loop.take_calls(self.engine, self.session, stored)
        except ToolRoundLimit as exc:
            self.notify(str(exc), severity="warning")
            return
        if calls:
            await self.render_conversation()  # the reply now reads without its call text
            self.run_tool_calls(calls)

    @work(exclusive=True, group="tool-calls")
    async def run_tool_calls(self, calls: list[ToolCall]) -> None:
        if await self.tool_loop.answer(self.session, calls, self._show_tool_result, self._show_tool_running):
            await self.generate_reply("send")

    def _show_tool_running(self, call: ToolCall, server: str) -> None:
        stop = self.keymap.key("chat.stop")
        self.status.update_info(detail=f"running tool {call.name} on {server} ({stop} stops it)")

    async def _show_tool_result(self, answered: Answered) -> None:
        self.status.update_info(detail="")
        self.report_saves()
        await self._mount_message(answered.message)
        self.chat.anchor()


def tool_card(message: StoredMessage, max_lines: int = 6) -> str:
    """A tool result as a short card: the call, the outcome, the first lines of the result."""
    result = message.meta.tool_result
    arguments = json.dumps(result.arguments if result else {}, ensure_ascii=False)
    lines = message.content.splitlines() or [""]
    shown = "\n".join(lines[:max_lines])
    more = f"\n… {len(lines) - max_lines} more lines (in the library and the exports)" if len(lines) > max_lines else ""
    name, server, outcome = (result.name, result.server, result.outcome) if result else ("?", None, "?")
    return (f"`{name}({arguments})` on {server or '?'} → **{outcome}**"
            f"\n\n```\n{shown}\n```{more}")
