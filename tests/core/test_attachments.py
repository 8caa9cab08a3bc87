"""Files read into attachments, and a conversation's attachments through edits and deletes."""

from __future__ import annotations

import sqlite3

import pytest
from fakes import ScriptedEngine
from images import png

from tui.core.attachments import AttachmentError, fit_problem, read_attachment, resolve_path
from tui.core.chat_session import ChatSession
from tui.engine import LoadSettings
from tui.store import AutoSaver, Library
from tui.store.parts import FilePart, ImagePart, TextPart


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        ("table.csv", b"a,b\n1,2\n", "text/csv"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("notes.md", b"# Title", "text/markdown"),
        ("script.py", b"print('hi')\n", "text/x-python"),
        ("README", b"no suffix, plain UTF-8 text", "text/plain"),
        ("bom.txt", b"\xef\xbb\xbfwith a byte-order mark", "text/plain"),
    ],
)
def test_text_files_become_documents(tmp_path, name, data, mime):
    (tmp_path / name).write_bytes(data)
    part = read_attachment(tmp_path / name)
    assert isinstance(part, FilePart) and part.mime == mime and part.text == data.decode("utf-8-sig")


def test_an_image_is_kept_as_its_bytes_whatever_its_name(tmp_path):
    (tmp_path / "photo").write_bytes(png())  # no suffix: sniffed
    part = read_attachment(tmp_path / "photo")
    assert isinstance(part, ImagePart) and part.mime == "image/png" and part.data == png()


def test_text_in_older_encodings_is_read_and_binary_is_refused(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("name,price\ncafé,2€\n".encode("cp1252"))  # an older export
    assert read_attachment(tmp_path / "latin1.csv").text == "name,price\ncafé,2€\n"
    (tmp_path / "utf16.txt").write_bytes("naïve notes\n".encode("utf-16"))  # with its byte-order mark
    assert read_attachment(tmp_path / "utf16.txt").text == "naïve notes\n"
    (tmp_path / "data.bin").write_bytes(b"\x01\x02\x81\x8d\xff" * 200)  # not UTF-8, no NUL, controls: not text
    (tmp_path / "run.log").write_bytes(b"\x1b[32mPASSED\x1b[0m tests/test_a.py\n" * 20)  # UTF-8 with escape codes
    assert read_attachment(tmp_path / "run.log").text.startswith("\x1b[32mPASSED")
    with pytest.raises(AttachmentError, match="chatui cannot read .bin files"):
        read_attachment(tmp_path / "data.bin")
    (tmp_path / "fake.png").write_bytes(b"not an image at all")
    with pytest.raises(AttachmentError, match=r"^fake.png is not a readable image \(not a format Pillow knows\)$"):
        read_attachment(tmp_path / "fake.png")


def test_paths_as_users_type_and_paste_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("~/a b.png") == tmp_path / "a b.png"
    assert resolve_path("'/tmp/a b.png'") == resolve_path('"/tmp/a b.png"') == resolve_path("/tmp/a b.png")
    assert resolve_path("x.md", cwd=tmp_path) == tmp_path / "x.md"


def test_the_context_check_says_by_how_much():
    assert fit_problem(["a.md"], 100, 50, 1000, 200) is None
    line = fit_problem(["a.md", "b.pdf"], 900, 100, 1000, 200)
    assert line == (
        "a.md, b.pdf do not fit: the message takes 900 tokens, 200 more than the 700 left in the context "
        "(1,000 tokens, 100 used by the chat, 200 kept for the reply)"
    )
    assert fit_problem(["a.md"], 0, 0, 1000, 200) is None  # a backend that cannot count: no check
    assert fit_problem(["a.md"], 900, 100, 1000, 200).startswith("a.md does not fit: ")


def test_an_edit_keeps_the_attachments_and_a_reply_update_keeps_them_too(tmp_path):
    path = tmp_path / "library.sqlite3"
    engine = ScriptedEngine(images=True)
    engine.load(LoadSettings()).result()
    session = ChatSession(AutoSaver(Library(path)), backend=engine)
    session.new()
    image = ImagePart("a.png", "image/png", png())
    first = session.add_user_message("What is it?", attachments=[image])
    assert first.parts == (image, TextPart("What is it?"))
    edited = session.add_user_message("And now?", edit_of=first, attachments=[image])  # the chips kept
    assert edited.parts == (image, TextPart("And now?")) and edited.parent_id == first.parent_id
    bare = session.add_user_message("Without it", edit_of=first)  # its chip removed in the edit
    assert bare.parts == (TextPart("Without it"),)
    session.saver.update_message(edited.id, content="And now, really?")
    with Library(path) as library:
        stored = {message.id: message for message in library.messages(session.conversation.id)}
        assert stored[edited.id].parts == (image, TextPart("And now, really?"))
        library.delete_message(first.id)
        assert blobs(path) == 1  # the edit still shows the image
        library.delete_message(edited.id)
        assert blobs(path) == 0


def test_images_for_a_model_that_reads_text_only_are_refused(tmp_path):
    engine = ScriptedEngine()
    engine.load(LoadSettings()).result()
    session = ChatSession(AutoSaver.memory_only(), backend=engine)
    session.new()
    problem = session.attachment_problem([ImagePart("a.png", "image/png", png())], "Look")
    assert problem == "scripted-model reads text only: it cannot see a.png (load a vision model to send images)"
    assert session.attachment_problem([FilePart("a.md", "text/markdown", "short")], "Look") is None


def blobs(path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])
    finally:
        db.close()


