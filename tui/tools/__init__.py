"""MCP tools: the servers the user configured, and talking to them (no Textual)."""
