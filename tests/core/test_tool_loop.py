"""The tool loop without Textual: a scripted policy says what the user would, a scripted engine
writes the replies, and the MCP server is real (tests/tools/mcp_test_server.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from fakes import ScriptedEngine

from tui.core.chat_session import ChatSession
from tui.core.tool_loop import RUN_ALWAYS, RUN_ONCE, STOPPED_TEXT, Decision, ToolLoop, ToolRoundLimit, denied_text
from tui.engine import Finished
from tui.engine.metrics import TurnMetrics
from tui.store import AutoSaver
from tui.tools.calls import MAX_TOOL_ROUNDS, ToolCall
from tui.tools.servers import ServerConfig

SCRIPT = str(Path(__file__).parents[1] / "tools" / "mcp_test_server.py")
ADD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 40}}</tool_call>'


class ScriptedPolicy:
    """Answers each call with the next decision, and keeps what it was asked."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.asked: list[tuple[str, str]] = []

    async def decide(self, call: ToolCall, server: str) -> Decision:
        self.asked.append((call.name, server))
        return self.decisions.pop(0)


@pytest.fixture(scope="module")
def probed() -> ToolLoop:
    loop = ToolLoop(ScriptedPolicy(), [ServerConfig("calc", command=sys.executable, args=(SCRIPT,))])
    statuses = asyncio.run(loop.probe())
    assert [status.state for status in statuses] == ["ready"], statuses[0].detail
    return loop


def tool_loop(probed: ToolLoop, *decisions: Decision) -> tuple[ToolLoop, ScriptedPolicy]:
    policy = ScriptedPolicy(*decisions)
    loop = ToolLoop(policy, probed.servers)
    loop.tools = probed.tools
    return loop, policy


def replied(session: ChatSession, text: str):
    """A finished reply of the model, as stored."""
    session.start_reply(session.plan_reply("send"))
    return session.end_reply(Finished(text, "stop", TurnMetrics(new_tokens=1)))


def one_round(loop: ToolLoop, session: ChatSession, text: str) -> tuple[bool, list]:
    """A reply that says `text`, its calls answered: whether the model goes on, and the results."""
    answers = []

    async def answered(result) -> None:
        answers.append(result)

    async def main() -> bool:
        calls = await loop.take_calls(ScriptedEngine(), session, replied(session, text))
        return await loop.answer(session, calls, answered)

    return asyncio.run(main()), answers


def new_session() -> ChatSession:
    session = ChatSession(AutoSaver.memory_only())
    session.new()
    session.add_user_message("What is 2 + 40?")
    return session


def test_a_call_allowed_once_runs_and_the_next_one_is_asked_again(probed):
    loop, policy = tool_loop(probed, RUN_ONCE, RUN_ONCE)
    session = new_session()
    goes_on, [result] = one_round(loop, session, "Let me add. " + ADD)
    assert goes_on and (result.text, result.outcome, result.server) == ("42", "ok", "calc")
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "What is 2 + 40?"),
        ("assistant", "Let me add."),
        ("tool", "42"),
    ]
    one_round(loop, session, ADD)
    assert policy.asked == [("add", "calc"), ("add", "calc")]


def test_always_in_this_chat_is_not_asked_again_until_a_new_chat(probed):
    loop, policy = tool_loop(probed, RUN_ALWAYS, Decision(run=False))
    session = new_session()
    one_round(loop, session, ADD)
    _, [result] = one_round(loop, session, ADD)
    assert result.outcome == "ok" and policy.asked == [("add", "calc")]
    loop.new_chat()
    _, [result] = one_round(loop, session, ADD)
    assert result.outcome == "denied" and len(policy.asked) == 2


def test_a_denied_call_tells_the_model_why_and_it_goes_on(probed):
    loop, _ = tool_loop(probed, Decision(run=False, reason="do it in your head"))
    session = new_session()
    goes_on, [result] = one_round(loop, session, ADD)
    assert goes_on and result.outcome == "denied"
    assert (
        result.text == denied_text("do it in your head") == "The user did not allow this tool call: do it in your head"
    )
    history = session.plan_reply("send").messages
    assert history[-1]["role"] == "tool" and history[-1]["content"] == result.text
    assert denied_text() == "The user did not allow this tool call."


def test_a_call_of_an_unknown_tool_is_an_error_the_user_is_not_asked_about(probed):
    loop, policy = tool_loop(probed)
    _, [result] = one_round(loop, new_session(), '<tool_call>{"name": "rm", "arguments": {}}</tool_call>')
    assert (result.outcome, result.text, result.server) == ("error", "There is no tool named rm.", "")
    assert policy.asked == []


def test_calls_stop_after_the_round_limit_until_the_next_user_message(probed):
    loop, _ = tool_loop(probed, RUN_ALWAYS)
    session = new_session()
    for _ in range(MAX_TOOL_ROUNDS):
        assert one_round(loop, session, ADD)[0]
    with pytest.raises(ToolRoundLimit, match=f"after {MAX_TOOL_ROUNDS} rounds"):
        one_round(loop, session, ADD)
    session.add_user_message("And now?")
    loop.new_user_turn()
    assert one_round(loop, session, ADD)[0]


def test_no_calls_are_read_when_no_tool_is_offered(probed):
    loop, _ = tool_loop(probed)
    assert loop.switch(False, ["nope"]) == ["nope"] and loop.offered()
    assert loop.switch(False, []) == [] and loop.offered() is None
    session = new_session()
    assert one_round(loop, session, ADD) == (True, [])
    assert session.messages[-1].content == ADD  # the call text stays: it was not read as a call
    loop.switch(True, ["add"])
    assert [schema["function"]["name"] for schema in loop.offered()] == ["add"]


def test_a_stopped_tool_is_reported_and_the_model_does_not_go_on(probed):
    loop, _ = tool_loop(probed, RUN_ONCE)
    session = new_session()
    answers = []

    async def answered(result) -> None:
        answers.append(result)

    async def main() -> bool:
        calls = await loop.take_calls(
            ScriptedEngine(),
            session,
            replied(session, '<tool_call>{"name": "sleep", "arguments": {"seconds": 30}}</tool_call>' + ADD),
        )
        answering = asyncio.ensure_future(loop.answer(session, calls, answered))
        while not loop.tool_running:
            await asyncio.sleep(0.02)
        assert loop.stop()
        return await answering

    assert asyncio.run(main()) is False
    assert [(a.outcome, a.text) for a in answers] == [("stopped", STOPPED_TEXT)]  # the next call is not asked
    assert not loop.stop()


def test_cancelling_the_loop_itself_is_not_taken_for_a_stopped_tool(probed):
    loop, _ = tool_loop(probed, RUN_ONCE)
    session = new_session()

    async def answered(result) -> None:
        raise AssertionError("no result is stored for a cancelled loop")

    async def main() -> None:
        calls = await loop.take_calls(
            ScriptedEngine(),
            session,
            replied(session, '<tool_call>{"name": "sleep", "arguments": {"seconds": 30}}</tool_call>'),
        )
        answering = asyncio.ensure_future(loop.answer(session, calls, answered))
        while not loop.tool_running:
            await asyncio.sleep(0.02)
        answering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answering

    asyncio.run(main())
