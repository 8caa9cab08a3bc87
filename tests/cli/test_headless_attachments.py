"""`chatui --prompt ... --image PATH --file PATH`: attachments go with the first turn; anything
that cannot be sent is one line and a non-zero exit before anything is sent or saved."""

from __future__ import annotations

import json

import pytest
from images import image_message, pdf, png
from processes import run_cli, subprocess_env

from tui.cli.main import main
from tui.store import Library

RED, BLUE = png((220, 20, 20)), png((20, 20, 220))


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command line in-process; it must exit 2 with one line on stderr and no reply."""
    code = main([*args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatui: ") and "Traceback" not in err, err
    return lines[0]


def test_an_image_and_a_document_go_with_the_first_turn_and_are_saved(tmp_path, tiny_vlm_dir):
    from engine.test_vision import reference_reply

    picture = tmp_path / "blue.png"
    picture.write_bytes(BLUE)
    notes = tmp_path / "notes.md"
    notes.write_text("# Shopping\n- zucchini\n")
    env = subprocess_env(tmp_path)
    result = run_cli(
        str(tiny_vlm_dir),
        "do_sample=false",
        "max_new_tokens=10",
        "--dtype",
        "float32",
        "--prompt",
        "What do you see?",
        "--image",
        str(picture),
        "--file",
        str(notes),
        "--prompt",
        "Thanks",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    expected = reference_reply(
        tiny_vlm_dir,
        [
            {
                "role": "user",
                "content": [
                    *image_message(BLUE, "", "blue.png")["content"][:1],
                    {"type": "text", "text": '<file name="notes.md">\n# Shopping\n- zucchini\n\n</file>'},
                    {"type": "text", "text": "What do you see?"},
                ],
            }
        ],
        max_new_tokens=10,
    )
    assert result.stdout.startswith(expected + "\n\n")  # the second turn follows
    without_document = reference_reply(tiny_vlm_dir, [image_message(BLUE, "What do you see?")], max_new_tokens=10)
    assert without_document != expected  # the model read the document
    with Library(tmp_path / "data" / "chatui" / "library.sqlite3") as library:
        [summary] = library.list()
        first, _, second, _ = library.get(summary.id).messages
        assert [part.kind for part in first.parts] == ["image", "file", "text"]
        assert first.parts[0].data == BLUE and first.parts[1].text == "# Shopping\n- zucchini\n"
        assert [part.kind for part in second.parts] == ["text"]  # only the first turn has them
        assert [s.id for s in library.search("zucchini")] == [summary.id]
    exported = json.loads(run_cli("--export", "last", env=env).stdout)
    assert exported["messages"][0]["content"][0]["type"] == "image_url"
    markdown = tmp_path / "out" / "chat.md"
    markdown.parent.mkdir()
    written = run_cli("--export", "last", "--format", "md", "-o", str(markdown), env=env)
    assert written.returncode == 0 and "and 1 image in chat_files/" in written.stdout, written.stderr
    [image_file] = (markdown.parent / "chat_files").iterdir()
    assert image_file.read_bytes() == BLUE
    imported = run_cli("--import", str(markdown), env=env)
    assert imported.returncode == 0, imported.stderr
    with Library(tmp_path / "data" / "chatui" / "library.sqlite3") as library:
        copy = library.get(library.resolve_id("last"))
        assert [part.kind for part in copy.messages[0].parts] == ["image", "file", "text"]
        assert copy.messages[0].parts[0].data == BLUE


def test_bad_attachments_are_refused_before_anything_loads(tmp_path, capsys):
    prompt = ("--prompt", "Look")
    assert "no such file" in refused(capsys, *prompt, "--image", str(tmp_path / "missing.png"))
    (tmp_path / "folder").mkdir()
    assert "is not a file" in refused(capsys, *prompt, "--file", str(tmp_path / "folder"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(RED[:60])
    assert "broken.png is not a readable image" in refused(capsys, *prompt, "--image", str(broken))
    text = tmp_path / "notes.txt"
    text.write_text("just text")
    assert "notes.txt is not an image" in refused(capsys, *prompt, "--image", str(text))
    locked = pdf(tmp_path / "locked.pdf", "secret plans", password="hunter2")
    assert "locked.pdf is an encrypted PDF" in refused(capsys, *prompt, "--file", str(locked))
    scanned = pdf(tmp_path / "scanned.pdf", None)
    assert "scanned.pdf has no text to read" in refused(capsys, *prompt, "--file", str(scanned))
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\x01\x02 binary")
    assert "chatui cannot read .bin files (data.bin)" in refused(capsys, *prompt, "--file", str(binary))
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as file:
        file.truncate(201 * 2**20)  # sparse: no disk used
    assert "huge.txt is 201 MB: attachments are limited to 200 MB" in refused(capsys, *prompt, "--file", str(huge))
    unreadable = tmp_path / "private.md"
    unreadable.write_text("secret")
    unreadable.chmod(0)
    try:
        with open(unreadable, "rb"):
            pass
    except PermissionError:
        assert "cannot read" in refused(capsys, *prompt, "--file", str(unreadable))
    finally:
        unreadable.chmod(0o600)
    with pytest.raises(SystemExit) as exited:
        main(["--image", str(broken)])
    assert exited.value.code == 2 and "attach to the first --prompt" in capsys.readouterr().err


def test_an_image_to_a_text_model_and_a_document_too_big_are_refused_after_the_load(tmp_path, capsys, tiny_model_dir):
    picture = tmp_path / "red.png"
    picture.write_bytes(RED)
    saved = Library().count()
    line = refused(capsys, str(tiny_model_dir), "--prompt", "Look", "--image", str(picture))
    assert "reads text only: it cannot see red.png" in line
    long = tmp_path / "long.txt"
    long.write_text("word " * 1000)  # about twice the tiny model's 512 tokens: counted
    line = refused(capsys, str(tiny_model_dir), "max_new_tokens=16", "--prompt", "Sum up", "--file", str(long))
    assert "long.txt does not fit" in line and "more than the" in line and "left in the context (512 tokens" in line
    huge = tmp_path / "huge.txt"
    huge.write_text("word " * 200_000)  # a million characters: refused at once, without tokenizing it
    line = refused(capsys, str(tiny_model_dir), "--prompt", "Sum up", "--file", str(huge))
    assert line.endswith(
        "huge.txt does not fit: 1,000,000 characters are far more than the model's context of 512 tokens "
        "can hold (attach a part of it)"
    )
    assert Library().count() == saved  # nothing was saved
