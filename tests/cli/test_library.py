"""`chatui --list / --export / --import` (tui/library_cli.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import ROOT, library_file, subprocess_env
from samples import shape, write

from tui.cli.library import export_command, import_command, list_command
from tui.store import Library
from tui.store.meta import MessageMeta


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data" / "library.sqlite3")
    yield library
    library.close()


def test_list_command(lib: Library) -> None:
    out = io.StringIO()
    assert list_command(lib, out) == 0
    assert out.getvalue() == "no conversations yet\n"

    first = lib.create(model="org/a-long-model-name")
    lib.add_message(first.id, "user", "Hello \x1b[2J there")
    lib.add_message(first.id, "assistant", "Hi")
    second = lib.create()
    lib.add_message(second.id, "user", "Second")
    out = io.StringIO()
    assert list_command(lib, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "MSGS", "MODEL", "TITLE"]
    assert lines[1].startswith(second.id[:8]) and lines[2].startswith(first.id[:8])
    assert lines[1].endswith("Second") and lines[2].endswith("Hello ␛[2J there")
    title_column = lines[0].index("TITLE")
    assert lines[1][title_column:] == "Second"
    assert "org/a-long-model-name" in lines[2] and " 2  " in lines[2]


def test_export_command(tmp_path: Path, lib: Library) -> None:
    conv = lib.create(model="m")
    lib.add_message(conv.id, "user", "Export me")
    out, err = io.StringIO(), io.StringIO()
    assert export_command(lib, conv.id[:6], "json", None, out, err) == 0
    assert json.loads(out.getvalue())["title"] == "Export me"

    out = io.StringIO()
    target = tmp_path / "chat.md"
    assert export_command(lib, "last", "md", target, out, err) == 0
    assert "\n# Export me\n" in target.read_text(encoding="utf-8")
    assert str(target) in out.getvalue()

    for ref, fmt in (("nope", "json"), ("ffffffff", "md"), (conv.id, "pdf")):
        err = io.StringIO()
        assert export_command(lib, ref, fmt, None, io.StringIO(), err) == 2
        assert err.getvalue().startswith("chatui: ")

    err = io.StringIO()
    assert export_command(lib, "last", "md", tmp_path / "no" / "dir.md", io.StringIO(), err) == 1
    assert err.getvalue().startswith("chatui: cannot write")


def test_import_command(tmp_path: Path, lib: Library) -> None:
    good = write(tmp_path, [{"role": "user", "content": "imported hello"}])
    out, err = io.StringIO(), io.StringIO()
    assert import_command(lib, good, out, err) == 0
    new_id = out.getvalue().strip()
    assert lib.get(new_id).title == "imported hello"
    assert [s.id for s in lib.search("imported")] == [new_id]

    out, err = io.StringIO(), io.StringIO()
    assert import_command(lib, write(tmp_path, b"\xff", "bad.json"), out, err) == 2
    assert err.getvalue().startswith("chatui: bad.json: not UTF-8")
    assert out.getvalue() == "" and lib.count() == 1


def test_export_then_import_command(tmp_path: Path, lib: Library) -> None:
    conv = lib.create(model="m", generation_settings={"top_k": 3})
    lib.add_message(conv.id, "user", "round")
    lib.add_message(conv.id, "assistant", "trip", status="failed", meta=MessageMeta(extra={"error": "oom"}))
    target = tmp_path / "c.json"
    assert export_command(lib, "last", "json", target, io.StringIO(), io.StringIO()) == 0
    out = io.StringIO()
    assert import_command(lib, target, out, io.StringIO()) == 0
    copy = lib.get(out.getvalue().strip())
    assert shape(copy) == shape(lib.get(conv.id))
    assert os.path.exists(target)


def test_list_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`chatui --list | head -1` used to end with a BrokenPipeError traceback and exit 1."""
    env = subprocess_env(tmp_path)
    with Library(library_file(tmp_path)) as library:
        for n in range(3000):  # far more than a pipe buffer holds
            library.add_message(library.create(title=f"Conversation number {n} with a long title").id, "user", "hi")
    shell = subprocess.run(
        f'{sys.executable} -m tui --list | head -1; echo "rc=${{PIPESTATUS[0]}}" >&2',
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.stdout.split() == ["ID", "UPDATED", "MSGS", "MODEL", "TITLE"]
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr
    assert shell.stderr.strip().endswith("rc=0")


def test_tf_chat_export_is_what_transformers_chat_saves_and_reads_back(tmp_path: Path, lib: Library) -> None:
    conv = lib.create(
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        system_prompt="Be brief.",
        generation_settings={"do_sample": False, "max_new_tokens": 64, "num_beams": 2},
    )
    lib.add_message(conv.id, "user", "Hello")
    lib.add_message(conv.id, "assistant", "Hi! How can I help?")
    target = tmp_path / "saved.json"
    assert export_command(lib, "last", "tf-chat", target, io.StringIO(), io.StringIO()) == 0
    data = json.loads(target.read_text(encoding="utf-8"))
    assert set(data) == {"settings", "chat_history"}  # as transformers chat's save_chat writes it
    assert data["settings"]["model_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    config = data["settings"]["config"]
    assert config["num_beams"] == 2 and config["max_new_tokens"] == 64 and "transformers_version" in config
    assert data["chat_history"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
    ]
    out = io.StringIO()
    assert import_command(lib, target, out, io.StringIO()) == 0
    back = lib.get(out.getvalue().strip())
    assert [(m.role, m.content) for m in back.messages] == [("user", "Hello"), ("assistant", "Hi! How can I help?")]
    assert back.system_prompt == "Be brief." and back.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert back.generation_settings["num_beams"] == 2 and back.generation_settings["max_new_tokens"] == 64
