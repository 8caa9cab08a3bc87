"""Conversations and their message trees in memory: the dataclasses the library stores and the
functions that walk a tree (active branch, versions, subtrees), with no database in sight.

Messages form a tree through `parent_id`: regenerating a reply or editing a prompt adds a sibling
version, and each conversation stores the leaf of its active branch. Ids are uuid4 hex strings
that a caller may choose itself, so writes can be prepared before the database is reachable (see
`tui.store.autosave`). "Newest" among messages means last inserted. A message's content is its
typed parts (`tui.store.parts`), what is recorded with it a MessageMeta (`tui.store.meta`).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tui.store.meta import MessageMeta
from tui.store.parts import FilePart, ImagePart, Part, TextPart, document_text, text_of

DEFAULT_TITLE = "New chat"
TITLE_MAX = 60
ROLES = ("system", "user", "assistant", "tool")  # tool: a tool's result (its call is in the reply's meta)
# length: cut off at max_new_tokens; interrupted: saved while it streamed, and never ended (the
# process was killed, the machine lost power): what was written up to ~2 s before is there.
STATUSES = ("ok", "stopped", "length", "failed", "interrupted")


class StoreError(Exception):
    """The library could not be opened, read or written; the message is one line for a user."""


class NotFoundError(KeyError):
    """No conversation or message matches; `str()` is the plain message (no KeyError quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class Default(enum.Enum):
    """Markers for "use the current leaf" and "leave as it is" where None is a real value."""

    CURRENT_LEAF = "current leaf"
    UNCHANGED = "unchanged"


CURRENT_LEAF = Default.CURRENT_LEAF
UNCHANGED = Default.UNCHANGED


@dataclass
class Message:
    """One message; `parent_id` is None for the first message of a branch."""

    id: str
    role: str  # one of ROLES
    parts: tuple[Part, ...]
    created: float  # unix time
    parent_id: str | None
    status: str = "ok"  # one of STATUSES
    meta: MessageMeta = field(default_factory=MessageMeta)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r} (expected one of {', '.join(ROLES)})")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r} (expected one of {', '.join(STATUSES)})")

    @property
    def content(self) -> str:
        """The message's text (its text parts)."""
        return text_of(self.parts)


@dataclass
class Conversation:
    """A conversation with its active branch in `messages`, root first."""

    id: str
    title: str
    created: float
    updated: float  # the last time a message was added, changed or deleted
    model: str | None
    load_settings: dict[str, Any]
    generation_settings: dict[str, Any]
    system_prompt: str | None
    messages: list[Message] = field(default_factory=list)
    # the rest of the message tree: other versions (regenerated, edited, branched) and what
    # follows them, in the order they were written; exports and imports keep them
    other_versions: list[Message] = field(default_factory=list)
    # a branch's origin: the conversation it was copied from, and the message it was copied down to
    origin_id: str | None = None
    origin_message_id: str | None = None


@dataclass
class ConversationSummary:
    """A row of the history list; `snippet` (search only) marks matches with [ and ]."""

    id: str
    title: str
    model: str | None
    created: float
    updated: float
    message_count: int  # messages on the active branch
    snippet: str | None = None
    origin_id: str | None = None  # a branch: the conversation it came from


def new_id() -> str:
    return uuid.uuid4().hex


def title_from(content: str) -> str | None:
    """A title from message text: its first non-blank line, whitespace collapsed, ≤ 60 chars."""
    for line in content.splitlines():
        text = " ".join(line.split())
        if text:
            return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1].rstrip() + "…"
    return None


def auto_title(title: str, role: str, content: str, had_user_message: bool) -> str:
    """The title after adding a message: a default title takes the first user message's text."""
    if role != "user" or had_user_message or title != DEFAULT_TITLE:
        return title
    return title_from(content) or title


def clean_title(title: str) -> str:
    return title.strip() or DEFAULT_TITLE


