"""MCP server configuration in the three forms users have: config.toml, Claude Desktop/oterm
`mcpServers` JSON and the tiny-agents `servers` list; `${VAR}` expanded; problems named."""

from __future__ import annotations

import json

from tui.tools.servers import configured_servers, servers_from_json

ENV = {"HOME": "/home/ada", "NOTES_TOKEN": "tok-123"}


def test_config_toml_servers_stdio_and_http_with_variables(tmp_path):
    table = {
        "servers": {
            "files": {
                "command": "npx",
                "args": ["-y", "server-filesystem", "${HOME}/notes"],
                "env": {"TOKEN": "${NOTES_TOKEN}"},
            },
            "search": {"url": "https://tools.example/mcp", "headers": {"Authorization": "Bearer ${NOTES_TOKEN}"}},
            "legacy": {"url": "https://old.example/sse", "transport": "sse"},
        }
    }
    servers, errors = configured_servers(table, tmp_path / "config.toml", ENV)
    assert errors == []
    files, search, legacy = servers
    assert (files.transport, files.command, files.args) == (
        "stdio",
        "npx",
        ("-y", "server-filesystem", "/home/ada/notes"),
    )
    assert dict(files.env) == {"TOKEN": "tok-123"}  # only what the entry lists
    assert (search.transport, dict(search.headers)) == ("http", {"Authorization": "Bearer tok-123"})
    assert legacy.transport == "sse"


def test_claude_desktop_and_tiny_agents_json_are_read(tmp_path):
    claude = tmp_path / "claude_desktop_config.json"
    claude.write_text(json.dumps({"mcpServers": {"fs": {"command": "npx", "args": ["server-filesystem", "/tmp"]}}}))
    agent = tmp_path / "agent.json"
    agent.write_text(
        json.dumps(
            {
                "model": "x",
                "servers": [
                    {"type": "stdio", "command": "npx", "args": ["@playwright/mcp@latest"]},
                    {"type": "stdio", "config": {"command": "uvx", "args": ["mcp-server-time"]}},
                    {"type": "http", "url": "https://hf.co/mcp"},
                ],
            }
        )
    )
    servers, errors = configured_servers({"import": [str(claude), "agent.json"]}, tmp_path / "config.toml", ENV)
    assert errors == []
    assert [(s.name, s.transport) for s in servers] == [
        ("fs", "stdio"),
        ("mcp", "stdio"),
        ("mcp-server-time", "stdio"),
        ("hf.co", "http"),
    ]
    assert servers[1].args == ("@playwright/mcp@latest",)


def test_problems_are_named_and_the_other_servers_still_load(tmp_path):
    table = {
        "servers": {
            "ok": {"command": "true"},
            "nothing": {"args": ["x"]},
            "secret": {"command": "run", "env": {"KEY": "${NOT_SET_ANYWHERE}"}},
            "badargs": {"command": "run", "args": "not-a-list"},
        },
        "import": ["missing.json"],
    }
    servers, errors = configured_servers(table, tmp_path / "config.toml", ENV)
    assert [s.name for s in servers] == ["ok"]
    text = "\n".join(errors)
    assert "'nothing'" in text and "give a command" in text
    assert "${NOT_SET_ANYWHERE} is not set" in text  # never silently empty
    assert "args must be a list of strings" in text and "missing.json: cannot read it" in text
    assert servers_from_json({"other": 1}, "x.json")[1] == ["x.json: no mcpServers table or servers list in it"]


def test_a_name_defined_twice_keeps_the_first(tmp_path):
    extra = tmp_path / "more.json"
    extra.write_text(json.dumps({"mcpServers": {"files": {"command": "other"}}}))
    servers, errors = configured_servers(
        {"servers": {"files": {"command": "first"}}, "import": "more.json"}, tmp_path / "config.toml", ENV
    )
    assert [s.command for s in servers] == ["first"] and "defined twice" in errors[0]


def test_what_is_shown_of_a_server_keeps_its_variables_unexpanded(tmp_path):
    table = {
        "servers": {
            "s": {"command": "run", "args": ["--api-key", "${NOTES_TOKEN}"]},
            "h": {"url": "https://x.example/mcp?key=${NOTES_TOKEN}"},
        }
    }
    servers, _ = configured_servers(table, tmp_path / "config.toml", ENV)
    assert [s.describe() for s in servers] == [
        "run --api-key ${NOTES_TOKEN}",
        "https://x.example/mcp?key=${NOTES_TOKEN} (http)",
    ]
    assert servers[0].args[-1] == "tok-123"  # the server itself gets the value
    _, errors = configured_servers({"servers": [{"command": "x"}]}, tmp_path / "config.toml", ENV)
    assert "write each server as [mcp.servers.NAME]" in errors[0]
