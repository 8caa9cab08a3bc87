"""Talking to MCP servers with the `mcp` SDK: what a server offers (its state and tools), and one
tool call, each bounded by a timeout. Every failure (a command that does not start, a server
that crashes or hangs, a refused URL) becomes a state with one line that says why, never an
exception out of here. A stdio server's stderr goes to a temporary file, not the terminal; its
last line explains a crash.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import shutil
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from tui.tools.servers import ServerConfig

LIST_TIMEOUT_S = 20.0  # starting a server (npx may install it) and listing its tools
CALL_TIMEOUT_S = 60.0  # one tool call


@dataclass(frozen=True)
class ToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ServerStatus:
    server: ServerConfig
    state: str  # "ready" or "failed"
    detail: str = ""  # why it failed
    tools: list[ToolInfo] = field(default_factory=list)


@dataclass(frozen=True)
class ToolResult:
    text: str  # what goes back to the model
    is_error: bool = False
    images: tuple[tuple[str, bytes], ...] = ()  # MCP image content: (MIME type, bytes) each


def _last_line(log: Any) -> str:
    try:
        log.seek(0)
        lines = [line.strip() for line in log.read().splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    return lines[-1][:200] if lines else ""


def _reason(exc: BaseException) -> str:
    while inner := getattr(exc, "exceptions", None):  # anyio task groups wrap errors in exception groups
        exc = inner[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


async def _connect(stack: AsyncExitStack, server: ServerConfig, log: Any) -> Any:
    from mcp import Client

    if server.transport == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command = shutil.which(server.command or "") or server.command or ""
        params = StdioServerParameters(command=command, args=list(server.args), env=dict(server.env))
        transport = stdio_client(params, errlog=log)
    elif server.transport == "sse":
        from mcp.client.sse import sse_client

        transport = sse_client(server.url or "", headers=dict(server.headers))
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = await stack.enter_async_context(httpx2.AsyncClient(headers=dict(server.headers), verify=True))
        transport = streamable_http_client(server.url or "", http_client=http)
    return await stack.enter_async_context(Client(transport))


async def probe(server: ServerConfig, timeout: float = LIST_TIMEOUT_S) -> ServerStatus:
    """Start (or reach) the server and list its tools."""

    async def listed(log: Any) -> list[ToolInfo]:
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server, log)
            listing = await client.list_tools()
            return [ToolInfo(t.name, (t.description or "").strip(), dict(t.input_schema or {})) for t in listing.tools]

    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        try:
            return ServerStatus(server, "ready", tools=await asyncio.wait_for(listed(log), timeout))
        except TimeoutError:
            return ServerStatus(server, "failed", f"no answer in {timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - any failure is the server's state, shown to the user
            said = _last_line(log)
            return ServerStatus(server, "failed", f"{_reason(exc)}" + (f" (it said: {said})" if said else ""))


async def call_tool(
    server: ServerConfig, name: str, arguments: dict[str, Any], timeout: float = CALL_TIMEOUT_S
) -> ToolResult:
    """Run one tool; a crash, a hang past `timeout` or an error result is a ToolResult with
    is_error set, its text the reason (for the user and the model alike)."""

    async def called(log: Any) -> Any:
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server, log)
            return await client.call_tool(name, arguments)

    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        try:
            result = await asyncio.wait_for(called(log), timeout)
        except TimeoutError:
            return ToolResult(f"the tool {name} did not finish in {timeout:g} s", is_error=True)
        except Exception as exc:  # noqa: BLE001
            said = _last_line(log)
            return ToolResult(f"the tool {name} failed: {_reason(exc)}" + (f" ({said})" if said else ""), is_error=True)
    parts, images = [], []
    for item in getattr(result, "content", None) or []:
        text = getattr(item, "text", None)
        image = _image_of(item)
        if image is not None:
            images.append(image)
        else:
            parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')}]")
    return ToolResult("\n".join(parts), bool(getattr(result, "is_error", False)), tuple(images))


def _image_of(item: Any) -> tuple[str, bytes] | None:
    """An MCP image content item as (MIME type, bytes); None for anything else or bad base64."""
    if getattr(item, "type", None) != "image" or not isinstance(getattr(item, "data", None), str):
        return None
    try:
        return str(getattr(item, "mimeType", None) or "image/png"), base64.b64decode(item.data, validate=True)
    except (binascii.Error, ValueError):
        return None


def list_all(servers: list[ServerConfig], timeout: float = LIST_TIMEOUT_S) -> list[ServerStatus]:
    """Every server's state and tools, probed side by side."""

    async def main() -> list[ServerStatus]:
        return list(await asyncio.gather(*(probe(server, timeout) for server in servers)))

    return asyncio.run(main()) if servers else []
