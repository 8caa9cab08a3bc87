"""The conversation library and autosave: storage, titles, search, versions, migrations,
corruption recovery, permissions and write failures."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.store import AutoSaver, Conversation, Library, NotFoundError, StoreError
from tui.store.meta import MessageMeta
from tui.store.model import DEFAULT_TITLE, versions_of
from tui.store.schema import MIGRATIONS, SCHEMA_VERSION

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "library.sqlite3"


@pytest.fixture
def lib(db_path: Path) -> Iterator[Library]:
    library = Library(db_path)
    yield library
    library.close()


def contents(messages: list) -> list[str]:
    return [m.content for m in messages]


def same(stored: Conversation, memory: Conversation | None) -> bool:
    """Equal but for `updated`, which the library sets when a change reaches it."""
    return memory is not None and replace(stored, updated=0) == replace(memory, updated=0)


def fill_disk(library: Library) -> None:
    """Make the database unable to grow, like a full disk (SQLITE_FULL)."""
    pages = library._db.execute("PRAGMA page_count").fetchone()[0]
    library._db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(library: Library) -> None:
    library._db.execute("PRAGMA max_page_count = 1073741823")


# -- basics ------------------------------------------------------------------------------------


def test_create_add_get_list(lib: Library) -> None:
    first = lib.create(
        model="org/model",
        load_settings={"dtype": "auto"},
        generation_settings={"temperature": 0.5},
        system_prompt="Be brief.",
    )
    user = lib.add_message(first.id, "user", "What is 2+2?")
    reply = lib.add_message(first.id, "assistant", "4", status="stopped", meta=MessageMeta(extra={"tokens": 1}))
    second = lib.create()
    lib.add_message(second.id, "user", "later")

    conv = lib.get(first.id)
    assert (conv.model, conv.load_settings, conv.generation_settings, conv.system_prompt) == (
        "org/model",
        {"dtype": "auto"},
        {"temperature": 0.5},
        "Be brief.",
    )
    assert conv.messages == [user, reply]
    assert reply.parent_id == user.id and user.parent_id is None
    assert (conv.messages[1].status, conv.messages[1].meta.to_dict()) == ("stopped", {"tokens": 1})
    assert lib.get(first.id).messages == [user, reply]

    summaries = lib.list()
    assert [s.id for s in summaries] == [second.id, first.id]  # newest updated first
    assert [s.message_count for s in summaries] == [1, 2]
    assert lib.count() == 2
    assert [s.id for s in lib.list(limit=1, offset=1)] == [first.id]

    updated = lib.update_message(reply.id, content="Four.", status="ok", meta=MessageMeta(extra={"tokens": 2}))
    assert lib.get(first.id).messages[1] == updated
    assert (updated.content, updated.status, updated.meta.to_dict()) == ("Four.", "ok", {"tokens": 2})
    assert lib.list()[0].id == first.id


def test_invalid_role_and_unknown_ids(lib: Library) -> None:
    conv = lib.create()
    with pytest.raises(ValueError, match="unknown role"):
        lib.add_message(conv.id, "function", "x")  # "tool" is a role now (tool results)
    with pytest.raises(ValueError, match="unknown status"):
        lib.add_message(conv.id, "assistant", "x", status="weird")
    assert lib.get(conv.id).messages == []
    with pytest.raises(KeyError) as excinfo:
        lib.get("0" * 32)
    assert str(excinfo.value) == f"no conversation with id {'0' * 32!r}"
    other = lib.create()
    foreign = lib.add_message(other.id, "user", "elsewhere")
    with pytest.raises(NotFoundError):
        lib.add_message(conv.id, "assistant", "x", parent_id=foreign.id)
    with pytest.raises(NotFoundError):
        lib.update_message("nope", content="x")


def test_settings(lib: Library) -> None:
    conv = lib.create(model="a", system_prompt="s")
    lib.set_settings(conv.id, generation_settings={"top_k": 5})
    got = lib.get(conv.id)
    assert (got.model, got.system_prompt, got.generation_settings) == ("a", "s", {"top_k": 5})
    lib.set_settings(conv.id, model=None, system_prompt=None, load_settings={"device": "cpu"})
    got = lib.get(conv.id)
    assert (got.model, got.system_prompt, got.load_settings) == (None, None, {"device": "cpu"})
    with pytest.raises(KeyError):
        lib.set_settings("f" * 32, model="x")


def test_title_from_first_user_message(lib: Library) -> None:
    conv = lib.create()
    lib.add_message(conv.id, "system", "You are helpful.")
    assert lib.get(conv.id).title == DEFAULT_TITLE
    lib.add_message(conv.id, "user", "\n   Tell  me\tabout   " + "x" * 100 + "\nsecond line")
    title = lib.get(conv.id).title
    assert title.startswith("Tell me about xxx") and title.endswith("…") and len(title) == 60
    lib.add_message(conv.id, "user", "another question")
    assert lib.get(conv.id).title == title

    short = lib.create()
    lib.add_message(short.id, "user", "  Hi there  ")
    assert lib.get(short.id).title == "Hi there"

    named = lib.create(title="My title")
    lib.add_message(named.id, "user", "hello")
    assert lib.get(named.id).title == "My title"


def test_rename_and_delete(lib: Library) -> None:
    conv = lib.create()
    lib.add_message(conv.id, "user", "hello")
    lib.rename(conv.id, "  Renamed  ")
    assert lib.get(conv.id).title == "Renamed"
    lib.rename(conv.id, "   ")
    assert lib.get(conv.id).title == DEFAULT_TITLE
    lib.delete(conv.id)
    assert lib.count() == 0
    assert lib.search("hello") == []
    assert lib._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    with pytest.raises(KeyError, match="no conversation"):
        lib.get(conv.id)
    with pytest.raises(KeyError):
        lib.rename(conv.id, "x")
    with pytest.raises(KeyError):
        lib.delete(conv.id)


def test_resolve_id(lib: Library) -> None:
    with pytest.raises(KeyError, match="no conversations yet"):
        lib.resolve_id("last")
    a = lib.create(conv_id="abcd1111" + "0" * 24)
    b = lib.create(conv_id="abcd2222" + "0" * 24)
    lib.add_message(a.id, "user", "newest")
    assert lib.resolve_id("last") == a.id
    assert lib.resolve_id(b.id) == b.id
    assert lib.resolve_id("ABCD2") == b.id
    with pytest.raises(KeyError, match="more than one"):
        lib.resolve_id("abcd")
    with pytest.raises(KeyError, match="at least 4"):
        lib.resolve_id("abc")
    with pytest.raises(KeyError, match="at least 4"):
        lib.resolve_id("../etc/passwd")
    with pytest.raises(KeyError, match="starting"):
        lib.resolve_id("ffff")


# -- search ------------------------------------------------------------------------------------


def test_search_titles_messages_prefix_and_snippet(lib: Library) -> None:
    pasta = lib.create(title="Dinner plans")
    lib.add_message(pasta.id, "user", "How do I cook spaghetti carbonara?")
    lib.add_message(pasta.id, "assistant", "Use eggs, pecorino and guanciale. Never cream.")
    cafe = lib.create()
    lib.add_message(cafe.id, "user", "Where is a good café in Zürich?")

    assert [s.id for s in lib.search("carbonara")] == [pasta.id]
    assert [s.id for s in lib.search("dinner")] == [pasta.id]  # the title is indexed
    assert [s.id for s in lib.search("spag")] == [pasta.id]  # the last word is a prefix
    assert lib.search("spag carbonara") == []  # only the last word is a prefix
    assert [s.id for s in lib.search("eggs pecorino")] == [pasta.id]  # every word must match
    assert lib.search("eggs zurich") == []
    assert [s.id for s in lib.search("cafe zurich")] == [cafe.id]  # diacritics folded
    hit = lib.search("guanciale")[0]
    assert "[guanciale]" in hit.snippet
    assert (hit.title, hit.message_count) == ("Dinner plans", 2)
    assert lib.search("   ") == []

    reply = lib.get(pasta.id).messages[1]
    lib.update_message(reply.id, content="Use bacon.")
    assert lib.search("guanciale") == []
    assert [s.id for s in lib.search("bacon")] == [pasta.id]
    lib.rename(cafe.id, "Coffee trip")
    assert [s.id for s in lib.search("coffee")] == [cafe.id]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "'",
        "*",
        "**",
        "a*b",
        "AND",
        "OR",
        "NOT",
        "a AND",
        "NOT a",
        "NEAR(a b)",
        "(",
        ")",
        "(a OR b",
        "col:a",
        "text:spaghetti",
        "^a",
        "a + b",
        "-",
        "{a b}:c",
        "\\",
        "%",
        "_",
        "\x00",
        'spaghetti"',
        '"spaghetti',
        "🍝",
        "a" * 2000,
    ],
)
def test_search_never_raises_on_odd_queries(lib: Library, query: str) -> None:
    conv = lib.create()
    lib.add_message(conv.id, "user", "spaghetti AND meatballs (NOT cream) a*b")
    assert isinstance(lib.search(query), list)


@settings(max_examples=50, deadline=None)
@given(query=st.text())
def test_search_never_raises_on_any_text(tmp_path_factory: pytest.TempPathFactory, query: str) -> None:
    with Library(tmp_path_factory.mktemp("search") / "library.sqlite3") as library:
        conv = library.create()
        library.add_message(conv.id, "user", "some words to find")
        assert isinstance(library.search(query), list)


def test_search_finds_words_with_quotes(lib: Library) -> None:
    conv = lib.create()
    lib.add_message(conv.id, "user", 'He said "hello" to O\'Brien')
    assert [s.id for s in lib.search('"hello"')] == [conv.id]
    assert [s.id for s in lib.search("o'brien")] == [conv.id]


# -- versions ----------------------------------------------------------------------------------


def test_versions_switch_and_branch(lib: Library) -> None:
    conv = lib.create()
    u1 = lib.add_message(conv.id, "user", "question")
    a1 = lib.add_message(conv.id, "assistant", "answer one")
    a2 = lib.add_message(conv.id, "assistant", "answer two", parent_id=u1.id)  # regenerate
    assert versions_of(lib.messages(conv.id), a1.id) == [a1, a2] == versions_of(lib.messages(conv.id), a2.id)
    assert contents(lib.get(conv.id).messages) == ["question", "answer two"]
    u2 = lib.add_message(conv.id, "user", "follow-up")
    assert u2.parent_id == a2.id

    assert contents(lib.switch_version(conv.id, a1.id).messages) == ["question", "answer one"]
    assert contents(lib.get(conv.id).messages) == ["question", "answer one"]
    # Switching back follows the newest child down to the leaf.
    assert contents(lib.switch_version(conv.id, a2.id).messages) == ["question", "answer two", "follow-up"]

    edit = lib.add_message(conv.id, "user", "question, edited", parent_id=None)  # a new root
    assert versions_of(lib.messages(conv.id), u1.id) == [u1, edit]
    assert contents(lib.get(conv.id).messages) == ["question, edited"]
    assert contents(lib.switch_version(conv.id, u1.id).messages) == ["question", "answer two", "follow-up"]
    assert len(lib.messages(conv.id)) == 5
    assert lib.list()[0].message_count == 3  # the active branch

    other = lib.create()
    with pytest.raises(KeyError):
        lib.switch_version(other.id, u1.id)
    with pytest.raises(KeyError):
        versions_of(lib.messages(conv.id), "missing")


def test_delete_message_and_descendants(lib: Library) -> None:
    conv = lib.create()
    u1 = lib.add_message(conv.id, "user", "question")
    a1 = lib.add_message(conv.id, "assistant", "first")
    a2 = lib.add_message(conv.id, "assistant", "second unique", parent_id=u1.id)
    lib.add_message(conv.id, "user", "follow-up")

    lib.delete_message(a1.id)  # not on the active branch: the leaf stays
    assert contents(lib.get(conv.id).messages) == ["question", "second unique", "follow-up"]
    lib.delete_message(a2.id)  # the active leaf was below it: it moves to the parent
    assert contents(lib.get(conv.id).messages) == ["question"]
    assert versions_of(lib.messages(conv.id), u1.id) == [u1]
    assert [m.id for m in lib.messages(conv.id)] == [u1.id]
    assert lib.search("unique") == [] and lib.search("follow") == []
    lib.delete_message(u1.id)
    assert lib.get(conv.id).messages == []
    with pytest.raises(KeyError):
        lib.delete_message(u1.id)


def test_delete_long_chain(lib: Library) -> None:
    """Deleting the root of a long branch works (no cascade through SQLite's trigger limit)."""
    conv = lib.create()
    first = lib.add_message(conv.id, "user", "start")
    for n in range(1500):
        lib.add_message(conv.id, "assistant" if n % 2 == 0 else "user", f"turn {n}")
    assert len(lib.get(conv.id).messages) == 1501
    lib.delete_message(first.id)
    assert lib.messages(conv.id) == []
    assert lib.search("turn") == []


# -- schema, recovery, files -------------------------------------------------------------------


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_migrates_an_empty_version_0_database(db_path: Path) -> None:
    db_path.parent.mkdir()
    sqlite3.connect(db_path).close()  # a database at user_version 0, with nothing in it
    assert user_version(db_path) == 0
    with Library(db_path) as library:
        assert library.count() == 0
        assert library.recovered_from is None
    assert user_version(db_path) == SCHEMA_VERSION == 6


def test_migrates_a_version_1_database_with_data(db_path: Path) -> None:
    db_path.parent.mkdir()
    db = sqlite3.connect(db_path, isolation_level=None)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO conversations (id, title, created, updated, leaf_id) "
        "VALUES ('c0ffee00c0ffee00c0ffee00c0ffee00', 'Old chat', 1.0, 2.0, 'm2')"
    )
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created) "
        "VALUES ('m1', 'c0ffee00c0ffee00c0ffee00c0ffee00', NULL, 'user', 'ancient wisdom', 1.0)"
    )
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created) "
        "VALUES ('m2', 'c0ffee00c0ffee00c0ffee00c0ffee00', 'm1', 'assistant', 'indeed', 2.0)"
    )
    db.close()

    with Library(db_path) as library:
        conv = library.get("c0ffee00c0ffee00c0ffee00c0ffee00")
        assert (conv.title, contents(conv.messages)) == ("Old chat", ["ancient wisdom", "indeed"])
        assert [s.id for s in library.search("wisdom")] == [conv.id]  # existing rows indexed
        assert [s.id for s in library.search("old")] == [conv.id]
    assert user_version(db_path) == SCHEMA_VERSION


