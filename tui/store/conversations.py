"""The conversation library: conversations and their message trees in one SQLite file (the
tree in memory: `tui.store.model`; the file and its schema: `tui.store.schema`).
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.paths import data_dir
from tui.store import rows
from tui.store.meta import MessageMeta
from tui.store.model import (
    CURRENT_LEAF,
    DEFAULT_TITLE,
    UNCHANGED,
    Conversation,
    ConversationSummary,
    Default,
    Message,
    NotFoundError,
    StoreError,
    active_branch,
    auto_title,
    clean_title,
    new_id,
    newest_leaf,
    off_branch,
    tree_order,
)
from tui.store.parts import Part, text_of, text_parts, with_text
from tui.store.schema import (
    CorruptFile,
    connect,
    describe,
    is_corruption,
    make_private_dir,
    move_aside,
)

FILE_NAME = "library.sqlite3"

log = logging.getLogger(__name__)


class Library:
    """The conversation library in one SQLite file (WAL mode), safe to share between threads.

    Every method raises StoreError when the file cannot be read or written, and NotFoundError
    (a KeyError) for an unknown conversation or message id. A damaged file is moved aside to
    `<name>.corrupt-<timestamp>` and a fresh library started; `recovered_from` then names it.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / FILE_NAME
        self.recovered_from: Path | None = None
        self._lock = threading.RLock()
        try:
            make_private_dir(self.path.parent)
            try:
                self._db = connect(self.path)
            except (sqlite3.DatabaseError, CorruptFile) as error:
                if not is_corruption(error):
                    raise
                self.recovered_from = move_aside(self.path)
                self._db = connect(self.path)
        except (sqlite3.Error, OSError, CorruptFile) as error:
            raise StoreError(f"cannot open the conversation library {self.path}: {describe(error)}") from error

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except (sqlite3.Error, OSError) as error:
                raise StoreError(f"cannot read the conversation library: {describe(error)}") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a failure rolls back everything done in it."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise  # a caller's mistake (a reused id), not the disk's
            except (sqlite3.Error, OSError) as error:
                raise StoreError(f"cannot save to the conversation library: {describe(error)}") from error

    # -- conversations -------------------------------------------------------------------------

    def create(
        self,
        model: str | None = None,
        load_settings: dict[str, Any] | None = None,
        generation_settings: dict[str, Any] | None = None,
        system_prompt: str | None = None,
        title: str = DEFAULT_TITLE,
        *,
        conv_id: str | None = None,
        created: float | None = None,
        origin_id: str | None = None,
        origin_message_id: str | None = None,
    ) -> Conversation:
        """Store a new, empty conversation (`conv_id`/`created` default to a new id and now); a
        branch names its origin (the conversation and message it was copied down to)."""
        now = time.time() if created is None else created
        conv = Conversation(
            conv_id or new_id(),
            clean_title(title),
            now,
            now,
            model,
            dict(load_settings or {}),
            dict(generation_settings or {}),
            system_prompt,
            origin_id=origin_id,
            origin_message_id=origin_message_id,
        )
        with self._write() as db:
            rows.insert_conversation(db, conv, None)
        return conv

    def import_conversation(self, conv: Conversation) -> str:
        """Store a copy of `conv` (its active branch, and its other versions) under new ids, the
        active branch active; return the new conversation id."""
        copy = replace(conv, id=new_id(), title=clean_title(conv.title), messages=[], other_versions=[])
        new_ids: dict[str | None, str | None] = {None: None}
        parent: str | None = None
        for message in conv.messages:  # a chain, whatever its parent ids say
            copy.messages.append(replace(message, id=new_id(), parent_id=parent))
            new_ids[message.id] = parent = copy.messages[-1].id
        for message in tree_order([*conv.messages, *conv.other_versions]):
            if message.id not in new_ids and message.parent_id in new_ids:
                copy.other_versions.append(replace(message, id=new_id(), parent_id=new_ids[message.parent_id]))
                new_ids[message.id] = copy.other_versions[-1].id
        with self._write() as db:
            rows.insert_conversation(db, copy, parent)
            for message in tree_order([*copy.messages, *copy.other_versions]):  # versions keep their numbers
                rows.insert_message(db, copy.id, message)
        return copy.id

    def get(self, conv_id: str) -> Conversation:
        """The conversation with its active branch."""
        with self._read() as db:
            row = rows.conversation_row(db, conv_id)
            messages = rows.all_messages(db, conv_id)
        return Conversation(
            row["id"],
            row["title"],
            row["created"],
            row["updated"],
            row["model"],
            json.loads(row["load_settings"]),
            json.loads(row["generation_settings"]),
            row["system_prompt"],
            branch := active_branch(messages, row["leaf_id"]),
            off_branch(messages, branch),
            row["origin_id"],
            row["origin_message_id"],
        )

    def messages(self, conv_id: str) -> builtins.list[Message]:
        """Every stored message of the conversation (all versions), in insertion order."""
        with self._read() as db:
            rows.conversation_row(db, conv_id)
            return rows.all_messages(db, conv_id)

    def resolve_id(self, ref: str) -> str:
        """A conversation id from a full id, a unique prefix (≥ 4 characters) or 'last'."""
        ref = ref.strip().lower()
        with self._read() as db:
            if ref == "last":
                row = db.execute("SELECT id FROM conversations ORDER BY updated DESC, seq DESC LIMIT 1").fetchone()
                if row is None:
                    raise NotFoundError("there are no conversations yet")
                return str(row["id"])
            if len(ref) < 4 or any(ch not in "0123456789abcdef" for ch in ref):
                raise NotFoundError(
                    f"no conversation {ref!r}: give an id, a unique prefix of at least 4 characters, or 'last'"
                )
            found = db.execute(
                "SELECT id FROM conversations WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")
            ).fetchall()  # ids are lowercase hex: all < 'g'
        if not found:
            raise NotFoundError(f"no conversation with an id starting {ref!r}")
        if len(found) > 1:
            raise NotFoundError(f"{ref!r} starts more than one conversation id: give more of it")
        return str(found[0]["id"])

    def list(self, limit: int = 200, offset: int = 0) -> builtins.list[ConversationSummary]:
        """Conversations, the most recently updated first."""
        with self._read() as db:
            found = db.execute(
                f"SELECT {rows.SUMMARY_COLUMNS} FROM conversations c "
                "ORDER BY c.updated DESC, c.seq DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
            return [rows.summary_from(row) for row in found]

    def search(self, query: str, limit: int = 200) -> builtins.list[ConversationSummary]:
        """Conversations whose title or any message matches every word of `query` (the last word
        as a prefix), best match first, each with a snippet of its best matching text."""
        match = rows.fts_query(query)
        if match is None:
            return []
        with self._read() as db:
            found = db.execute(
                f"""
                WITH best AS (
                    SELECT rowid AS hit, conversation_id, MIN(rank) AS score FROM search
                    WHERE search MATCH ?1 GROUP BY conversation_id ORDER BY score LIMIT ?2)
                SELECT {rows.SUMMARY_COLUMNS}, snippet(search, 1, '[', ']', '…', 12) AS snippet
                FROM search JOIN best ON search.rowid = best.hit
                JOIN conversations c ON c.id = best.conversation_id
                WHERE search MATCH ?1 ORDER BY best.score, c.updated DESC""",
                (match, limit),
            )
            return [rows.summary_from(row, row["snippet"]) for row in found]

    def rename(self, conv_id: str, title: str) -> None:
        with self._write() as db:
            if not db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (clean_title(title), conv_id)
            ).rowcount:
                raise NotFoundError(f"no conversation with id {conv_id!r}")

    def delete(self, conv_id: str) -> None:
        with self._write() as db:
            if not db.execute("DELETE FROM conversations WHERE id = ?", (conv_id,)).rowcount:
                raise NotFoundError(f"no conversation with id {conv_id!r}")
            rows.free_unused_blobs(db)
        self._shrink()

    def _shrink(self) -> None:
        """Give the pages a delete freed back to the file system; a failure here loses nothing."""
        with self._lock:
            try:
                rows.give_back_free_pages(self._db)
            except sqlite3.Error as error:
                log.info("could not shrink the library: %s", error)

    def set_settings(
        self,
        conv_id: str,
        *,
        model: str | None | Default = UNCHANGED,
        load_settings: dict[str, Any] | Default = UNCHANGED,
        generation_settings: dict[str, Any] | Default = UNCHANGED,
        system_prompt: str | None | Default = UNCHANGED,
    ) -> None:
        """Change the given settings; those left as UNCHANGED keep their stored value."""
        changes: dict[str, Any] = {}
        if not isinstance(model, Default):
            changes["model"] = model
        if not isinstance(system_prompt, Default):
            changes["system_prompt"] = system_prompt
        if not isinstance(load_settings, Default):
            changes["load_settings"] = rows.to_json(load_settings)
        if not isinstance(generation_settings, Default):
            changes["generation_settings"] = rows.to_json(generation_settings)
        with self._write() as db:
            rows.conversation_row(db, conv_id)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)  # fixed names only
                db.execute(f"UPDATE conversations SET {assignments} WHERE id = ?", (*changes.values(), conv_id))

    def count(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def models_used(self) -> builtins.list[tuple[str, str, float]]:
        """The models conversations were had with: (model as given to the load, its server's
        endpoint or "", when last used), the most recent first. The bundled model is ""."""
        with self._read() as db:
            found = db.execute(
                "SELECT coalesce(json_extract(load_settings, '$.model'), '') AS loaded, "
                "coalesce(json_extract(load_settings, '$.endpoint'), '') AS server, max(updated) AS used "
                "FROM conversations WHERE json_valid(load_settings) GROUP BY loaded, server ORDER BY used DESC"
            )
            return [(str(row["loaded"]), str(row["server"]), float(row["used"])) for row in found]

    # -- messages ------------------------------------------------------------------------------

    def add_message(
        self,
        conv_id: str,
        role: str,
        content: str | tuple[Part, ...],
        parent_id: str | None | Default = CURRENT_LEAF,
        status: str = "ok",
        meta: MessageMeta | None = None,
        *,
        message_id: str | None = None,
        created: float | None = None,
    ) -> Message:
        """Add a message under `parent_id` (the active leaf by default; a parent that already has
        children makes a new version) and make it the active leaf. `content` is its text, or its
        parts (attachments stored once each). A conversation still titled "New chat" takes its
        title from its first user message."""
        now = time.time() if created is None else created
        parts = text_parts(content) if isinstance(content, str) else content
        with self._write() as db:
            row = rows.conversation_row(db, conv_id)
            parent = row["leaf_id"] if isinstance(parent_id, Default) else parent_id
            if parent is not None and rows.message_row(db, parent)["conversation_id"] != conv_id:
                raise NotFoundError(f"message {parent!r} is not in conversation {conv_id!r}")
            message = Message(message_id or new_id(), role, parts, now, parent, status, meta or MessageMeta())
            had_user = (
                db.execute(
                    "SELECT 1 FROM messages WHERE conversation_id = ? AND role = 'user' LIMIT 1", (conv_id,)
                ).fetchone()
                is not None
            )
            rows.insert_message(db, conv_id, message)
            db.execute(
                "UPDATE conversations SET leaf_id = ?, updated = ?, title = ? WHERE id = ?",
                (message.id, now, auto_title(row["title"], role, text_of(parts), had_user), conv_id),
            )
        return message

    def update_message(
        self, message_id: str, content: str | None = None, status: str | None = None, meta: MessageMeta | None = None
    ) -> Message:
        """Change a message in place (None leaves a field as it is; new `content` replaces its
        text, its attachments stay); return the new message."""
        with self._write() as db:
            row = rows.message_row(db, message_id)
            [old] = rows.messages_where(db, "id = ?", (message_id,))
            new = replace(
                old,
                parts=old.parts if content is None else with_text(old.parts, content),
                status=old.status if status is None else status,
                meta=old.meta if meta is None else meta,
            )
            db.execute(
                "UPDATE messages SET status = ?, meta = ? WHERE id = ?",
                (new.status, rows.meta_json(new.meta), message_id),
            )
            if content is not None:
                db.execute("DELETE FROM message_parts WHERE message_id = ?", (message_id,))
                rows.insert_parts(db, new)
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), row["conversation_id"]))
        return new

    def delete_message(self, message_id: str) -> None:
        """Delete a message and all its descendants; an active leaf among them moves to its parent."""
        with self._write() as db:
            row = rows.message_row(db, message_id)
            conv = rows.conversation_row(db, row["conversation_id"])
            doomed = {r[0] for r in db.execute(f"{rows.SUBTREE} SELECT id FROM subtree", (message_id,))}
            db.execute(f"{rows.SUBTREE} DELETE FROM messages WHERE id IN subtree", (message_id,))
            rows.free_unused_blobs(db)
            leaf = row["parent_id"] if conv["leaf_id"] in doomed else conv["leaf_id"]
            db.execute(
                "UPDATE conversations SET leaf_id = ?, updated = ? WHERE id = ?", (leaf, time.time(), conv["id"])
            )
        self._shrink()

    def switch_version(self, conv_id: str, message_id: str) -> Conversation:
        """Make the branch through `message_id` active, down to its newest descendant."""
        with self._write() as db:
            rows.conversation_row(db, conv_id)
            if rows.message_row(db, message_id)["conversation_id"] != conv_id:
                raise NotFoundError(f"message {message_id!r} is not in conversation {conv_id!r}")
            leaf = newest_leaf(rows.all_messages(db, conv_id), message_id)
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conv_id))
        return self.get(conv_id)

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
