"""The library's rows: conversations, messages and their parts read from and written to the
SQLite file, one statement each, for `Library` (conversations.py) to put in its transactions."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tui.store.meta import MessageMeta
from tui.store.model import Conversation, ConversationSummary, Message, NotFoundError
from tui.store.parts import Part, PartRow, TextPart, part_from_row, part_row


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def meta_json(meta: MessageMeta) -> str | None:
    return to_json(meta.to_dict() or None)


def message_from(row: sqlite3.Row, parts: tuple[Part, ...]) -> Message:
    meta = MessageMeta.from_dict(json.loads(row["meta"])) if row["meta"] is not None else MessageMeta()
    return Message(row["id"], row["role"], parts, row["created"], row["parent_id"], row["status"], meta)


def summary_from(row: sqlite3.Row, snippet: str | None = None) -> ConversationSummary:
    return ConversationSummary(
        row["id"],
        row["title"],
        row["model"],
        row["created"],
        row["updated"],
        row["message_count"],
        snippet,
        row["origin_id"],
    )


def fts_query(text: str) -> str | None:
    """An FTS5 query for user text: every word quoted (AND), the last one a prefix; None if blank.
    NUL would end the query string early, and is never part of a word: it separates."""
    terms = ['"' + term.replace('"', '""') + '"' for term in text.replace("\0", " ").split()]
    return " ".join(terms) + "*" if terms else None


MESSAGE_COLUMNS = "id, role, created, parent_id, status, meta"
SUMMARY_COLUMNS = """c.id, c.title, c.model, c.created, c.updated, c.origin_id,
    (WITH RECURSIVE branch(id, parent_id) AS (
         SELECT id, parent_id FROM messages WHERE id = c.leaf_id
         UNION ALL SELECT m.id, m.parent_id FROM messages m JOIN branch ON m.id = branch.parent_id)
     SELECT COUNT(*) FROM branch) AS message_count"""
SUBTREE = """WITH RECURSIVE subtree(id) AS (
    SELECT ? UNION ALL SELECT m.id FROM messages m JOIN subtree ON m.parent_id = subtree.id)"""


def conversation_row(db: sqlite3.Connection, conv_id: str) -> sqlite3.Row:
    row = db.execute("SELECT * FROM conversations WHERE id = ?", (conv_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no conversation with id {conv_id!r}")
    return row


def message_row(db: sqlite3.Connection, message_id: str) -> sqlite3.Row:
    row = db.execute(f"SELECT {MESSAGE_COLUMNS}, conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no message with id {message_id!r}")
    return row


def messages_where(db: sqlite3.Connection, condition: str, args: tuple[Any, ...]) -> list[Message]:
    """The messages matching `condition` (on the messages table) with their parts, in
    insertion order."""
    parts: dict[str, list[Part]] = {}
    for row in db.execute(
        f"SELECT p.message_id, p.kind, p.text, p.blob, p.name, p.mime, b.data FROM message_parts p "
        f"JOIN messages ON messages.id = p.message_id LEFT JOIN blobs b ON b.digest = p.blob "
        f"WHERE {condition} ORDER BY p.position",
        args,
    ):
        stored = PartRow(row["kind"], row["text"], row["blob"], row["name"], row["mime"])
        parts.setdefault(row["message_id"], []).append(part_from_row(stored, row["data"]))
    rows = db.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {condition} ORDER BY seq", args)
    return [message_from(row, tuple(parts.get(row["id"], ()))) for row in rows]


def all_messages(db: sqlite3.Connection, conv_id: str) -> list[Message]:
    return messages_where(db, "conversation_id = ?", (conv_id,))


def insert_conversation(db: sqlite3.Connection, conv: Conversation, leaf_id: str | None) -> None:
    db.execute(
        "INSERT INTO conversations (id, title, created, updated, model, load_settings, "
        "generation_settings, system_prompt, leaf_id, origin_id, origin_message_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            conv.id,
            conv.title,
            conv.created,
            conv.updated,
            conv.model,
            to_json(conv.load_settings),
            to_json(conv.generation_settings),
            conv.system_prompt,
            leaf_id,
            conv.origin_id,
            conv.origin_message_id,
        ),
    )


def insert_message(db: sqlite3.Connection, conv_id: str, message: Message) -> None:
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, created, status, meta) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            conv_id,
            message.parent_id,
            message.role,
            message.created,
            message.status,
            meta_json(message.meta),
        ),
    )
    insert_parts(db, message)


def insert_parts(db: sqlite3.Connection, message: Message) -> None:
    """The message's parts, each attachment's bytes stored first unless the library has them."""
    db.executemany(
        "INSERT OR IGNORE INTO blobs (digest, size, data) VALUES (?, ?, ?)",
        [(part.digest, len(part.blob), part.blob) for part in message.parts if not isinstance(part, TextPart)],
    )
    db.executemany(
        "INSERT INTO message_parts (message_id, position, kind, text, blob, name, mime) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(message.id, position, *part_row(part)) for position, part in enumerate(message.parts)],
    )


def free_unused_blobs(db: sqlite3.Connection) -> int:
    """Delete the stored attachments no message part names any more; how many were freed (their
    pages go back to the file system after the transaction: `give_back_free_pages`)."""
    return db.execute(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM message_parts p WHERE p.blob = blobs.digest)"
    ).rowcount


def give_back_free_pages(db: sqlite3.Connection) -> None:
    """Incremental auto-vacuum, outside a transaction: the file shrinks by the pages deleted rows
    freed (a chat's photos). executescript steps the pragma to the end (execute frees one page)."""
    db.executescript("PRAGMA incremental_vacuum;")
