"""Tool calls in the app: the model's choice to call a tool is scripted (ScriptedEngine); the
parser, the MCP client (a real stdio server), the approval card, the library and the follow-up
reply are the real code. Nothing runs without approval."""

from __future__ import annotations

import sys
from pathlib import Path

from fakes import ScriptedEngine
from pilot import make_app, message_views, reply_texts, run, send, wait_for

from tui.store.config import load_config
from tui.ui.screens.dialogs import TextPromptScreen
from tui.ui.screens.tool_approval import ToolApprovalScreen

SCRIPT = (Path(__file__).parents[2] / "tools" / "mcp_test_server.py").as_posix()
CALL = 'Let me compute. <tool_call>{"name": "add", "arguments": {"a": 2, "b": 40}}</tool_call>'
SLOW = '<tool_call>{"name": "sleep", "arguments": {"seconds": 30}}</tool_call>'


def tools_app(tmp_path, replies):
    path = tmp_path / "config.toml"
    path.write_text(f'[mcp.servers.calc]\ncommand = "{sys.executable}"\nargs = ["{SCRIPT}"]\n')
    engine = ScriptedEngine(replies)
    config = load_config(path)
    app = make_app(tmp_path, engine=engine, config=config)
    app.options.apply_config(config)  # as the command line does: the options carry the servers
    return app, engine


def test_a_call_waits_for_approval_runs_once_and_the_model_answers(tmp_path):
    async def scenario():
        app, engine = tools_app(tmp_path, [CALL, "The sum is 42.", CALL, "Still 42."])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            await send(pilot, app, "What is 2 + 40?")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
            assert engine.tools_given[0]["function"]["name"] in ("add", "env_value", "sleep")
            assert len(engine.calls) == 1  # nothing runs, nothing follows, until the user says so
            card = str(app.screen.query_one("#tool-arguments").render())
            assert '"a": 2' in card and '"b": 40' in card
            await pilot.press("a")  # always, in this chat
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "The sum is 42.", 30)
            roles = [(m.role, m.content) for m in chat.messages]
            assert roles == [
                ("user", "What is 2 + 40?"),
                ("assistant", "Let me compute."),
                ("tool", "42"),
                ("assistant", "The sum is 42."),
            ]
            await send(pilot, app, "Again?")  # always: no card this time
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "Still 42.", 30)
            assert not isinstance(app.screen, ToolApprovalScreen)

    run(scenario())


def test_the_card_takes_and_names_the_users_keys(tmp_path):
    async def scenario():
        path = tmp_path / "config.toml"
        path.write_text(
            f'[keys]\n"tool_approval.run_once" = "r"\n'
            f'[mcp.servers.calc]\ncommand = "{sys.executable}"\nargs = ["{SCRIPT}"]\n'
        )
        config = load_config(path)
        app = make_app(tmp_path, engine=ScriptedEngine([CALL, "The sum is 42."]), config=config)
        app.options.apply_config(config)  # as the command line does: the options carry the servers
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            await send(pilot, app, "What is 2 + 40?")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
            keys = str(app.screen.query_one("#tool-keys").render())
            assert keys.startswith("r: run once") and "d / escape: deny" in keys
            await pilot.press("o")  # the default key no longer answers
            await pilot.pause(0.2)
            assert isinstance(app.screen, ToolApprovalScreen)
            await pilot.press("r")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "The sum is 42.", 30)

    run(scenario())


def test_a_denied_call_tells_the_model_why(tmp_path):
    async def scenario():
        app, engine = tools_app(tmp_path, [CALL, "Fine, I will not."])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            await send(pilot, app, "What is 2 + 40?")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
            app.screen.query_one("#prompt-value").value = "do it in your head"
            await pilot.press("enter")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "Fine, I will not.", 30)
            follow_up = engine.calls[1][0]
            assert follow_up[-1]["role"] == "tool"
            assert follow_up[-1]["content"] == "The user did not allow this tool call: do it in your head"
            assert chat.messages[-2].meta.tool_result.outcome == "denied"

    run(scenario())


async def run_the_slow_tool(pilot, app):
    """Ask for the slow tool, allow it once, and return the chat screen once it runs."""
    chat = app.chat_screen
    await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
    await send(pilot, app, "Wait a while.")
    await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
    await pilot.press("o")
    await wait_for(pilot, lambda: chat.tool_calls.loop.tool_running, 10)
    return chat


