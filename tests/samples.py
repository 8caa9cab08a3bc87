"""Conversations and files for the store and library tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tui.store import Conversation, Message
from tui.store.meta import MessageMeta
from tui.store.parts import text_parts


def sample(
    title: str = "Sample", contents: tuple[str, ...] = ("Hi", "Hello!"), system_prompt: str | None = "Be nice."
) -> Conversation:
    messages: list[Message] = []
    for n, content in enumerate(contents):
        messages.append(
            Message(
                f"m{n}",
                "user" if n % 2 == 0 else "assistant",
                text_parts(content),
                1_700_000_000.5 + n,
                messages[-1].id if messages else None,
                "stopped" if n == 3 else "ok",
                MessageMeta.from_dict({"tokens": n, "tps": 12.5} if n % 2 else None),
            )
        )
    return Conversation(
        "c" * 32,
        title,
        1_700_000_000.25,
        1_700_000_100.75,
        "org/model",
        {"dtype": "bfloat16"},
        {"temperature": 0.7, "do_sample": True, "seed": None},
        system_prompt,
        messages,
    )


def shape(conv: Conversation) -> tuple[Any, ...]:
    """Everything an export keeps (ids are new on import)."""
    return (
        conv.title,
        conv.created,
        conv.updated,
        conv.model,
        conv.load_settings,
        conv.generation_settings,
        conv.system_prompt,
        [(m.role, m.content, m.created, m.status, m.meta) for m in conv.messages],
    )


def write(tmp_path: Path, data: Any, name: str = "chat.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path
