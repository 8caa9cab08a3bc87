"""A real MCP stdio server (the SDK's MCPServer, tests/tools/mcp_test_server.py): its tools are
listed, a call runs, the server sees only the environment its entry lists, a hang times out and
a crash is one line that says why."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from tui.tools.client import call_tool, list_all, probe
from tui.tools.servers import ServerConfig

SCRIPT = str(Path(__file__).with_name("mcp_test_server.py"))


def server(*args: str, env: dict[str, str] | None = None) -> ServerConfig:
    return ServerConfig("test", command=sys.executable, args=(SCRIPT, *args), env=env or {})


def test_tools_are_listed_and_a_call_returns_its_result():
    status = asyncio.run(probe(server()))
    assert status.state == "ready", status.detail
    assert {t.name: t.description for t in status.tools}["add"] == "Add two whole numbers."
    assert status.tools[0].input_schema.get("properties")
    result = asyncio.run(call_tool(server(), "add", {"a": 2, "b": 40}))
    assert (result.text, result.is_error) == ("42", False)


def test_a_stdio_server_gets_only_the_variables_its_entry_lists(monkeypatch):
    monkeypatch.setenv("CHATUI_API_KEY", "sk-must-not-leak")
    monkeypatch.setenv("CHATUI_TEST_LISTED", "parent-value")
    configured = server(env={"LISTED": "given"})
    assert asyncio.run(call_tool(configured, "env_value", {"name": "LISTED"})).text == "given"
    assert asyncio.run(call_tool(configured, "env_value", {"name": "CHATUI_API_KEY"})).text == "<unset>"
    assert asyncio.run(call_tool(configured, "env_value", {"name": "CHATUI_TEST_LISTED"})).text == "<unset>"


def test_a_hanging_tool_times_out_and_a_crash_says_why():
    slow = asyncio.run(call_tool(server(), "sleep", {"seconds": 30}, timeout=2))
    assert slow.is_error and "did not finish in 2 s" in slow.text
    crashed = asyncio.run(probe(server("--crash")))
    assert crashed.state == "failed" and "crashing on purpose" in crashed.detail
    missing = asyncio.run(probe(ServerConfig("gone", command="/no/such/mcp-server")))
    assert missing.state == "failed" and missing.detail
    statuses = list_all([server(), server("--crash")])
    assert [s.state for s in statuses] == ["ready", "failed"]


def test_an_image_result_comes_back_as_image_bytes_beside_the_text():
    from PIL import Image

    result = asyncio.run(call_tool(server(), "draw", {"colour": "red"}))
    assert (result.text, result.is_error) == ("Here it is.", False)
    [(mime, data)] = result.images
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.size == (24, 16) and picture.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
