"""`/tools` in the app: each configured MCP server (a real stdio server here), its state and its
tools with their descriptions; no configuration says how to add one."""

from __future__ import annotations

import sys
from pathlib import Path

from pilot import make_app, notes, run, wait_for

from tui.store.config import load_config
from tui.ui.screens.tools import ToolsScreen

SCRIPT = (Path(__file__).parents[2] / "tools" / "mcp_test_server.py").as_posix()


def test_tools_lists_each_server_its_state_and_tools(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        f'[mcp.servers.calc]\ncommand = "{sys.executable}"\nargs = ["{SCRIPT}"]\n'
        f'[mcp.servers.broken]\ncommand = "{sys.executable}"\nargs = ["{SCRIPT}", "--crash"]\n'
        '[mcp.servers.nokey]\ncommand = "run"\nenv = { K = "${CHATUI_TEST_UNSET_VARIABLE}" }\n'
    )

    async def scenario():
        config = load_config(path)
        app = make_app(tmp_path, config=config)
        app.options.apply_config(config)  # as the command line does: the options carry the servers
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready")
            app.chat_screen.action_tools()
            await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen), 30)
            await pilot.pause()
            text = app.screen.query_one("#tools-list").source
            assert "### calc" in text and "`add` Add two whole numbers." in text
            assert "### broken" in text and "**failed**" in text and "crashing on purpose" in text
            assert "${CHATUI_TEST_UNSET_VARIABLE} is not set" in text  # a problem, shown
            await pilot.press("escape")
            assert not isinstance(app.screen, ToolsScreen)

    run(scenario())


def test_tools_without_servers_says_how_to_add_one(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            # the sidebar mounts lazily: leaving before it is done races Textual's Select mount
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.settings_panel.ready)
            app.chat_screen.action_tools()
            await wait_for(pilot, lambda: any("No MCP servers are configured" in n for n in notes(app)))
            assert not isinstance(app.screen, ToolsScreen)

    run(scenario())
