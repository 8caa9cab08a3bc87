"""Tool calls in the chat: the configured MCP servers' tools go to the model; each call it makes
waits for the user (run once, always run this tool in this chat, or deny with a reason the model
sees); results are shown as short cards, stored, and given back to the model, which goes on
until it answers (at most MAX_TOOL_ROUNDS rounds of calls per message). Esc stops a running
tool. A mixin of ChatScreen (screens/chat.py), which holds the state these work on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from textual import work

from tui.screens.dialogs import TextPromptScreen
from tui.screens.tool_approval import ToolApprovalScreen
from tui.store import Message as StoredMessage
from tui.tools.calls import MAX_TOOL_ROUNDS, ToolCall, ToolSet, no_such_tool
from tui.tools.client import ServerStatus, call_tool, probe
from tui.tools.servers import configured_servers


class ToolCalls:
    """Part of ChatScreen, which provides session, config, notify, generate_reply, _mount_message."""

    tools: ToolSet = ToolSet()
    tool_servers: list[Any] = []  # config.toml's [mcp] servers, read at start
    tool_problems: list[str] = []  # what is wrong with that configuration
    _tool_task: "asyncio.Future | None" = None
    _tool_rounds = 0

    def start_tools(self) -> None:
        self.chat_changed()
        # Read once, at start; /tools probes these servers again and keeps what it finds.
        self.tool_servers, self.tool_problems = configured_servers(self.config.mcp, self.config.path)
        if self.tool_servers or self.tool_problems:
            self.probe_tools()

    async def probe_servers(self) -> list[ServerStatus]:
        """Ask the configured MCP servers for their tools; what they offer now is what the model
        is offered from the next reply on."""
        statuses = list(await asyncio.gather(*(probe(server) for server in self.tool_servers)))
        self.tools = ToolSet.of(statuses)
        return statuses

    @work(group="tools-probe")
    async def probe_tools(self) -> None:
        """At start, in the background: the servers' tools, and what is wrong with any of them or
        with the configuration."""
        for status in await self.probe_servers():
            if status.state != "ready":
                self.notify(f"MCP server {status.server.name}: {status.detail}", title="Tools", severity="warning")
        for problem in self.tool_problems:
            self.notify(problem, title="Tools", severity="warning")

    def tools_for_next_reply(self) -> list[dict[str, Any]] | None:
        off = self.tools_off
        schemas = [] if "*" in off else [s for s in self.tools.schemas if s["function"]["name"] not in off]
        return schemas or None

    def switch_tools(self, on: bool, names: list[str]) -> None:
        """Tools on or off for this chat: all of them, or the ones named."""
        known = {schema["function"]["name"] for schema in self.tools.schemas}
        unknown = [name for name in names if name not in known]
        if unknown:
            self.notify(f"No tool named {', '.join(unknown)} (/tools lists them).", severity="warning")
            return
        if on and not names:
            self.tools_off = set()
        elif on:
            self.tools_off = (known if "*" in self.tools_off else self.tools_off) - set(names)
        else:
            self.tools_off = {"*"} if not names else self.tools_off | set(names)
        offered = [s["function"]["name"] for s in self.tools_for_next_reply() or []]
        self.notify("Tools for this chat: " + (", ".join(offered) if offered else "none"))

    def new_user_turn(self) -> None:
        self._tool_rounds = 0

    def chat_changed(self) -> None:
        self.always_allowed: set[str] = set()  # "always run this tool in this chat"
        self.tools_off: set[str] = set()  # tools switched off in this chat ("*": all)
        self._tool_rounds = 0

    def stop_tool(self) -> bool:
        """Esc while a tool runs: stop it (the model is told). False when none is running."""
        if self._tool_task is None or self._tool_task.done():
            return False
        self._tool_task.cancel()
        return True

    async def after_reply(self, stored: StoredMessage) -> None:
        """A reply ended: if it calls tools, each call is put to the user."""
        offered = self.tools_for_next_reply()
        if not offered:
            return
        parsed = await asyncio.wrap_future(self.engine.parse_response(stored.content, offered))
        calls = self.session.take_tool_calls(stored, parsed)
        if calls:
            self._tool_rounds += 1
            if self._tool_rounds > MAX_TOOL_ROUNDS:
                self.notify(f"The model still calls tools after {MAX_TOOL_ROUNDS} rounds: stopped there.",
                            severity="warning")
                return
            await self.render_conversation()  # the reply now reads without its call text
            self.run_tool_calls(calls)

    @work(exclusive=True, group="tool-calls")
    async def run_tool_calls(self, calls: list[ToolCall]) -> None:
        for call in calls:
            server = self.tools.server_of.get(call.name)
            name = server.name if server is not None else ""
            if server is None:
                text, outcome = no_such_tool(call.name), "error"
            else:
                decision = "always" if call.name in self.always_allowed else \
                    await self.app.push_screen_wait(ToolApprovalScreen(call, name))
                if decision == "deny":
                    reason = await self.app.push_screen_wait(
                        TextPromptScreen("Why not? (the model reads this; empty: no reason)")) or ""
                    text = "The user denied this tool call" + (f": {reason}" if reason else ".")
                    outcome = "denied"
                elif decision in ("once", "always"):
                    if decision == "always":
                        self.always_allowed.add(call.name)
                    text, outcome = await self._run_tool(server, call)
                else:  # Esc on the card
                    text, outcome = "The user denied this tool call.", "denied"
            stored = self.session.add_tool_result(call, name, text, outcome)
            self.report_saves()
            await self._mount_message(stored)
            self.chat.anchor()
            if outcome == "stopped":
                return  # the user stopped: the model does not go on by itself
        await self.generate_reply("send")

    async def _run_tool(self, server: Any, call: ToolCall) -> tuple[str, str]:
        stop = self.keymap.key("chat.stop")
        self.status.update_info(detail=f"running tool {call.name} on {server.name} ({stop} stops it)")
        self._tool_task = asyncio.ensure_future(call_tool(server, call.name, call.arguments))
        try:
            result = await self._tool_task
            return result.text, "error" if result.is_error else "ok"
        except asyncio.CancelledError:
            return "The user stopped this tool call.", "stopped"
        finally:
            self._tool_task = None
            self.status.update_info(detail="")


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