def test_migrates_a_version_2_database_to_allow_interrupted_replies(db_path: Path) -> None:
    db_path.parent.mkdir()
    db = sqlite3.connect(db_path, isolation_level=None)
    MIGRATIONS[0](db)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO conversations (id, title, created, updated, leaf_id) "
        "VALUES ('c0ffee00c0ffee00c0ffee00c0ffee00', 'Two', 1.0, 2.0, 'm2')"
    )
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created) "
        "VALUES ('m1', 'c0ffee00c0ffee00c0ffee00c0ffee00', NULL, 'user', 'a penguin question', 1.0)"
    )
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created, status) "
        "VALUES ('m2', 'c0ffee00c0ffee00c0ffee00c0ffee00', 'm1', 'assistant', 'half an answer', 2.0, "
        "'stopped')"
    )
    db.close()

    with Library(db_path) as library:
        conv_id = "c0ffee00c0ffee00c0ffee00c0ffee00"
        conv = library.get(conv_id)
        assert [(m.content, m.status) for m in conv.messages] == [
            ("a penguin question", "ok"),
            ("half an answer", "stopped"),
        ]
        assert [s.id for s in library.search("penguin")] == [conv_id]  # the index still finds old rows
        reply = library.add_message(conv_id, "assistant", "", "m1", status="interrupted")
        library.update_message(reply.id, content="streaming walrus text")
        assert [s.id for s in library.search("walrus")] == [conv_id]  # and follows new ones
        library.delete_message("m2")
        assert [m.id for m in library.messages(conv_id)] == ["m1", reply.id]
        assert library.search("answer") == []
    assert user_version(db_path) == SCHEMA_VERSION


