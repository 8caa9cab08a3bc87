"""MCP servers as the user configured them, in any of the three forms people already have:

- config.toml: `[mcp.servers.NAME]` with `command`, `args`, `env` (a stdio server), or `url`,
  `headers` and optionally `transport = "sse"` (streamable HTTP otherwise);
- the `mcpServers` JSON that Claude Desktop and oterm use (`{"mcpServers": {NAME: {...}}}`);
- the tiny-agents `servers` list from the Hugging Face docs (`{"servers": [{"type": "stdio",
  "command": ..., "args": [...]}, {"type": "http", "url": ...}]}`, or with a nested `config`).

JSON files are named in config.toml: `[mcp] import = ["~/.config/Claude/claude_desktop_config.json"]`.
`${VAR}` in a command, argument, env value, URL or header is replaced from the environment (a
missing variable is an error for that server, never an empty string). A stdio server gets only
the variables its entry lists, over the SDK's minimal safe set (PATH, HOME, USER, SHELL, TERM,
LOGNAME): never the rest of chatui's environment, where API keys live.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None  # stdio
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None  # streamable HTTP or SSE
    headers: Mapping[str, str] = field(default_factory=dict)
    transport: str = "stdio"  # "stdio", "http" or "sse"
    origin: str = ""  # where it was configured, for messages
    written: str = ""  # the command line or URL as configured, ${VAR}s unexpanded (safe to show)

    def describe(self) -> str:
        return self.written or (self.url or self.command or "")


class ServerConfigError(ValueError):
    """A server entry that cannot be used; str() names the server and says why."""


def expand(value: str, environ: Mapping[str, str], where: str) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ServerConfigError(f"{where}: ${{{name}}} is not set in the environment")
        return environ[name]

    return _VAR.sub(variable, value)


def _strings(value: Any, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ServerConfigError(f"{where}: {what} must be a list of strings")
    return value


def _table(value: Any, what: str, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ServerConfigError(f"{where}: {what} must be a table of strings")
    return value


def server_from_entry(name: str, entry: Any, origin: str, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """One server from a config entry (any of the three forms), its `${VAR}`s expanded."""
    environ = os.environ if environ is None else environ
    where = f"MCP server {name!r} ({origin})"
    if not isinstance(entry, dict):
        raise ServerConfigError(f"{where}: expected a table with a command or a url")
    if isinstance(entry.get("config"), dict):  # tiny-agents' older form: {"type": ..., "config": {...}}
        entry = {**entry["config"], "type": entry.get("type")}
    kind = str(entry.get("type") or entry.get("transport") or "").lower()
    if entry.get("command"):
        if not isinstance(entry["command"], str):
            raise ServerConfigError(f"{where}: command must be a string")
        return ServerConfig(
            name=name,
            transport="stdio",
            origin=origin,
            written=" ".join([entry["command"], *_strings(entry.get("args"), "args", where)]),
            command=expand(entry["command"], environ, where),
            args=tuple(expand(a, environ, where) for a in _strings(entry.get("args"), "args", where)),
            env={k: expand(v, environ, where) for k, v in _table(entry.get("env"), "env", where).items()},
        )
    if entry.get("url"):
        if not isinstance(entry["url"], str):
            raise ServerConfigError(f"{where}: url must be a string")
        transport = "sse" if kind == "sse" else "http"
        return ServerConfig(
            name=name,
            transport=transport,
            origin=origin,
            written=f"{entry['url']} ({transport})",
            url=expand(entry["url"], environ, where),
            headers={k: expand(v, environ, where) for k, v in _table(entry.get("headers"), "headers", where).items()},
        )
    raise ServerConfigError(f"{where}: give a command (a stdio server) or a url (an HTTP server)")


def servers_from_json(
    data: Any, origin: str, environ: Mapping[str, str] | None = None
) -> tuple[list[ServerConfig], list[str]]:
    """The servers of a Claude Desktop / oterm `mcpServers` file or a tiny-agents `servers` list."""
    servers, errors = [], []
    entries: list[tuple[str, Any]] = []
    if isinstance(data, dict) and isinstance(data.get("mcpServers"), dict):
        entries = list(data["mcpServers"].items())
    elif isinstance(data, dict) and isinstance(data.get("servers"), list):
        for index, entry in enumerate(data["servers"]):
            config = entry.get("config") if isinstance(entry, dict) and isinstance(entry.get("config"), dict) else entry
            name = (entry.get("name") if isinstance(entry, dict) else None) or _guess_name(config, index)
            entries.append((str(name), entry))
    else:
        return [], [f"{origin}: no mcpServers table or servers list in it"]
    for name, entry in entries:
        try:
            servers.append(server_from_entry(name, entry, origin, environ))
        except ServerConfigError as exc:
            errors.append(str(exc))
    return servers, errors


def _guess_name(entry: Any, index: int) -> str:
    """A tiny-agents entry has no name: the package or script it runs, or the URL's host."""
    if isinstance(entry, dict):
        for arg in reversed(_safe_list(entry.get("args"))):
            if not arg.startswith("-"):
                package = arg.rsplit("@", 1)[0] if arg.rfind("@") > 0 else arg  # "@scope/name@latest"
                return Path(package.rstrip("/")).name or f"server{index + 1}"
        if isinstance(entry.get("url"), str):
            return re.sub(r"^\w+://", "", entry["url"]).split("/")[0]
    return f"server{index + 1}"


def _safe_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def configured_servers(
    mcp_table: Any, config_path: Path, environ: Mapping[str, str] | None = None
) -> tuple[list[ServerConfig], list[str]]:
    """Every server of config.toml's `[mcp]` table: `[mcp.servers.NAME]` entries and the JSON
    files in `import`. Returns the servers and one line per problem (the rest still load)."""
    servers: list[ServerConfig] = []
    errors: list[str] = []
    if not mcp_table:
        return servers, errors
    if not isinstance(mcp_table, dict):
        return servers, [f"{config_path}: [mcp] must be a table"]
    origin = str(config_path)
    table = mcp_table.get("servers") or {}
    if not isinstance(table, dict):  # [[mcp.servers]]: the tiny-agents list form belongs in a JSON import
        errors.append(f"{config_path}: write each server as [mcp.servers.NAME] (or import a JSON file)")
        table = {}
    for name, entry in table.items():
        try:
            servers.append(server_from_entry(name, entry, origin, environ))
        except ServerConfigError as exc:
            errors.append(str(exc))
    imports = mcp_table.get("import") or []
    for item in [imports] if isinstance(imports, str) else imports:
        path = Path(os.path.expanduser(str(item)))
        if not path.is_absolute():
            path = config_path.parent / path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            errors.append(f"{path}: cannot read it: {exc.strerror or exc}")
            continue
        except ValueError as exc:
            errors.append(f"{path}: not JSON ({exc})")
            continue
        found, problems = servers_from_json(data, str(path), environ)
        servers += found
        errors += problems
    names: set[str] = set()
    unique = []
    for server in servers:  # the first definition of a name wins, as in config precedence
        if server.name in names:
            errors.append(f"MCP server {server.name!r} ({server.origin}) is defined twice; the first one is used")
            continue
        names.add(server.name)
        unique.append(server)
    return unique, errors
