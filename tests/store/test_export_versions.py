"""Exports keep every version: after a regenerate and an edit, the JSON export holds the whole
message tree and imports back to the same tree (the same branch active, versions in their order);
the Markdown export shows the active branch and says how many other messages exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from samples import write

from tui.store import AutoSaver, Library, export_json, export_markdown, import_conversation
from tui.store.model import Message, versions_of


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "library.sqlite3")
    yield library
    library.close()


def contents(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


def branched(lib: Library) -> str:
    """Q → A1, regenerated as A2; then Q edited into Q2 → B (the active branch)."""
    conv = lib.create(model="m", title="Branches", created=1_700_000_000)
    question = lib.add_message(conv.id, "user", "Q", created=1_700_000_001)
    lib.add_message(conv.id, "assistant", "A1", created=1_700_000_002)
    lib.add_message(conv.id, "assistant", "A2", parent_id=question.id, created=1_700_000_003)
    lib.add_message(conv.id, "user", "Q2", parent_id=None, created=1_700_000_004)
    lib.add_message(conv.id, "assistant", "B", created=1_700_000_005)
    return conv.id


def test_json_export_keeps_the_whole_tree_and_imports_it_back(tmp_path: Path, lib: Library) -> None:
    conv = lib.get(branched(lib))
    assert contents(conv.messages) == ["Q2", "B"] and contents(conv.other_versions) == ["Q", "A1", "A2"]
    data = json.loads(export_json(conv))
    assert [m["content"] for m in data["messages"]] == ["Q2", "B"]
    assert [m["content"] for m in data["other_versions"]] == ["Q", "A1", "A2"]

    imported = import_conversation(write(tmp_path, export_json(conv)))
    new_id = lib.import_conversation(imported)
    again = lib.get(new_id)
    assert contents(again.messages) == ["Q2", "B"]  # the same branch is active
    tree = lib.messages(new_id)
    assert len(tree) == 5 and not {m.id for m in tree} & {m.id for m in lib.messages(conv.id)}
    first = again.messages[0]
    assert contents(versions_of(tree, first.id)) == ["Q", "Q2"]  # versions in their order
    question = next(m for m in tree if m.content == "Q")
    assert contents([m for m in tree if m.parent_id == question.id]) == ["A1", "A2"]
    # and a second export of the imported chat is the same tree again
    assert [m["content"] for m in json.loads(export_json(again))["other_versions"]] == ["Q", "A1", "A2"]


def test_a_chat_with_one_version_of_each_message_exports_as_before(lib: Library) -> None:
    conv = lib.create(model="m", title="Plain")
    lib.add_message(conv.id, "user", "Hi")
    data = json.loads(export_json(lib.get(conv.id)))
    assert "other_versions" not in data and list(data["messages"][0]) == [
        "role",
        "content",
        "created",
        "status",
        "stats",
    ]


def test_markdown_export_says_how_many_other_versions_exist(lib: Library) -> None:
    text = export_markdown(lib.get(branched(lib)))
    assert "**Other versions:** 3 messages not shown here (the JSON export has them)" in text
    assert "## User\n\nQ2" in text and "A1" not in text


def test_the_open_chat_knows_its_other_versions(tmp_path: Path) -> None:
    """What the app saves from (the AutoSaver's conversation) has them too, as they are written."""
    saver = AutoSaver(Library(tmp_path / "library.sqlite3"))
    saver.start(model="m")
    question = saver.user_message("Q")
    saver.assistant_message("A1")
    saver.assistant_message("A2", parent_id=question.id)
    conv = saver.conversation
    assert conv is not None
    assert contents(conv.messages) == ["Q", "A2"] and contents(conv.other_versions) == ["A1"]
