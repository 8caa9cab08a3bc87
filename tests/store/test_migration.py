"""Libraries written by earlier releases open with this one with every chat and message as it
was: schema 3 (content and stats columns) and schema 4 (message parts and meta, before images
and documents were stored as blobs)."""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from processes import ROOT

from tui.store import Library, export_json, export_markdown
from tui.store.meta import ReplyMetrics, ToolResult
from tui.store.parts import FilePart, ImagePart, TextPart
from tui.store.schema import SCHEMA_VERSION

PREVIOUS_RELEASE = "f635798"  # schema 3
PARTS_RELEASE = "691021a"  # schema 4: text parts only
BLOBS_RELEASE = "33a7b0c"  # schema 5: attachments stored once, no auto-vacuum, no branch origin

METRICS = {
    "prompt_tokens": 30,
    "prefill_tokens": 30,
    "new_tokens": 3,
    "ttft_s": 0.25,
    "decode_tok_s": 12.5,
    "total_s": 0.5,
    "rss_bytes": 2**30,
    "cuda_allocated": None,
    "cuda_reserved": None,
    "context_size": 8192,
}
TOKEN_PROBS = [[12, "Sun", -0.1, -0.1, [[12, "Sun", -0.1]], [[12, "Sun", -0.1, 1], [7, "Moon", -2.5, 0]]]]
TOOL_CALLS = [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 40}'}}]
TOOL_RESULT = {
    "tool_call_id": "call_1",
    "name": "add",
    "server": "calc",
    "outcome": "ok",
    "arguments": {"a": 2, "b": 40},
}


