"""Tool calls in `--prompt` mode: the model's choice to call a tool is scripted; the parser, the
MCP client (a real stdio server), the approval flags, the library and the follow-up reply are
the real code. Without approval every call is refused, and the refusal is shown."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from fakes import ScriptedEngine

from tui.cli.headless import run_headless
from tui.cli.main import parse_args
from tui.store import Library
from tui.tools.servers import ServerConfig

SCRIPT = str(Path(__file__).with_name("mcp_test_server.py"))
CALL = 'Let me compute. <tool_call>{"name": "add", "arguments": {"a": 2, "b": 40}}</tool_call>'


def run(tmp_path, *flags: str, replies: list[str]):
    engine = ScriptedEngine(replies)
    options = parse_args(["--prompt", "What is 2 + 40?", *flags])
    options.tool_servers = [ServerConfig("calc", command=sys.executable, args=(SCRIPT,))]
    out, err = io.StringIO(), io.StringIO()
    library = tmp_path / "data" / "chatui" / "library.sqlite3"
    code = run_headless(options, engine=engine, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue(), engine, library


def stored_messages():
    from tui.paths import data_dir

    with Library(data_dir() / "library.sqlite3") as library:
        return library.get(library.resolve_id("last")).messages


def test_an_approved_call_runs_and_the_model_answers_from_its_result(tmp_path):
    code, out, err, engine, _ = run(tmp_path, "--approve-tools", "add", replies=[CALL, "The sum is 42."])
    assert code == 0, err
    assert engine.tools_given and engine.tools_given[0]["function"]["name"] == "add"  # the template gets the tools
    follow_up = engine.calls[1][0]
    assert follow_up[-2]["tool_calls"][0]["function"]["name"] == "add"
    assert follow_up[-1] == {
        "role": "tool",
        "content": "42",
        "tool_call_id": follow_up[-2]["tool_calls"][0]["id"],
        "name": "add",
    }
    assert out.endswith("The sum is 42.\n") and "tool call add" in err and ": ok: 42" in err
    roles = [(m.role, m.content) for m in stored_messages()]
    assert roles == [
        ("user", "What is 2 + 40?"),
        ("assistant", "Let me compute."),
        ("tool", "42"),
        ("assistant", "The sum is 42."),
    ]


def test_without_approval_the_call_is_refused_and_the_refusal_is_shown(tmp_path):
    code, out, err, engine, _ = run(tmp_path, replies=[CALL, "I could not add them."])
    assert code == 0
    assert "refused: not approved (allow it with --approve-tools add or --approve-all-tools)" in err
    assert engine.calls[1][0][-1]["content"] == "The user did not allow this tool call."
    tool = [m for m in stored_messages() if m.role == "tool"][0]
    assert tool.meta.tool_result.outcome == "denied" and tool.meta.tool_result.arguments == {"a": 2, "b": 40}


def test_a_model_that_keeps_calling_is_stopped_after_five_rounds(tmp_path):
    code, _, err, engine, _ = run(tmp_path, "--approve-all-tools", replies=[CALL])
    assert code == 1 and "still calls tools after 5 rounds" in err
    assert len(engine.calls) == 6


def test_a_chat_with_tool_calls_exports_imports_and_continues(tmp_path):
    from tui.core.chat_session import ChatSession
    from tui.store import AutoSaver, export_json, export_markdown, import_conversation
    from tui.store.model import model_message

    code, _, err, _, _ = run(tmp_path, "--approve-tools", "add", replies=[CALL, "The sum is 42."])
    assert code == 0, err
    from tui.paths import data_dir

    with Library(data_dir() / "library.sqlite3") as library:
        conversation = library.get(library.resolve_id("last"))
    for name, text in (("chat.json", export_json(conversation)), ("chat.md", export_markdown(conversation))):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        imported = import_conversation(path)
        assert [(m.role, m.content) for m in imported.messages] == [(m.role, m.content) for m in conversation.messages]
        assert [model_message(m) for m in imported.messages] == [model_message(m) for m in conversation.messages]
    session = ChatSession(AutoSaver(Library(tmp_path / "other.sqlite3")))
    conv_id = session.saver.library.import_conversation(imported)
    session.open(conv_id)
    session.add_user_message("And 2 + 41?")
    history = session.plan_reply("send").messages
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]
    assert history[1]["tool_calls"][0]["function"]["name"] == "add" and history[2]["tool_call_id"]
