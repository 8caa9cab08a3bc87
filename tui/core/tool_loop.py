"""One chat's tool calls, without Textual: the tools offered to the model (the configured MCP
servers' tools, less those switched off in this chat), the calls read from a finished reply, each
call put to an approval policy (the app's card, or the command line's --approve-tools), the
approved ones run (cancellable), every result stored for the model, and at most MAX_TOOL_ROUNDS
rounds of calls for one user message. The texts the model reads about its calls live here.

Async throughout: the app runs it in a Textual worker, headless with `asyncio.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tui.core.chat_session import ChatSession
from tui.engine.backend import Backend
from tui.store import Message
from tui.tools.calls import MAX_TOOL_ROUNDS, ToolCall, ToolSet
from tui.tools.client import ServerStatus, call_tool, probe

STOPPED_TEXT = "The user stopped this tool call."


def denied_text(reason: str = "") -> str:
    """What the model reads for a call the user did not allow, with their reason if they gave one."""
    return "The user did not allow this tool call" + (f": {reason}" if reason else ".")


def no_such_tool(name: str) -> str:
    """The result the model gets for a call to a tool that is not there."""
    return f"There is no tool named {name}."


class ToolRoundLimit(Exception):
    """The model called tools again after MAX_TOOL_ROUNDS rounds for one message: no more run."""

    def __init__(self) -> None:
        super().__init__(f"The model still calls tools after {MAX_TOOL_ROUNDS} rounds: stopped there.")


@dataclass(frozen=True)
class Decision:
    """What was said to one call: run it (once, or this tool always in this chat), or not, and why."""

    run: bool
    always: bool = False
    reason: str = ""  # why not, for the model; "" when none was given


RUN_ONCE = Decision(run=True)
RUN_ALWAYS = Decision(run=True, always=True)


class ApprovalPolicy(Protocol):
    """Who says whether a call runs: the app asks the user, headless follows the command line."""

    async def decide(self, call: ToolCall, server: str) -> Decision: ...


@dataclass(frozen=True)
class Answered:
    """One call's result as stored: `outcome` is "ok", "error", "denied" or "stopped"."""

    call: ToolCall
    server: str  # the server's name; "" for a tool that is not there
    text: str  # what the model reads
    outcome: str
    message: Message


class ToolLoop:
    """The tool calls of one chat: the tools it offers, what was allowed in it, the rounds of
    calls for the current user message, and the tool running now (which `stop` cancels)."""

    def __init__(
        self, policy: ApprovalPolicy, servers: list[Any] | None = None, problems: list[str] | None = None
    ) -> None:
        self.policy = policy
        self.servers = list(servers or [])  # the configured MCP servers (ServerConfig)
        self.problems = list(problems or [])  # what is wrong with that configuration
        self.tools = ToolSet()  # what the ready servers offer, since the last probe
        self._running: asyncio.Future | None = None
        self.new_chat()

    def new_chat(self) -> None:
        """A new or another chat: every tool on again, nothing allowed yet."""
        self.always_allowed: set[str] = set()  # "always run this tool in this chat"
        self.tools_off: set[str] = set()  # tools switched off in this chat ("*": all)
        self.rounds = 0

    def new_user_turn(self) -> None:
        self.rounds = 0

    async def probe(self) -> list[ServerStatus]:
        """Ask the configured servers for their tools; what they offer now is what the model is
        offered from the next reply on."""
        statuses = list(await asyncio.gather(*(probe(server) for server in self.servers)))
        self.tools = ToolSet.of(statuses)
        return statuses

    def offered(self) -> list[dict[str, Any]] | None:
        """The schemas of the tools on in this chat, for the next reply; None when there are none."""
        off = self.tools_off
        schemas = [] if "*" in off else [s for s in self.tools.schemas if s["function"]["name"] not in off]
        return schemas or None

    def switch(self, on: bool, names: list[str]) -> list[str]:
        """Tools on or off for this chat: all of them, or the ones named. Returns the names that
        are no tool (then nothing changes)."""
        known = {schema["function"]["name"] for schema in self.tools.schemas}
        unknown = [name for name in names if name not in known]
        if unknown:
            return unknown
        if on and not names:
            self.tools_off = set()
        elif on:
            self.tools_off = (known if "*" in self.tools_off else self.tools_off) - set(names)
        else:
            self.tools_off = {"*"} if not names else self.tools_off | set(names)
        return []

    async def take_calls(self, engine: Backend, session: ChatSession, reply: Message) -> list[ToolCall]:
        """The calls of a finished reply, taken out of its text (see ChatSession.take_tool_calls);
        [] when it makes none or no tool is offered. Raises ToolRoundLimit past MAX_TOOL_ROUNDS."""
        offered = self.offered()
        if not offered:
            return []
        parsed = await asyncio.wrap_future(engine.parse_response(reply.content, offered))
        calls = session.take_tool_calls(reply, parsed)
        if calls:
            self.rounds += 1
            if self.rounds > MAX_TOOL_ROUNDS:
                raise ToolRoundLimit()
        return calls

    async def answer(
        self,
        session: ChatSession,
        calls: list[ToolCall],
        answered: Callable[[Answered], Awaitable[None]],
        running: Callable[[ToolCall, str], None] = lambda call, server: None,
    ) -> bool:
        """Each call put to the policy, run if allowed (`running` is told as it starts), and its
        result stored and passed to `answered`. True when the model should be asked again; False
        when the user stopped a tool (the model does not go on by itself)."""
        for call in calls:
            images: tuple[tuple[str, bytes], ...] = ()
            server = self.tools.server_of.get(call.name)
            name = server.name if server is not None else ""
            if server is None:
                text, outcome = no_such_tool(call.name), "error"
            else:
                decision = RUN_ALWAYS if call.name in self.always_allowed else await self.policy.decide(call, name)
                if not decision.run:
                    text, outcome = denied_text(decision.reason), "denied"
                else:
                    if decision.always:
                        self.always_allowed.add(call.name)
                    running(call, name)
                    text, outcome, images = await self._run(server, call)
            stored = session.add_tool_result(call, name, text, outcome, images)
            await answered(Answered(call, name, text, outcome, stored))
            if outcome == "stopped":
                return False
        return True

    @property
    def tool_running(self) -> bool:
        return self._running is not None and not self._running.done()

    def stop(self) -> bool:
        """Stop the running tool (the model is told). False when none is running."""
        running = self._running
        if running is None or running.done():
            return False
        running.cancel()
        return True

    async def _run(self, server: Any, call: ToolCall) -> tuple[str, str, tuple[tuple[str, bytes], ...]]:
        self._running = asyncio.ensure_future(call_tool(server, call.name, call.arguments))
        try:
            result = await self._running
            return result.text, "error" if result.is_error else "ok", result.images
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None  # a coroutine awaiting runs in a task
            if task.cancelling():  # the loop itself was cancelled, not just the tool
                raise
            return STOPPED_TEXT, "stopped", ()
        finally:
            self._running = None
