"""The OpenAI chat-completions stream, read: SSE lines to JSON events, reasoning deltas shown as
<think> text, streamed tool calls joined and written in the common <tool_call> form, and
`logprobs` as chatui's TokenChoices. What RemoteBackend (remote.py) reads a reply with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tui.engine.events import Alternative, TokenChoice

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"  # reasoning deltas are shown as the app shows <think>


class RemoteError(Exception):
    """A request that failed; str() is one line for the user."""


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON events of an SSE stream (`data: {...}` lines, ending at `data: [DONE]`); a data line
    that is not JSON raises ValueError."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": keep-alive"), event names, blank separators
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        if payload:
            event = json.loads(payload)
            if not isinstance(event, dict):
                raise ValueError(f"expected a JSON object, got {payload[:60]!r}")
            if "error" in event and not event.get("choices"):
                error = event["error"]
                raise RemoteError(
                    f"the server failed mid-reply: {error.get('message', error) if isinstance(error, dict) else error}"
                )
            yield event


class Reasoning:
    """Whether a <think> block that chatui opened for the server's reasoning fields is open.
    Tags the model writes in its content are its own text: left as they are."""

    def __init__(self) -> None:
        self.open = False

    def text(self, delta: dict[str, Any]) -> str:
        """The text a delta adds, reasoning (`reasoning_content`, `reasoning`) shown as <think>."""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        content = delta.get("content") or ""
        text = ""
        if reasoning:
            text += ("" if self.open else THINK_OPEN) + reasoning
            self.open = True
        if content:
            text += self.close() + content
        return text

    def close(self) -> str:
        if not self.open:
            return ""
        self.open = False
        return THINK_CLOSE


def join_tool_call(calls: dict[int, dict[str, Any]], piece: Any) -> None:
    """Add one `tool_calls` delta: the name comes first, the arguments in pieces of a JSON string."""
    if not isinstance(piece, dict):
        return
    call = calls.setdefault(int(piece.get("index") or 0), {"name": "", "arguments": ""})
    function = piece.get("function") or {}
    call["name"] += function.get("name") or ""
    call["arguments"] += function.get("arguments") or ""


def tool_call_text(call: dict[str, Any]) -> str:
    try:
        arguments = json.loads(call["arguments"] or "{}")
    except ValueError:
        arguments = {}
    return (
        "<tool_call>" + json.dumps({"name": call["name"], "arguments": arguments}, ensure_ascii=False) + "</tool_call>"
    )


def token_choices(logprobs: Any) -> tuple[TokenChoice, ...]:
    """OpenAI's `logprobs.content` entries as TokenChoices (no ids: -1; one distribution)."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    choices = []
    for entry in content or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)):
            continue
        top = tuple(
            Alternative(-1, str(alt.get("token", "")), float(alt["logprob"]))
            for alt in entry.get("top_logprobs") or []
            if isinstance(alt, dict) and isinstance(alt.get("logprob"), (int, float))
        )
        logprob = float(entry["logprob"])
        choices.append(TokenChoice(-1, str(entry.get("token", "")), logprob, logprob, top, top))
    return tuple(choices)
