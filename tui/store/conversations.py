"""The conversation library: conversations and their message trees in one SQLite file.

Messages form a tree through `parent_id`: regenerating a reply or editing a prompt adds a sibling
version, and each conversation stores the leaf of its active branch. Conversation and message
ids are uuid4 hex strings that a caller may choose itself, so writes can be prepared before the
database is reachable (see `tui.store.autosave`). "Newest" among messages means last inserted.
"""

from __future__ import annotations

import builtins
import enum
import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tui.paths import data_dir

FILE_NAME = "library.sqlite3"
DEFAULT_TITLE = "New chat"
TITLE_MAX = 60
ROLES = ("system", "user", "assistant")
STATUSES = ("ok", "stopped", "length", "failed")  # length: cut off at max_new_tokens
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


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
    role: str  # 'system' | 'user' | 'assistant'
    content: str
    created: float  # unix time
    parent_id: str | None
    status: str = "ok"  # 'ok' | 'stopped' | 'failed'
    stats: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r} (expected one of {', '.join(ROLES)})")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r} (expected one of {', '.join(STATUSES)})")


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


# ---------------------------------------------------------------------------------------------
# Schema: PRAGMA user_version counts the migrations applied, in order, from version 0.

def _v1_base(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE conversations (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            model TEXT,
            load_settings TEXT NOT NULL DEFAULT '{}',
            generation_settings TEXT NOT NULL DEFAULT '{}',
            system_prompt TEXT,
            leaf_id TEXT
        )""")
    db.execute("CREATE INDEX conversations_updated ON conversations(updated)")
    # parent_id has no ON DELETE action: a subtree is deleted in one statement, and a cascade
    # through a long chain would hit SQLite's trigger depth limit.
    db.execute("""
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES messages(id),
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'stopped', 'length', 'failed')),
            stats TEXT
        )""")
    db.execute("CREATE INDEX messages_conversation ON messages(conversation_id)")
    db.execute("CREATE INDEX messages_parent ON messages(parent_id)")


def _v2_search(db: sqlite3.Connection) -> None:
    # One row per message (rowid = messages.seq) and per title (rowid = -conversations.seq).
    db.execute("""
        CREATE VIRTUAL TABLE search USING fts5(
            conversation_id UNINDEXED, text, tokenize = 'unicode61 remove_diacritics 2'
        )""")
    for sql in (
        """CREATE TRIGGER search_conversation_insert AFTER INSERT ON conversations BEGIN
               INSERT INTO search(rowid, conversation_id, text) VALUES (-new.seq, new.id, new.title);
           END""",
        """CREATE TRIGGER search_conversation_title AFTER UPDATE OF title ON conversations BEGIN
               UPDATE search SET text = new.title WHERE rowid = -new.seq;
           END""",
        """CREATE TRIGGER search_conversation_delete AFTER DELETE ON conversations BEGIN
               DELETE FROM search WHERE rowid = -old.seq;
           END""",
        """CREATE TRIGGER search_message_insert AFTER INSERT ON messages BEGIN
               INSERT INTO search(rowid, conversation_id, text)
               VALUES (new.seq, new.conversation_id, new.content);
           END""",
        """CREATE TRIGGER search_message_content AFTER UPDATE OF content ON messages BEGIN
               UPDATE search SET text = new.content WHERE rowid = new.seq;
           END""",
        """CREATE TRIGGER search_message_delete AFTER DELETE ON messages BEGIN
               DELETE FROM search WHERE rowid = old.seq;
           END""",
        "INSERT INTO search(rowid, conversation_id, text) SELECT -seq, id, title FROM conversations",
        "INSERT INTO search(rowid, conversation_id, text) SELECT seq, conversation_id, content FROM messages",
    ):
        db.execute(sql)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_base, _v2_search)
SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the missing migrations, each in its own transaction with its version number."""
    while (version := db.execute("PRAGMA user_version").fetchone()[0]) != SCHEMA_VERSION:
        if version > SCHEMA_VERSION:
            raise StoreError(f"the conversation library uses schema {version}, newer than this "
                             f"chatui understands ({SCHEMA_VERSION}): please upgrade chatui")
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between the read above and taking the lock.
            if db.execute("PRAGMA user_version").fetchone()[0] == version:
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


# ---------------------------------------------------------------------------------------------
# Opening: private folder and files, corruption moved aside.

class _CorruptFile(Exception):
    pass