def active_branch(messages: Sequence[Message], leaf_id: str | None) -> list[Message]:
    """The messages from the root down to `leaf_id`, root first."""
    by_id = {m.id: m for m in messages}
    path: list[Message] = []
    current = by_id.get(leaf_id) if leaf_id is not None else None
    while current is not None and len(path) <= len(by_id):  # the bound guards a hand-made cycle
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    path.reverse()
    return path


def off_branch(messages: Sequence[Message], branch: Sequence[Message]) -> list[Message]:
    """The messages not on `branch`, in their order."""
    on_branch = {m.id for m in branch}
    return [m for m in messages if m.id not in on_branch]


def tree_order(messages: Sequence[Message]) -> list[Message]:
    """`messages` (of one tree) oldest first, each after its parent; those whose parent is not
    among them are left out."""
    placed: set[str | None] = {None}
    ordered: list[Message] = []
    waiting = sorted(messages, key=lambda m: m.created)
    while waiting:
        deferred = []
        for message in waiting:
            if message.parent_id in placed:
                ordered.append(message)
                placed.add(message.id)
            else:
                deferred.append(message)
        if len(deferred) == len(waiting):
            break
        waiting = deferred
    return ordered


def newest_leaf(messages: Sequence[Message], message_id: str) -> str:
    """The leaf reached from `message_id` by following the newest child at each step.

    `messages` must be in insertion order (as `Library.messages` returns them)."""
    newest_child: dict[str, str] = {}
    for message in messages:
        if message.parent_id is not None:
            newest_child[message.parent_id] = message.id
    leaf, steps = message_id, 0
    while leaf in newest_child and steps <= len(messages):
        leaf, steps = newest_child[leaf], steps + 1
    return leaf


def versions_of(messages: Sequence[Message], message_id: str) -> list[Message]:
    """The versions of a message: it and its siblings, oldest first."""
    target = next((m for m in messages if m.id == message_id), None)
    if target is None:
        raise NotFoundError(f"no message with id {message_id!r}")
    return [m for m in messages if m.parent_id == target.parent_id]


def subtree_ids(messages: Sequence[Message], message_id: str) -> set[str]:
    """`message_id` and the ids of all its descendants."""
    children: dict[str | None, list[str]] = {}
    for message in messages:
        children.setdefault(message.parent_id, []).append(message.id)
    found, stack = set(), [message_id]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children.get(current, ()))
    return found


def model_content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """A message's parts as the model reads them: documents as their name and text, before the
    message's text; with images, a list of content parts in order (`{"type": "text", "text"}`,
    `{"type": "image", "data", "mime", "name", "digest"}`: the chat template's image parts, with
    the image's bytes and their SHA-256, as the library stores them), else one string."""
    if not any(isinstance(part, ImagePart) for part in parts):
        return "\n\n".join(text for text in map(_part_text, parts) if text)
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            content.append(
                {"type": "image", "data": part.data, "mime": part.mime, "name": part.name, "digest": part.digest}
            )
        elif text := _part_text(part):
            content.append({"type": "text", "text": text})
    return content


def _part_text(part: Part) -> str:
    if isinstance(part, FilePart):
        return document_text(part)
    return part.text if isinstance(part, TextPart) else ""


def model_message(message: Message) -> dict[str, Any]:
    """A stored message as the chat template takes it (its content: `model_content`): a reply's
    tool calls and a tool result's call id go with them."""
    turn: dict[str, Any] = {"role": message.role, "content": model_content(message.parts)}
    meta = message.meta
    if message.role == "assistant" and meta.tool_calls:
        turn["tool_calls"] = meta.tool_calls
    if message.role == "tool":
        result = meta.tool_result
        turn.update(tool_call_id=result.tool_call_id if result else "", name=result.name if result else "")
    return turn


def model_history(system_prompt: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """What the model sees of a conversation: the system prompt, then every message but failed
    replies (the history given to a model and the one `transformers chat` saves)."""
    turns: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return turns + [model_message(m) for m in messages if m.status != "failed"]