def test_a_pdf_becomes_its_text(tmp_path):
    from images import pdf

    part = read_attachment(pdf(tmp_path / "report.pdf", "Quarterly figures (draft)"))
    assert isinstance(part, FilePart) and part.mime == "application/pdf"
    assert part.text == "Quarterly figures (draft)"
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really a pdf")
    with pytest.raises(AttachmentError, match="broken.pdf is not a readable PDF"):
        read_attachment(broken)


def test_files_dropped_on_a_terminal_are_read_from_what_it_pastes(tmp_path):
    from tui.core.attachments import dropped_files

    spaced = tmp_path / "blue copy.png"
    spaced.write_bytes(png())
    plain = tmp_path / "notes.md"
    plain.write_text("notes")
    escaped = str(spaced).replace(" ", "\\ ")
    assert dropped_files(str(spaced)) == [spaced]  # bare spaces
    assert dropped_files(f"'{spaced}'") == [spaced]  # quoted (GNOME Terminal)
    assert dropped_files(escaped + " ") == [spaced]  # escaped (macOS Terminal, iTerm2, kitty)
    assert dropped_files(f"file://{str(spaced).replace(' ', '%20')}") == [spaced]  # a URI
    assert dropped_files(f"{escaped} {plain}") == [spaced, plain]  # two files dropped at once
    assert dropped_files(f"file://{plain}\nfile://{str(spaced).replace(' ', '%20')}\n") == [plain, spaced]
    assert dropped_files(f"{plain} and some words") == []  # text that merely starts with a path
    assert dropped_files(str(tmp_path)) == []  # a folder
    assert dropped_files("notes.md", cwd=tmp_path) == []  # a bare word, even naming a file here
    assert dropped_files("file://otherhost/etc/passwd") == []
    comment = "/**\n * " + "A long documentation line " * 15 + "\n */"  # a name over 255 bytes: not a file
    assert dropped_files(comment) == [] and dropped_files("/" + "x" * 300) == []


def test_the_fit_check_counts_the_message_alone_when_the_chats_count_is_known(tmp_path):
    """The history (its images above all: a vision processor's work) is not counted again when the
    status bar already knows how much of the context the chat takes."""
    engine = ScriptedEngine(images=True)
    engine.load(LoadSettings()).result()
    counted: list[int] = []
    count = engine.count_tokens
    engine.count_tokens = lambda messages: counted.append(len(messages)) or count(messages)
    session = ChatSession(AutoSaver(Library(tmp_path / "library.sqlite3")), backend=engine)
    session.new()
    session.add_user_message("Look", attachments=[ImagePart("a.png", "image/png", png())])
    note = FilePart("notes.md", "text/markdown", "word " * 100)
    assert session.attachment_problem([note], "Sum it up", used=4000) is not None  # 4,096 - 4,000 left
    assert counted == [1]  # the message alone
    counted.clear()
    assert session.attachment_problem([note], "Sum it up") is None  # counted from the history
    assert counted == [1, 2]