def _is_corruption(error: BaseException) -> bool:
    if isinstance(error, _CorruptFile):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(error, sqlite3.DatabaseError) and code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return type(error) is sqlite3.DatabaseError


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def _make_private_dir(folder: Path) -> None:
    """Create `folder` (mode 0o700) unless it exists; an existing folder is left as it is."""
    try:
        folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
        return
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to `<name>.corrupt-<timestamp>`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.rename(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.rename(side, target.with_name(target.name + suffix))
    return target


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating with mode 0o600) and migrate; raise _CorruptFile or a sqlite3 error."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as file:
            if file.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise _CorruptFile("not a SQLite database")
        if not os.access(path, os.W_OK):  # SQLite would quietly open it read-only, for good
            raise PermissionError(errno.EACCES, "the library file is read-only", str(path))
    else:
        # SQLite gives the -wal and -shm files the database file's permissions.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise _CorruptFile("integrity check failed")
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _message(row: sqlite3.Row) -> Message:
    return Message(row["id"], row["role"], row["content"], row["created"], row["parent_id"],
                   row["status"], json.loads(row["stats"]) if row["stats"] is not None else None)


def _summary(row: sqlite3.Row, snippet: str | None = None) -> ConversationSummary:
    return ConversationSummary(row["id"], row["title"], row["model"], row["created"], row["updated"],
                               row["message_count"], snippet)


def fts_query(text: str) -> str | None:
    """An FTS5 query for user text: every word quoted (AND), the last one a prefix; None if blank.
    NUL would end the query string early, and is never part of a word: it separates."""
    terms = ['"' + term.replace('"', '""') + '"' for term in text.replace("\0", " ").split()]
    return " ".join(terms) + "*" if terms else None


_MESSAGE_COLUMNS = "id, role, content, created, parent_id, status, stats"
_SUMMARY_COLUMNS = """c.id, c.title, c.model, c.created, c.updated,
    (WITH RECURSIVE branch(id, parent_id) AS (
         SELECT id, parent_id FROM messages WHERE id = c.leaf_id
         UNION ALL SELECT m.id, m.parent_id FROM messages m JOIN branch ON m.id = branch.parent_id)
     SELECT COUNT(*) FROM branch) AS message_count"""