def test_refuses_a_newer_schema(db_path: Path) -> None:
    db_path.parent.mkdir()
    db = sqlite3.connect(db_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Library(db_path)
    assert user_version(db_path) == SCHEMA_VERSION + 1  # left alone
    assert not list(db_path.parent.glob("*.corrupt-*"))


def test_corrupt_file_is_moved_aside(db_path: Path) -> None:
    db_path.parent.mkdir()
    garbage = b"this is not a database\n" * 100
    db_path.write_bytes(garbage)
    db_path.with_name(db_path.name + "-wal").write_bytes(b"stale wal")
    with Library(db_path) as library:
        moved = library.recovered_from
        assert moved is not None and moved.name.startswith("library.sqlite3.corrupt-")
        assert moved.read_bytes() == garbage  # kept, never deleted
        assert moved.with_name(moved.name + "-wal").read_bytes() == b"stale wal"
        conv = library.create()
        library.add_message(conv.id, "user", "fresh start")
    with Library(db_path) as library:
        assert library.recovered_from is None
        assert library.count() == 1


def test_damaged_pages_are_moved_aside(db_path: Path) -> None:
    with Library(db_path) as library:
        conv = library.create()
        for n in range(200):
            library.add_message(conv.id, "user", f"message number {n} " * 20)
    data = bytearray(db_path.read_bytes())
    assert len(data) > 8 * 4096
    data[2 * 4096 : 6 * 4096] = os.urandom(4 * 4096)  # smash some pages, keep the header
    db_path.write_bytes(bytes(data))
    with Library(db_path) as library:
        assert library.recovered_from is not None
        assert library.recovered_from.read_bytes() == bytes(data)
        assert library.count() == 0


def test_private_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "deep" / "chatui" / "library.sqlite3"
        with Library(path) as library:
            conv = library.create()
            library.add_message(conv.id, "user", "secret")
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
            for file in files:
                assert file.exists()
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    finally:
        os.umask(old_umask)


def test_default_path_is_in_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("tui.store.conversations.data_dir", lambda: tmp_path / "chatui")
    with Library() as library:
        assert library.path == tmp_path / "chatui" / "library.sqlite3"
    assert stat.S_IMODE((tmp_path / "chatui").stat().st_mode) == 0o700


# -- write failures ----------------------------------------------------------------------------


def unwritable_path(tmp_path: Path, how: str) -> Path:
    """A library path that cannot be opened for writing: under a regular file, or (not as root,
    whom permissions do not stop) in a read-only folder or a read-only existing file."""
    path = tmp_path / "data" / "library.sqlite3"
    if how == "parent-is-a-file":
        path.parent.write_text("not a folder")
    elif how == "read-only-dir":
        path.parent.mkdir()
        path.parent.chmod(0o500)
    else:
        Library(path).close()
        path.chmod(0o400)
    return path


def make_writable(path: Path, how: str) -> None:
    if how == "parent-is-a-file":
        path.parent.unlink()
        path.parent.mkdir(mode=0o700)
    elif how == "read-only-dir":
        path.parent.chmod(0o700)
    else:
        path.chmod(0o600)


# Root ignores file permissions, so as root only the parent-is-a-file way can fail a write.
WAYS = ["parent-is-a-file"] + ([] if IS_ROOT else ["read-only-dir", "read-only-file"])


@pytest.mark.parametrize("how", WAYS)
def test_unwritable_location_raises_store_error(tmp_path: Path, how: str) -> None:
    path = unwritable_path(tmp_path, how)
    with pytest.raises(StoreError) as excinfo:
        Library(path)
    message = str(excinfo.value)
    assert "\n" not in message and "cannot open the conversation library" in message
    make_writable(path, how)


def test_disk_full_raises_store_error_and_writes_nothing(lib: Library) -> None:
    conv = lib.create()
    lib.add_message(conv.id, "user", "small")
    fill_disk(lib)
    with pytest.raises(StoreError, match="full") as excinfo:
        lib.add_message(conv.id, "assistant", "x" * 200_000)
    assert "\n" not in str(excinfo.value)
    free_disk(lib)
    assert contents(lib.get(conv.id).messages) == ["small"]
    lib.add_message(conv.id, "assistant", "x" * 200_000)
    assert len(lib.get(conv.id).messages) == 2


# -- autosave ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_autosaver_keeps_changes_until_the_library_opens(tmp_path: Path, how: str) -> None:
    path = unwritable_path(tmp_path, how)
    saver = AutoSaver.open(path)
    assert saver.library is None and saver.last_error and "cannot open" in saver.last_error

    conv_id = saver.start(model="m", generation_settings={"temperature": 0.3})
    question = saver.user_message("Why is the sky blue?")
    saver.assistant_message("Rayleigh scattering.", meta=MessageMeta(extra={"tokens": 3}))
    saver.assistant_message("Because of scattering.", parent_id=question.id)  # regenerate
    assert saver.pending == 4 and saver.last_error
    assert saver.conversation is not None
    assert saver.conversation.title == "Why is the sky blue?"
    assert contents(saver.conversation.messages) == ["Why is the sky blue?", "Because of scattering."]
    assert not saver.retry()

    make_writable(path, how)
    saver.user_message("Thanks!")  # the next write saves everything, in order
    assert (saver.pending, saver.last_error) == (0, None)
    with Library(path) as library:
        stored = library.get(conv_id)
        assert same(stored, saver.conversation)
        assert stored.generation_settings == {"temperature": 0.3}
        assert len(library.messages(conv_id)) == 4
    assert saver.library is not None
    saver.library.close()


def test_autosaver_survives_a_full_disk(lib: Library) -> None:
    saver = AutoSaver(lib)
    conv_id = saver.start()
    saver.user_message("hello")
    assert (saver.pending, saver.last_error) == (0, None)

    fill_disk(lib)
    reply = saver.assistant_message("y" * 200_000)
    saver.update_message(reply.id, status="stopped")
    follow = saver.user_message("more")
    assert saver.pending == 3 and "full" in (saver.last_error or "")
    assert contents(lib.get(conv_id).messages) == ["hello"]
    assert not saver.retry()

    free_disk(lib)
    assert saver.retry()
    assert (saver.pending, saver.last_error) == (0, None)
    stored = lib.get(conv_id)
    assert same(stored, saver.conversation)
    assert stored.messages[1].status == "stopped" and stored.messages[-1].id == follow.id


def test_autosaver_mirrors_the_library(lib: Library) -> None:
    """Every change applied in memory gives what the library stores."""
    saver = AutoSaver(lib)
    conv_id = saver.start(model="a", system_prompt="sys")
    u1 = saver.user_message("one")
    a1 = saver.assistant_message("reply one")
    a2 = saver.assistant_message("reply two", parent_id=u1.id)
    saver.user_message("two")
    assert saver.versions(a1.id) == [a1, a2] == versions_of(lib.messages(conv_id), a1.id)
    saver.switch_version(a1.id)
    assert contents(saver.conversation.messages) == ["one", "reply one"]
    saver.switch_version(a2.id)
    saver.delete_message(a1.id)
    saver.update_message(a2.id, content="reply two, fixed")
    saver.set_settings(model="b", generation_settings={"top_p": 0.5}, system_prompt=None)
    saver.rename("Numbers")
    assert saver.pending == 0
    assert same(lib.get(conv_id), saver.conversation)
    assert saver.conversation.model == "b" and saver.conversation.system_prompt is None

    resumed = AutoSaver(lib)
    assert same(resumed.resume(conv_id), saver.conversation)
    resumed.assistant_message("another reply", parent_id=u1.id)
    assert same(lib.get(conv_id), resumed.conversation)
    with pytest.raises(KeyError):
        resumed.resume("0" * 32)


def test_autosaver_untouched_chat_leaves_nothing(lib: Library) -> None:
    saver = AutoSaver(lib)
    saver.start(model="m")
    saver.set_settings(model="n")
    saver.rename("Still empty")
    assert lib.count() == 0
    saver.user_message("now")
    stored = lib.get(saver.conversation.id)
    assert (stored.model, stored.title) == ("n", "Still empty")


def test_autosaver_needs_a_conversation(lib: Library) -> None:
    saver = AutoSaver(lib)
    with pytest.raises(RuntimeError):
        saver.user_message("hi")
    saver.start()
    with pytest.raises(KeyError):
        saver.user_message("hi", parent_id="missing")
    with pytest.raises(TypeError):
        saver.assistant_message("x", meta=MessageMeta(extra={"bad": object()}))
    assert saver.pending == 0 and lib.count() == 0


def test_models_used_are_the_load_settings_models_most_recent_first(db_path: Path) -> None:
    with Library(db_path) as lib:
        lib.create(load_settings={"model": "org/a"}, created=100.0)
        lib.create(load_settings={"model": "org/a"}, created=300.0)
        lib.create(load_settings={}, created=200.0)  # the bundled model
        lib.create(load_settings={"model": "m", "endpoint": "http://127.0.0.1:8000/v1"}, created=50.0)
        assert lib.models_used() == [("org/a", "", 300.0), ("", "", 200.0), ("m", "http://127.0.0.1:8000/v1", 50.0)]


def test_deleting_a_chat_with_large_attachments_shrinks_the_file(tmp_path: Path) -> None:
    """Incremental auto-vacuum: the blobs' pages go back to the file system, in a new library and
    in one made before (rewritten once when opened)."""
    from tui.store.parts import ImagePart, TextPart

    photo = ImagePart("photo.png", "image/png", os.urandom(8 * 2**20))
    for old in (False, True):
        path = tmp_path / f"library-{old}.sqlite3"
        if old:  # as an older chatui made it: no auto-vacuum
            sqlite3.connect(path).execute("PRAGMA auto_vacuum = NONE").connection.close()
            with Library(path) as library:
                pass
            db = sqlite3.connect(path)
            db.execute("PRAGMA auto_vacuum = NONE")
            db.execute("VACUUM")
            assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
            db.close()
        with Library(path) as library:
            conv = library.create()
            library.add_message(conv.id, "user", (photo, TextPart("What is it?")))
        full = path.stat().st_size
        assert full > 8 * 2**20
        with Library(path) as library:
            library.delete(conv.id)
        assert path.stat().st_size < 2**20, (old, full, path.stat().st_size)


def test_a_library_opens_even_when_its_one_time_rewrite_fails(tmp_path: Path, monkeypatch) -> None:
    """The VACUUM that turns on auto-vacuum (a full disk, another process writing) is a nicety:
    the library opens, and the rewrite is tried again next time."""
    from tui.store import schema

    path = tmp_path / "old.sqlite3"
    with Library(path) as library:
        library.create()
    db = sqlite3.connect(path)
    db.execute("PRAGMA auto_vacuum = NONE")
    db.execute("VACUUM")
    db.close()

    real = schema._give_back_freed_pages
    monkeypatch.setattr(schema, "_give_back_freed_pages", lambda db: real(_Failing(db)))
    with Library(path) as library:
        assert library.count() == 1
    monkeypatch.undo()
    with Library(path) as library:  # tried again, and done
        assert library.count() == 1
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2


class _Failing:
    """A connection whose VACUUM fails as on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args):
        if sql == "VACUUM":
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)