def previous_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    release: str = PREVIOUS_RELEASE,
    names: tuple[str, ...] = ("model", "schema", "conversations", "files"),
) -> ModuleType:
    """A release's store (the modules `names`) from git, as a package."""
    package_name = f"store_{release}"
    package = tmp_path / package_name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in names:
        shown = subprocess.run(
            ["git", "show", f"{release}:tui/store/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            pytest.skip(f"the previous release's code is not in this checkout's git history: {shown.stderr.strip()}")
        source = shown.stdout.replace("tui.store.", f"{package_name}.")
        (package / f"{name}.py").write_text(source.replace("from tui.store import", f"from {package_name} import"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith(package_name)]:
        del sys.modules[name]
    return importlib.import_module(package_name)


def fill(old: ModuleType, path: Path) -> list[str]:
    """Two chats the previous release wrote: versions, a tool round, metrics, token choices,
    an unknown stats key, an interrupted reply. Returns their ids."""
    lib = importlib.import_module(f"{old.__name__}.conversations").Library(path)
    try:
        chat = lib.create(
            model="org/model",
            load_settings={"dtype": "bfloat16"},
            generation_settings={"temperature": 0.7},
            system_prompt="Be brief.",
        )
        question = lib.add_message(chat.id, "user", "What lights the day?")
        lib.add_message(chat.id, "assistant", "The moon, surely.", status="stopped", stats={"error": "oops"})
        lib.add_message(
            chat.id, "assistant", "The Sun.", question.id, stats={**METRICS, "logprobs": TOKEN_PROBS}
        )  # a regenerated version
        lib.add_message(chat.id, "assistant", "Let me add.", stats={**METRICS, "tool_calls": TOOL_CALLS})
        lib.add_message(chat.id, "tool", "42", stats=TOOL_RESULT)
        lib.add_message(chat.id, "assistant", "It is 42 and still sunny", status="interrupted")
        other = lib.create(title="Quiet chat")
        lib.add_message(other.id, "user", "Café crème ☕\nsecond line")
        return [chat.id, other.id]
    finally:
        lib.close()


def test_every_chat_and_message_of_the_previous_release_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = previous_store(tmp_path, monkeypatch)
    path = tmp_path / "library.sqlite3"
    ids = fill(old, path)
    old_lib = importlib.import_module(f"{old.__name__}.conversations").Library(path)
    old_files = importlib.import_module(f"{old.__name__}.files")
    before = {conv_id: (old_lib.get(conv_id), old_lib.messages(conv_id)) for conv_id in ids}
    old_exports = {
        conv_id: (old_files.export_json(conv), old_files.export_markdown(conv)) for conv_id, (conv, _) in before.items()
    }
    old_lib.close()

    with Library(path) as lib:
        for conv_id, (old_conv, old_messages) in before.items():
            conv = lib.get(conv_id)
            assert (
                conv.title,
                conv.created,
                conv.updated,
                conv.model,
                conv.load_settings,
                conv.generation_settings,
                conv.system_prompt,
            ) == (
                old_conv.title,
                old_conv.created,
                old_conv.updated,
                old_conv.model,
                old_conv.load_settings,
                old_conv.generation_settings,
                old_conv.system_prompt,
            )
            assert [m.id for m in conv.messages] == [m.id for m in old_conv.messages]  # the same active branch
            assert [
                (m.id, m.role, m.content, m.created, m.parent_id, m.status, m.meta.to_dict() or None)
                for m in lib.messages(conv_id)
            ] == [(m.id, m.role, m.content, m.created, m.parent_id, m.status, m.stats) for m in old_messages]
            # the active branch exports as it did; the exports now add the other versions
            active_only = replace(conv, other_versions=[])
            assert (export_json(active_only), export_markdown(active_only)) == old_exports[conv_id]
            assert {m.id for m in conv.other_versions} == {m.id for m in old_messages} - {m.id for m in conv.messages}

        chat = lib.messages(ids[0])
        assert chat[2].meta.metrics == ReplyMetrics(**METRICS) and chat[2].meta.token_probs == TOKEN_PROBS
        assert chat[3].meta.tool_calls == TOOL_CALLS
        assert chat[4].meta.tool_result == ToolResult(**TOOL_RESULT)
        assert chat[1].meta.extra == {"error": "oops"}

        assert [s.id for s in lib.search("moon")] == [ids[0]]  # an inactive version's text
        assert [s.id for s in lib.search("sunny")] == [ids[0]]
        assert [s.id for s in lib.search("creme")] == [ids[1]]
        assert [s.id for s in lib.search("quiet")] == [ids[1]]  # titles too
        lib.delete_message(chat[1].id)
        assert lib.search("moon") == []
        lib.update_message(chat[-1].id, content="It is 42 and cloudy")
        assert lib.search("sunny") == [] and [s.id for s in lib.search("cloudy")] == [ids[0]]
        lib.delete(ids[1])
        assert lib.search("creme") == []
    assert sqlite_user_version(path) == SCHEMA_VERSION


def sqlite_user_version(path: Path) -> int:
    return pragma(path, "user_version")


PARTS_MODULES = ("model", "schema", "conversations", "files", "parts", "meta", "rows")


def test_a_schema_4_library_migrates_and_then_stores_attachments_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = previous_store(tmp_path, monkeypatch, PARTS_RELEASE, PARTS_MODULES)
    path = tmp_path / "library.sqlite3"
    old_lib = importlib.import_module(f"{old.__name__}.conversations").Library(path)
    old_meta = importlib.import_module(f"{old.__name__}.meta")
    chat = old_lib.create(model="org/model", system_prompt="Be brief.")
    question = old_lib.add_message(chat.id, "user", "What lights the day?")
    old_lib.add_message(chat.id, "assistant", "The moon.", status="stopped")
    old_lib.add_message(chat.id, "assistant", "The Sun.", question.id, meta=old_meta.MessageMeta.from_dict({**METRICS}))
    before = [
        (m.id, m.role, m.content, m.created, m.parent_id, m.status, m.meta.to_dict()) for m in old_lib.messages(chat.id)
    ]
    old_leaf = [m.id for m in old_lib.get(chat.id).messages]
    old_lib.close()

    with Library(path) as lib:
        assert [
            (m.id, m.role, m.content, m.created, m.parent_id, m.status, m.meta.to_dict()) for m in lib.messages(chat.id)
        ] == before
        assert [m.id for m in lib.get(chat.id).messages] == old_leaf
        assert [s.id for s in lib.search("moon")] == [chat.id]

        image = ImagePart("dot.png", "image/png", b"\x89PNG not really")
        notes = FilePart("notes.md", "text/markdown", "# Plan\nbuy zucchini")
        lib.add_message(chat.id, "user", (image, notes, TextPart("And these?")))
        other = lib.create()
        lib.add_message(other.id, "user", (image, TextPart("Same picture")))
        assert blob_count(path) == 2  # the image once, the document once
        [*_, stored] = lib.get(chat.id).messages
        assert stored.parts == (image, notes, TextPart("And these?"))
        assert [s.id for s in lib.search("zucchini")] == [chat.id]  # words inside the document
        lib.delete(chat.id)
        assert blob_count(path) == 1  # the document is freed; the other chat still shows the image
        assert lib.search("zucchini") == []
        assert lib.get(other.id).messages[0].parts[0] == image
        lib.delete(other.id)
        assert blob_count(path) == 0
    assert sqlite_user_version(path) == SCHEMA_VERSION


def blob_count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])
    finally:
        db.close()


def test_a_schema_5_library_opens_with_every_message_and_attachment_and_then_shrinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last release's library: schema 6 adds the branch origin (none for its chats), and the
    one-time rewrite turns on auto-vacuum, so deleting the chat with the photo shrinks the file."""
    old = previous_store(tmp_path, monkeypatch, BLOBS_RELEASE, PARTS_MODULES)
    old_parts = importlib.import_module(f"{old.__name__}.parts")
    old_meta = importlib.import_module(f"{old.__name__}.meta")
    path = tmp_path / "library.sqlite3"
    old_lib = importlib.import_module(f"{old.__name__}.conversations").Library(path)
    photo = old_parts.ImagePart("photo.png", "image/png", os.urandom(4 * 2**20))
    notes = old_parts.FilePart("notes.md", "text/markdown", "# Plan\nbuy zucchini")
    chat = old_lib.create(model="org/model", system_prompt="Be brief.")
    question = old_lib.add_message(chat.id, "user", (photo, notes, old_parts.TextPart("What is this?")))
    old_lib.add_message(chat.id, "assistant", "A photo.", status="stopped")
    old_lib.add_message(chat.id, "assistant", "A plan.", question.id, meta=old_meta.MessageMeta.from_dict(METRICS))
    other = old_lib.create(title="Quiet chat")
    old_lib.add_message(other.id, "user", "Café crème")
    before = {
        conv_id: [(m.id, m.role, m.content, m.parent_id, m.status, m.meta.to_dict()) for m in old_lib.messages(conv_id)]
        for conv_id in (chat.id, other.id)
    }
    kinds = [type(part).__name__ for part in old_lib.messages(chat.id)[0].parts]
    old_lib.close()
    assert pragma(path, "auto_vacuum") == 0  # none: the file never shrank

    with Library(path) as lib:
        for conv_id, messages in before.items():
            assert [
                (m.id, m.role, m.content, m.parent_id, m.status, m.meta.to_dict()) for m in lib.messages(conv_id)
            ] == messages
            assert lib.get(conv_id).origin_id is None
        first = lib.messages(chat.id)[0]
        assert [type(part).__name__ for part in first.parts] == kinds == ["ImagePart", "FilePart", "TextPart"]
        assert first.parts[0].data == photo.data and first.parts[1].text == notes.text
        assert [s.id for s in lib.search("zucchini")] == [chat.id]
        full = path.stat().st_size
        lib.delete(chat.id)
    assert sqlite_user_version(path) == SCHEMA_VERSION
    assert path.stat().st_size < full - 3 * 2**20  # the photo's pages went back to the file system
    assert pragma(path, "auto_vacuum") == 2  # incremental, from now on


def pragma(path: Path, name: str) -> int:
    """A pragma's value, read through a connection closed at once (one left open would keep the
    WAL from being checkpointed, and the file from shrinking)."""
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        db.close()
