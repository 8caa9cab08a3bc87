"""Tool calls in a model's reply, and tools as the chat template takes them.

transformers renders tools into the prompt from JSON schemas (`apply_chat_template(tools=...)`);
`function_schemas` turns the MCP servers' tools into those. A model answers with calls written in
its own format; `parse_tool_calls` reads the common ones (used where the tokenizer has no response
schema for `parse_response`):

- Qwen / Hermes / SmolLM3: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one or more;
- Mistral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`, or `[TOOL_CALLS]name[ARGS]{...}`;
- Llama 3.x: the whole reply is `{"name": ..., "parameters": {...}}` (after `<|python_tag|>` or not).

What is left of the text around the calls is the reply's content.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tui.tools.client import ServerStatus

_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_MISTRAL_ARGS = re.compile(r"\[TOOL_CALLS\]\s*([A-Za-z0-9_.\-]+)\s*\[ARGS\]\s*", re.S)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")

    def as_message_part(self) -> dict[str, Any]:
        """As an assistant message's `tool_calls` entry (what chat templates and OpenAI expect)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }


MAX_TOOL_ROUNDS = 5  # rounds of tool calls answered for one message before the model is stopped


@dataclass(frozen=True)
class ToolSet:
    """The tools of the ready servers: their schemas for the model, and the server of each."""

    schemas: list[dict[str, Any]] = field(default_factory=list)
    server_of: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, statuses: list[ServerStatus]) -> ToolSet:
        return cls(
            function_schemas(statuses),
            {tool.name: status.server for status in statuses if status.state == "ready" for tool in status.tools},
        )


def function_schemas(statuses: list[ServerStatus]) -> list[dict[str, Any]]:
    """The tools of the ready servers as `apply_chat_template(tools=...)` takes them."""
    schemas = []
    for status in statuses:
        if status.state != "ready":
            continue
        for tool in status.tools:
            parameters = tool.input_schema or {"type": "object", "properties": {}}
            schemas.append(
                {
                    "type": "function",
                    "function": {"name": tool.name, "description": tool.description, "parameters": parameters},
                }
            )
    return schemas


def _call_from(data: Any) -> ToolCall | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(data["name"], arguments)


def calls_from_parsed(parsed: dict[str, Any] | None) -> tuple[str, list[ToolCall]] | None:
    """Content and calls from transformers' `parse_response` output; None when it found no call."""
    if not parsed or not parsed.get("tool_calls"):
        return None
    calls = []
    for entry in parsed["tool_calls"]:
        function = entry.get("function", entry) if isinstance(entry, dict) else None
        call = _call_from(function)
        if call is not None:
            calls.append(call)
    content = parsed.get("content")
    return (content if isinstance(content, str) else "").strip(), calls


def _json_prefix(text: str) -> tuple[Any, str]:
    """The JSON value at the start of `text` and what follows it; (None, text) if there is none."""
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None, text
    return value, text[end:]


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """The reply's content without its tool calls, and the calls (none: the text as it is)."""
    if "<tool_call>" in text:
        calls = [call for body in _HERMES.findall(text) if (call := _call_from(_json_prefix(body)[0]))]
        if calls:
            return _HERMES.sub("", text).strip(), calls
    if "[TOOL_CALLS]" in text:
        head, _, rest = text.partition("[TOOL_CALLS]")
        named = _MISTRAL_ARGS.match("[TOOL_CALLS]" + rest)
        if named:  # [TOOL_CALLS]name[ARGS]{...}
            arguments, _ = _json_prefix(rest[named.end() - len("[TOOL_CALLS]") :])
            call = _call_from({"name": named.group(1), "arguments": arguments})
            if call:
                return head.strip(), [call]
        value, _ = _json_prefix(rest.strip())
        items = value if isinstance(value, list) else [value]
        calls = [call for item in items if (call := _call_from(item))]
        if calls:
            return head.strip(), calls
    stripped = text.strip().removeprefix("<|python_tag|>").strip()
    if stripped.startswith("{"):
        value, rest = _json_prefix(stripped)
        call = _call_from(value) if not rest.strip() else None
        if call and ("parameters" in value or "arguments" in value):
            return "", [call]
    return text, []
