"""A real MCP stdio server for the tests, written with the SDK's MCPServer (FastMCP in mcp 1.x)."""

import os
import sys
import time

from mcp.server.mcpserver import Image, MCPServer

server = MCPServer("chatui-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def env_value(name: str) -> str:
    """The value of an environment variable in this server's process, or <unset>."""
    return os.environ.get(name, "<unset>")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back, as it is (control characters too)."""
    return text


@server.tool()
def sleep(seconds: float) -> str:
    """Wait, then say so (for timeouts)."""
    time.sleep(seconds)
    return "slept"


@server.tool()
def draw(colour: str) -> list:
    """Draw a small picture in a colour (an image result, as image-generation servers send)."""
    import io

    from PIL import Image as Picture

    out = io.BytesIO()
    Picture.new("RGB", (24, 16), colour).save(out, format="PNG")
    return ["Here it is.", Image(data=out.getvalue(), format="png")]


if __name__ == "__main__":
    if "--crash" in sys.argv:
        print("crashing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    server.run()  # stdio