_SUBTREE = """WITH RECURSIVE subtree(id) AS (
    SELECT ? UNION ALL SELECT m.id FROM messages m JOIN subtree ON m.parent_id = subtree.id)"""


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
            _make_private_dir(self.path.parent)
            try:
                self._db = _connect(self.path)
            except (sqlite3.DatabaseError, _CorruptFile) as error:
                if not _is_corruption(error):
                    raise
                self.recovered_from = _move_aside(self.path)
                self._db = _connect(self.path)
        except (sqlite3.Error, OSError, _CorruptFile) as error:
            raise StoreError(f"cannot open the conversation library {self.path}: "
                             f"{_describe(error)}") from error

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except (sqlite3.Error, OSError) as error:
                raise StoreError(f"cannot read the conversation library: {_describe(error)}") from error

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
                raise StoreError(f"cannot save to the conversation library: {_describe(error)}") from error

    @staticmethod
    def _conversation_row(db: sqlite3.Connection, conv_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM conversations WHERE id = ?", (conv_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no conversation with id {conv_id!r}")
        return row

    @staticmethod
    def _message_row(db: sqlite3.Connection, message_id: str) -> sqlite3.Row:
        row = db.execute(f"SELECT {_MESSAGE_COLUMNS}, conversation_id FROM messages WHERE id = ?",
                         (message_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {message_id!r}")
        return row

    @staticmethod
    def _all_messages(db: sqlite3.Connection, conv_id: str) -> builtins.list[Message]:
        rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
                          "ORDER BY seq", (conv_id,))
        return [_message(row) for row in rows]

    @staticmethod
    def _insert_conversation(db: sqlite3.Connection, conv: Conversation, leaf_id: str | None) -> None:
        db.execute(
            "INSERT INTO conversations (id, title, created, updated, model, load_settings, "
            "generation_settings, system_prompt, leaf_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conv.id, conv.title, conv.created, conv.updated, conv.model, _json(conv.load_settings),
             _json(conv.generation_settings), conv.system_prompt, leaf_id))

    @staticmethod
    def _insert_message(db: sqlite3.Connection, conv_id: str, message: Message) -> None:
        db.execute(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, created, status, "
            "stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (message.id, conv_id, message.parent_id, message.role, message.content, message.created,
             message.status, _json(message.stats)))

    # -- conversations -------------------------------------------------------------------------

    def create(self, model: str | None = None, load_settings: dict[str, Any] | None = None,
               generation_settings: dict[str, Any] | None = None, system_prompt: str | None = None,
               title: str = DEFAULT_TITLE, *, conv_id: str | None = None,
               created: float | None = None) -> Conversation:
        """Store a new, empty conversation (`conv_id`/`created` default to a new id and now)."""
        now = time.time() if created is None else created
        conv = Conversation(conv_id or new_id(), clean_title(title), now, now, model,
                            dict(load_settings or {}), dict(generation_settings or {}), system_prompt)
        with self._write() as db:
            self._insert_conversation(db, conv, None)
        return conv

    def import_conversation(self, conv: Conversation) -> str:
        """Store a copy of `conv` (its active branch) under new ids; return the new conversation id."""
        copy = replace(conv, id=new_id(), title=clean_title(conv.title), messages=[])
        parent: str | None = None
        for message in conv.messages:
            copy.messages.append(replace(message, id=new_id(), parent_id=parent))
            parent = copy.messages[-1].id
        with self._write() as db:
            self._insert_conversation(db, copy, parent)
            for message in copy.messages:
                self._insert_message(db, copy.id, message)
        return copy.id

    def get(self, conv_id: str) -> Conversation:
        """The conversation with its active branch."""
        with self._read() as db:
            row = self._conversation_row(db, conv_id)
            messages = self._all_messages(db, conv_id)
        return Conversation(row["id"], row["title"], row["created"], row["updated"], row["model"],
                            json.loads(row["load_settings"]), json.loads(row["generation_settings"]),
                            row["system_prompt"], active_branch(messages, row["leaf_id"]))

    def branch_path(self, conv_id: str) -> builtins.list[Message]:
        """The active branch, root first."""
        return self.get(conv_id).messages

    def messages(self, conv_id: str) -> builtins.list[Message]:
        """Every stored message of the conversation (all versions), in insertion order."""
        with self._read() as db:
            self._conversation_row(db, conv_id)
            return self._all_messages(db, conv_id)

    def resolve_id(self, ref: str) -> str:
        """A conversation id from a full id, a unique prefix (≥ 4 characters) or 'last'."""
        ref = ref.strip().lower()
        with self._read() as db:
            if ref == "last":
                row = db.execute("SELECT id FROM conversations ORDER BY updated DESC, seq DESC "
                                 "LIMIT 1").fetchone()
                if row is None:
                    raise NotFoundError("there are no conversations yet")
                return str(row["id"])
            if len(ref) < 4 or any(ch not in "0123456789abcdef" for ch in ref):
                raise NotFoundError(f"no conversation {ref!r}: give an id, a unique prefix of at "
                                    "least 4 characters, or 'last'")
            rows = db.execute("SELECT id FROM conversations WHERE id >= ? AND id < ? LIMIT 2",
                              (ref, ref + "g")).fetchall()  # ids are lowercase hex: all < 'g'
        if not rows:
            raise NotFoundError(f"no conversation with an id starting {ref!r}")
        if len(rows) > 1:
            raise NotFoundError(f"{ref!r} starts more than one conversation id: give more of it")
        return str(rows[0]["id"])

    def list(self, limit: int = 200, offset: int = 0) -> builtins.list[ConversationSummary]:
        """Conversations, the most recently updated first."""
        with self._read() as db:
            rows = db.execute(f"SELECT {_SUMMARY_COLUMNS} FROM conversations c "
                              "ORDER BY c.updated DESC, c.seq DESC LIMIT ? OFFSET ?", (limit, offset))
            return [_summary(row) for row in rows]

    def search(self, query: str, limit: int = 200) -> builtins.list[ConversationSummary]:
        """Conversations whose title or any message matches every word of `query` (the last word
        as a prefix), best match first, each with a snippet of its best matching text."""
        match = fts_query(query)
        if match is None:
            return []
        with self._read() as db:
            rows = db.execute(f"""
                WITH best AS (
                    SELECT rowid AS hit, conversation_id, MIN(rank) AS score FROM search
                    WHERE search MATCH ?1 GROUP BY conversation_id ORDER BY score LIMIT ?2)
                SELECT {_SUMMARY_COLUMNS}, snippet(search, 1, '[', ']', '…', 12) AS snippet
                FROM search JOIN best ON search.rowid = best.hit
                JOIN conversations c ON c.id = best.conversation_id
                WHERE search MATCH ?1 ORDER BY best.score, c.updated DESC""", (match, limit))
            return [_summary(row, row["snippet"]) for row in rows]

    def rename(self, conv_id: str, title: str) -> None:
        with self._write() as db:
            if not db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                              (clean_title(title), conv_id)).rowcount:
                raise NotFoundError(f"no conversation with id {conv_id!r}")

    def delete(self, conv_id: str) -> None:
        with self._write() as db:
            if not db.execute("DELETE FROM conversations WHERE id = ?", (conv_id,)).rowcount:
                raise NotFoundError(f"no conversation with id {conv_id!r}")

    def set_settings(self, conv_id: str, *, model: str | None | Default = UNCHANGED,
                     load_settings: dict[str, Any] | Default = UNCHANGED,
                     generation_settings: dict[str, Any] | Default = UNCHANGED,
                     system_prompt: str | None | Default = UNCHANGED) -> None:
        """Change the given settings; those left as UNCHANGED keep their stored value."""
        changes: dict[str, Any] = {}
        if not isinstance(model, Default):
            changes["model"] = model
        if not isinstance(system_prompt, Default):
            changes["system_prompt"] = system_prompt
        if not isinstance(load_settings, Default):
            changes["load_settings"] = _json(load_settings)
        if not isinstance(generation_settings, Default):
            changes["generation_settings"] = _json(generation_settings)
        with self._write() as db:
            self._conversation_row(db, conv_id)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)  # fixed names only
                db.execute(f"UPDATE conversations SET {assignments} WHERE id = ?",
                           (*changes.values(), conv_id))

    def count(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    # -- messages ------------------------------------------------------------------------------

    def add_message(self, conv_id: str, role: str, content: str,
                    parent_id: str | None | Default = CURRENT_LEAF, status: str = "ok",
                    stats: dict[str, Any] | None = None, *, message_id: str | None = None,
                    created: float | None = None) -> Message:
        """Add a message under `parent_id` (the active leaf by default; a parent that already has
        children makes a new version) and make it the active leaf. A conversation still titled
        "New chat" takes its title from its first user message."""
        now = time.time() if created is None else created
        with self._write() as db:
            row = self._conversation_row(db, conv_id)
            parent = row["leaf_id"] if isinstance(parent_id, Default) else parent_id
            if parent is not None and self._message_row(db, parent)["conversation_id"] != conv_id:
                raise NotFoundError(f"message {parent!r} is not in conversation {conv_id!r}")
            message = Message(message_id or new_id(), role, content, now, parent, status, stats)
            had_user = db.execute("SELECT 1 FROM messages WHERE conversation_id = ? AND role = 'user' "
                                  "LIMIT 1", (conv_id,)).fetchone() is not None
            self._insert_message(db, conv_id, message)
            db.execute("UPDATE conversations SET leaf_id = ?, updated = ?, title = ? WHERE id = ?",
                       (message.id, now, auto_title(row["title"], role, content, had_user), conv_id))
        return message

    def update_message(self, message_id: str, content: str | None = None, status: str | None = None,
                       stats: dict[str, Any] | None = None) -> Message:
        """Change a message in place (None leaves a field as it is); return the new message."""
        with self._write() as db:
            row = self._message_row(db, message_id)
            old = _message(row)
            new = replace(old, content=old.content if content is None else content,
                          status=old.status if status is None else status,
                          stats=old.stats if stats is None else stats)
            db.execute("UPDATE messages SET content = ?, status = ?, stats = ? WHERE id = ?",
                       (new.content, new.status, _json(new.stats), message_id))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                       (time.time(), row["conversation_id"]))
        return new

    def delete_message(self, message_id: str) -> None:
        """Delete a message and all its descendants; an active leaf among them moves to its parent."""
        with self._write() as db:
            row = self._message_row(db, message_id)
            conv = self._conversation_row(db, row["conversation_id"])
            doomed = {r[0] for r in db.execute(f"{_SUBTREE} SELECT id FROM subtree", (message_id,))}
            db.execute(f"{_SUBTREE} DELETE FROM messages WHERE id IN subtree", (message_id,))
            leaf = row["parent_id"] if conv["leaf_id"] in doomed else conv["leaf_id"]
            db.execute("UPDATE conversations SET leaf_id = ?, updated = ? WHERE id = ?",
                       (leaf, time.time(), conv["id"]))

    def versions(self, message_id: str) -> builtins.list[Message]:
        """The versions of a message: it and its siblings, oldest first."""
        with self._read() as db:
            row = self._message_row(db, message_id)
            rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
                              "AND parent_id IS ? ORDER BY seq", (row["conversation_id"], row["parent_id"]))
            return [_message(r) for r in rows]

    def switch_version(self, conv_id: str, message_id: str) -> Conversation:
        """Make the branch through `message_id` active, down to its newest descendant."""
        with self._write() as db:
            self._conversation_row(db, conv_id)
            if self._message_row(db, message_id)["conversation_id"] != conv_id:
                raise NotFoundError(f"message {message_id!r} is not in conversation {conv_id!r}")
            leaf = newest_leaf(self._all_messages(db, conv_id), message_id)
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
