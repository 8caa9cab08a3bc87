"""The library's SQLite file: its schema and migrations, and opening it safely (a private folder
and file, an integrity check, and a damaged file moved aside, never deleted).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tui.store.model import StoreError

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

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


_MESSAGE_TRIGGERS = (
    """CREATE TRIGGER search_message_insert AFTER INSERT ON messages BEGIN
           INSERT INTO search(rowid, conversation_id, text) VALUES (new.seq, new.conversation_id, new.content);
       END""",
    """CREATE TRIGGER search_message_content AFTER UPDATE OF content ON messages BEGIN
           UPDATE search SET text = new.content WHERE rowid = new.seq;
       END""",
    """CREATE TRIGGER search_message_delete AFTER DELETE ON messages BEGIN
           DELETE FROM search WHERE rowid = old.seq;
       END""",
)


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
        *_MESSAGE_TRIGGERS,
        "INSERT INTO search(rowid, conversation_id, text) SELECT -seq, id, title FROM conversations",
        "INSERT INTO search(rowid, conversation_id, text) SELECT seq, conversation_id, content FROM messages",
    ):
        db.execute(sql)


def _v3_interrupted(db: sqlite3.Connection) -> None:
    """A reply is saved while it streams, as 'interrupted' until it ends; tool results are
    messages of role 'tool'. SQLite cannot change a CHECK constraint, so the messages table is
    rebuilt (same rows, same seq: the search index keeps pointing at them), with its indexes and
    triggers."""
    db.execute("""
        CREATE TABLE messages_v3 (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES messages(id),
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL,
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'ok'
                CHECK (status IN ('ok', 'stopped', 'length', 'failed', 'interrupted')),
            stats TEXT
        )""")
    db.execute(
        "INSERT INTO messages_v3 SELECT seq, id, conversation_id, parent_id, role, content, created, "
        "status, stats FROM messages"
    )
    db.execute("DROP TABLE messages")  # and its indexes and triggers
    db.execute("ALTER TABLE messages_v3 RENAME TO messages")
    db.execute("CREATE INDEX messages_conversation ON messages(conversation_id)")
    db.execute("CREATE INDEX messages_parent ON messages(parent_id)")
    for sql in _MESSAGE_TRIGGERS:
        db.execute(sql)


_PART_TRIGGERS = (
    """CREATE TRIGGER search_part_insert AFTER INSERT ON message_parts WHEN new.text IS NOT NULL BEGIN
           INSERT INTO search(rowid, conversation_id, text)
           SELECT new.seq, conversation_id, new.text FROM messages WHERE id = new.message_id;
       END""",
    """CREATE TRIGGER search_part_text AFTER UPDATE OF text ON message_parts BEGIN
           DELETE FROM search WHERE rowid = old.seq;
           INSERT INTO search(rowid, conversation_id, text)
           SELECT new.seq, conversation_id, new.text FROM messages WHERE id = new.message_id AND new.text IS NOT NULL;
       END""",
    """CREATE TRIGGER search_part_delete AFTER DELETE ON message_parts BEGIN
           DELETE FROM search WHERE rowid = old.seq;
       END""",
)


def _v4_parts(db: sqlite3.Connection) -> None:
    """A message's content becomes its parts, in order, one row each (a text-only message: one
    'text' part; later kinds add their own columns); `stats` becomes `meta`. The search index
    holds a row per part with text (rowid = message_parts.seq) instead of per message. The
    messages table is rebuilt without `content` (same rows, same seq)."""
    db.execute("""
        CREATE TABLE messages_v4 (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES messages(id),
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'ok'
                CHECK (status IN ('ok', 'stopped', 'length', 'failed', 'interrupted')),
            meta TEXT
        )""")
    db.execute(
        "INSERT INTO messages_v4 SELECT seq, id, conversation_id, parent_id, role, created, status, stats FROM messages"
    )
    db.execute("""
        CREATE TABLE message_parts (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            text TEXT,
            UNIQUE (message_id, position)
        )""")
    db.execute(
        "INSERT INTO message_parts (message_id, position, kind, text) "
        "SELECT id, 0, 'text', content FROM messages ORDER BY seq"
    )
    db.execute("DELETE FROM search WHERE rowid > 0")  # the message rows; titles stay
    db.execute("DROP TABLE messages")  # and its indexes and triggers
    db.execute("ALTER TABLE messages_v4 RENAME TO messages")
    db.execute("CREATE INDEX messages_conversation ON messages(conversation_id)")
    db.execute("CREATE INDEX messages_parent ON messages(parent_id)")
    db.execute(
        "INSERT INTO search(rowid, conversation_id, text) SELECT p.seq, m.conversation_id, p.text "
        "FROM message_parts p JOIN messages m ON m.id = p.message_id"
    )
    for sql in _PART_TRIGGERS:
        db.execute(sql)


_FILE_TRIGGER = """CREATE TRIGGER search_file_insert AFTER INSERT ON message_parts WHEN new.kind = 'file' BEGIN
       INSERT INTO search(rowid, conversation_id, text)
       SELECT new.seq, m.conversation_id, new.name || char(10) || CAST(b.data AS TEXT)
       FROM messages m JOIN blobs b ON b.digest = new.blob WHERE m.id = new.message_id;
   END"""


def _v5_blobs(db: sqlite3.Connection) -> None:
    """Images and attached documents: their bytes stored once each in `blobs`, named by their
    SHA-256 (the same file attached twice is one row); a part row names its blob, with the
    attachment's name and type. A document's text (its blob) is searched with its name. Every
    existing row stays as it was (the new columns are NULL for text parts)."""
    db.execute("""
        CREATE TABLE blobs (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            data BLOB NOT NULL
        )""")
    db.execute("ALTER TABLE message_parts ADD COLUMN blob TEXT REFERENCES blobs(digest)")
    db.execute("ALTER TABLE message_parts ADD COLUMN name TEXT")
    db.execute("ALTER TABLE message_parts ADD COLUMN mime TEXT")
    db.execute("CREATE INDEX message_parts_blob ON message_parts(blob) WHERE blob IS NOT NULL")
    db.execute(_FILE_TRIGGER)


def _v6_origin(db: sqlite3.Connection) -> None:
    """A branched chat's link to where it came from: the conversation and the message it was
    copied down to (no foreign key: the origin may be deleted, the branch stays)."""
    db.execute("ALTER TABLE conversations ADD COLUMN origin_id TEXT")
    db.execute("ALTER TABLE conversations ADD COLUMN origin_message_id TEXT")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_base,
    _v2_search,
    _v3_interrupted,
    _v4_parts,
    _v5_blobs,
    _v6_origin,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _give_back_freed_pages(db: sqlite3.Connection) -> None:
    """Incremental auto-vacuum, so that deleting a chat with large attachments shrinks the file
    (`Library.delete` runs `incremental_vacuum`). A new library is made so; an older one is
    rewritten once (VACUUM: about a second per 100 MB)."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        return
    try:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect with the VACUUM (the file has a page already)
        if db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
            log.info("rewriting the conversation library once, so that deleting gives the space back")
        db.execute("VACUUM")
    except sqlite3.OperationalError as error:  # a full disk, another chatui writing: tried again next open
        log.info("could not turn on incremental auto-vacuum: %s", error)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the missing migrations, each in its own transaction with its version number.
    Foreign keys are off meanwhile (a migration may rebuild a table that others point at) and
    checked before they are on again."""
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        _apply_migrations(db)
        broken = db.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StoreError(f"the conversation library has {len(broken)} broken references after an upgrade")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def _apply_migrations(db: sqlite3.Connection) -> None:
    while (version := db.execute("PRAGMA user_version").fetchone()[0]) != SCHEMA_VERSION:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the conversation library uses schema {version}, newer than this "
                f"chatui understands ({SCHEMA_VERSION}): please upgrade chatui"
            )
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


class CorruptFile(Exception):
    pass


def is_corruption(error: BaseException) -> bool:
    if isinstance(error, CorruptFile):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(error, sqlite3.DatabaseError) and code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return type(error) is sqlite3.DatabaseError


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def make_private_dir(folder: Path) -> None:
    """Create `folder` (mode 0o700) unless it exists; an existing folder is left as it is."""
    try:
        folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
        return
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def move_aside(path: Path) -> Path:
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


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating with mode 0o600) and migrate; raise CorruptFile or a sqlite3 error."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as file:
            if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise CorruptFile("not a SQLite database")
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
            raise CorruptFile("integrity check failed")
        _give_back_freed_pages(db)
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db