def test_esc_stops_a_running_tool_and_the_model_does_not_go_on(tmp_path):
    async def scenario():
        app, engine = tools_app(tmp_path, [SLOW, "never"])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = await run_the_slow_tool(pilot, app)
            await pilot.pause(0.5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: chat.messages[-1].role == "tool", 10)
            assert chat.messages[-1].meta.tool_result.outcome == "stopped"
            await pilot.pause(0.3)
            assert len(engine.calls) == 1  # no follow-up after a stop

    run(scenario())


def test_while_a_tool_runs_the_footer_says_esc_stops_it_even_over_the_sidebar(tmp_path):
    """Esc stops a running tool before it closes a sidebar lying over the chat; the footer said
    "Close sidebar" meanwhile."""
    from textual.widgets._footer import FooterKey

    async def scenario():
        app, engine = tools_app(tmp_path, [SLOW, "never"])
        async with app.run_test(size=(60, 20)) as pilot:
            chat = await run_the_slow_tool(pilot, app)
            await pilot.press("ctrl+b")  # the sidebar lies over the narrow chat
            await wait_for(pilot, lambda: chat.settings_panel.display and chat.settings_panel.has_class("-overlay"))
            footer = lambda: [key.description for key in chat.query(FooterKey)]  # noqa: E731
            await wait_for(pilot, lambda: "Stop" in footer() and "Close sidebar" not in footer())
            await pilot.press("escape")
            await wait_for(pilot, lambda: chat.messages[-1].role == "tool", 10)
            assert chat.messages[-1].meta.tool_result.outcome == "stopped"
            assert chat.settings_panel.display  # Esc stopped the tool, not the sidebar
            await wait_for(pilot, lambda: "Close sidebar" in footer())

    run(scenario())


def test_tools_switch_off_and_on_for_a_chat(tmp_path):
    async def scenario():
        app, engine = tools_app(tmp_path, ["No tools here.", "Now with add.", "Back."])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            chat.action_tools("off")
            await pilot.pause()
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1)
            assert engine.tools_given is None  # off: the model is offered none
            chat.action_tools("on add")
            await pilot.pause()
            await send(pilot, app, "and now?")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 2)
            assert [t["function"]["name"] for t in engine.tools_given] == ["add"]
            await chat.action_new_chat()  # a new chat starts with every tool
            await send(pilot, app, "new chat")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == ["Back."])
            assert {t["function"]["name"] for t in engine.tools_given} == {"add", "draw", "echo", "env_value", "sleep"}

    run(scenario())


def test_tool_output_is_shown_inert(tmp_path):
    echo = '<tool_call>{"name": "echo", "arguments": {"text": "\\u001b[2J\\u001b]0;pwned\\u0007boom"}}</tool_call>'

    async def scenario():
        app, engine = tools_app(tmp_path, [echo, "Done."])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            await send(pilot, app, "Echo something.")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
            await pilot.press("o")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "Done.", 30)
            stored = [m for m in chat.messages if m.role == "tool"][0]
            assert stored.content == "\x1b[2J\x1b]0;pwned\x07boom"  # kept exactly, for the model
            view = next(v for v in message_views(chat) if v.role == "tool")
            shown = view.query_one(".message-body").source
            assert "\x1b" not in shown and "\x07" not in shown and "␛[2J" in shown and "boom" in shown

    run(scenario())


def test_an_image_a_tool_returns_is_stored_and_shown_in_its_result(tmp_path):
    from tui.store.parts import ImagePart
    from tui.ui.widgets.attachments import AttachmentsShown

    draw = '<tool_call>{"name": "draw", "arguments": {"colour": "red"}}</tool_call>'

    async def scenario():
        app, engine = tools_app(tmp_path, [draw, "A red picture."])
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and chat.tool_calls.loop.tools.schemas, 30)
            await send(pilot, app, "Draw me something red")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolApprovalScreen), 30)
            await pilot.press("o")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "A red picture.", 30)
            tool = next(m for m in chat.messages if m.role == "tool")
            [image] = [p for p in tool.parts if isinstance(p, ImagePart)]
            assert (image.name, image.mime, tool.content) == ("draw-1.png", "image/png", "Here it is.")
            view = message_views(chat)[[m.id for m in chat.messages].index(tool.id)]
            assert len(view.query_one(AttachmentsShown).query(".thumbnail")) == 1
            follow_up = engine.calls[-1][0]
            assert any(isinstance(m["content"], list) and m["content"][0]["type"] == "image" for m in follow_up)

    run(scenario())
