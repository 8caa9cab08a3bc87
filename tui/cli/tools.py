"""`chatui --list-tools`: each configured MCP server, its state and its tools."""

from __future__ import annotations

import sys
from typing import TextIO

from tui.store.config import Config
from tui.text import inert
from tui.tools.client import ServerStatus, list_all
from tui.tools.servers import configured_servers


def describe(statuses: list[ServerStatus]) -> str:
    lines = []
    for status in statuses:
        server = status.server
        head = f"{server.name}: {status.state}"
        if status.detail:
            head += f" ({status.detail})"
        lines.append(f"{head}  [{server.describe()}]")
        width = max((len(tool.name) for tool in status.tools), default=0)
        for tool in status.tools:
            summary = tool.description.splitlines()[0] if tool.description else ""
            lines.append(f"  {tool.name:<{width}}  {summary}".rstrip())
    return inert("\n".join(lines))  # names and descriptions come from the servers


def run_list_tools(config: Config, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """0 when every server answered, 1 when one failed (or none is configured)."""
    servers, errors = configured_servers(config.mcp, config.path)
    for error in errors:
        print(f"chatui: warning: {error}", file=stderr)
    if not servers:
        print(
            f"chatui: no MCP servers are configured: add [mcp.servers.NAME] to {config.path} "
            "(see the README's Tools section)",
            file=stderr,
        )
        return 1
    statuses = list_all(servers)
    print(describe(statuses), file=stdout)
    return 0 if all(status.state == "ready" for status in statuses) else 1
