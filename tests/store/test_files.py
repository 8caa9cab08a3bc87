"""Export, import (our JSON, `transformers chat` saves, OpenAI-style lists) and the atomic writer."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import sample, shape, write

from tui.store import (
    Conversation,
    ImportFormatError,
    Library,
    export_json,
    export_markdown,
    export_tf_chat,
    import_conversation,
    write_file_atomic,
)
from tui.store.meta import MessageMeta
from tui.store.model import Message

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data" / "library.sqlite3")
    yield library
    library.close()


# -- round trips -------------------------------------------------------------------------------


def test_export_json_round_trip(tmp_path: Path, lib: Library) -> None:
    conv = sample(contents=("Hi", "Hello!", "Más ☃ 🍝\nline two", "stopped reply"))
    text = export_json(conv)
    data = json.loads(text)
    assert (data["format"], data["version"], data["id"]) == ("chatui.conversation", 1, conv.id)
    assert list(data["messages"][0]) == ["role", "content", "created", "status", "stats"]

    imported = import_conversation(write(tmp_path, text))
    assert shape(imported) == shape(conv)
    assert imported.id != conv.id
    assert [m.parent_id for m in imported.messages] == [None] + [m.id for m in imported.messages[:-1]]

    stored = lib.get(lib.import_conversation(imported))
    assert shape(stored) == shape(conv)


@FUZZ
@given(title=st.text(), system_prompt=st.none() | st.text(), contents=st.lists(st.text(), max_size=5).map(tuple))
def test_export_json_round_trip_any_text(
    tmp_path: Path, lib: Library, title: str, system_prompt: str | None, contents: tuple[str, ...]
) -> None:
    conv = sample(title, contents, system_prompt)
    imported = import_conversation(write(tmp_path, export_json(conv)))
    assert shape(imported) == shape(conv)
    stored = lib.get(lib.import_conversation(imported))
    assert shape(stored)[1:] == shape(conv)[1:]
    assert stored.title == (title.strip() or "New chat")  # the library trims titles


def test_export_json_is_strict_json_and_inert(tmp_path: Path) -> None:
    conv = sample(contents=("a\x1b[2J\x9b31m", "b"))
    conv.messages[1].meta = MessageMeta(extra={"tps": float("inf"), "nan": float("nan")})
    text = export_json(conv)
    assert "\x1b" not in text and "\x9b" not in text
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in export"))
    assert data["messages"][0]["content"] == "a\x1b[2J\x9b31m"
    assert data["messages"][1]["stats"] == {"tps": None, "nan": None}


# -- foreign formats ---------------------------------------------------------------------------


def test_import_transformers_chat_save(tmp_path: Path) -> None:
    """transformers 5 `!save`: {"settings": {"base_url", "model_id", "config"}, "chat_history"}."""
    data = {
        "settings": {
            "base_url": "http://localhost:8000",
            "model_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "config": {
                "max_new_tokens": 256,
                "do_sample": True,
                "temperature": 0.6,
                "top_p": 0.95,
                "eos_token_id": [1, 2],
                "_from_model_config": False,
            },
        },
        "chat_history": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ],
    }
    conv = import_conversation(write(tmp_path, data))
    assert conv.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert conv.generation_settings == {
        "max_new_tokens": 256,
        "do_sample": True,
        "temperature": 0.6,
        "top_p": 0.95,
        "eos_token_id": [1, 2],
    }
    assert conv.system_prompt == "You are terse."
    assert [(m.role, m.content) for m in conv.messages] == [("user", "Name a colour."), ("assistant", "Blue.")]
    assert conv.title == "Name a colour."


def test_import_older_transformers_chat_save(tmp_path: Path) -> None:
    """Older releases saved the ChatArguments: model_name_or_path and the flags side by side."""
    data = {
        "settings": {
            "model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "user": "me",
            "system_prompt": "Be kind.",
            "max_new_tokens": 64,
            "do_sample": False,
            "num_beams": 1,
            "temperature": 1.0,
            "top_k": 50,
            "top_p": 1.0,
            "repetition_penalty": 1.0,
            "save_folder": "./chat_history/",
        },
        "chat_history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    conv = import_conversation(write(tmp_path, data))
    assert conv.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert conv.system_prompt == "Be kind."
    assert conv.generation_settings == {
        "max_new_tokens": 64,
        "do_sample": False,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
        "repetition_penalty": 1.0,
    }  # num_beams: not ours
    assert [m.content for m in conv.messages] == ["hi", "hello"]


def test_import_openai_lists(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "2+2?", "name": "bob"}, {"role": "assistant", "content": "4"}]
    bare = import_conversation(write(tmp_path, messages, "bare.json"))
    assert [(m.role, m.content) for m in bare.messages] == [("user", "2+2?"), ("assistant", "4")]
    assert (bare.model, bare.system_prompt, bare.generation_settings) == (None, None, {})

    wrapped = import_conversation(write(tmp_path, {"model": "gpt-x", "messages": messages}, "w.json"))
    assert wrapped.model == "gpt-x"
    assert [m.content for m in wrapped.messages] == ["2+2?", "4"]

    with_bom = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(messages).encode(), "bom.json")
    assert len(import_conversation(with_bom).messages) == 2


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (("[" * 70 + '{"role": "user", "content": "x"}' + "]" * 70).encode(), "nested too deeply"),
        (b"1" * 5000, "not valid JSON"),
        (b'[{"role": "user", "content": NaN}]', "NaN"),
        (b'"just a string"', "not a conversation"),
        (b'{"hello": "world"}', "not a conversation"),
        (b'[{"role": "function", "content": "x"}]', "unknown role 'function'"),
        (b'[{"role": "user", "content": null}]', "content must be a string"),
        (
            b'[{"role": "user", "content": [{"type": "input_audio", "text": "hi"}]}]',
            "unknown content part 'input_audio'",
        ),
        (
            b'[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]',
            "an image must be a base64 data URL",
        ),
        (b'[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]', "an image without a URL"),
        (b'[{"role": "user"}]', "content must be a string"),
        (b'["user", "hi"]', "expected an object"),
        (b'{"messages": "hi"}', "must be a list"),
        (b'{"chat_history": [], "settings": []}', "'settings' must be an object"),
        (b'[{"role": "user", "content": "\\ud800"}]', "not valid Unicode"),
        (
            b'[{"role": "user", "content": [{"type": "text", "text": "<file name=\\"a\\">\\n\\ud800\\n</file>"}]}]',
            "not valid Unicode",
        ),
        (b'{"format": "chatui.conversation", "version": 2, "messages": []}', "unsupported"),
        (b'{"format": "chatui.conversation", "version": true, "messages": []}', "unsupported"),
        (b'{"format": "chatui.conversation", "version": 1, "title": 5}', "'title' must be a string"),
        (b'{"format": "chatui.conversation", "version": 1, "created": "yesterday"}', "'created'"),
        (b'{"format": "chatui.conversation", "version": 1, "created": true}', "'created'"),
        (b'{"format": "chatui.conversation", "version": 1, "created": 1' + b"0" * 400 + b"}", "not a finite number"),
        (
            b'{"format": "chatui.conversation", "version": 1, "messages": [{"role": "user", '
            b'"content": "x", "status": "great"}]}',
            "message 1: unknown status",
        ),
        (
            b'{"format": "chatui.conversation", "version": 1, "messages": [{"role": "user", '
            b'"content": "x", "stats": [1]}]}',
            "'stats' must be an object",
        ),
        (
            b'{"format": "chatui.conversation", "version": 1, "generation_settings": null}',
            "'generation_settings' must be an object",
        ),
    ],
)
def test_import_rejects_bad_files(tmp_path: Path, data: bytes, problem: str) -> None:
    with pytest.raises(ImportFormatError) as excinfo:
        import_conversation(write(tmp_path, data, "bad.json"))
    message = str(excinfo.value)
    assert message.startswith("bad.json: ") and problem in message


def test_import_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="missing.json: cannot read"):
        import_conversation(tmp_path / "missing.json")
    with pytest.raises(ImportFormatError, match="cannot read"):
        import_conversation(tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "messages",
                    "chat_history",
                    "settings",
                    "format",
                    "version",
                    "title",
                    "created",
                    "status",
                    "stats",
                    "model_id",
                    "config",
                    "temperature",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool"]) | json_values,
        "content": st.text() | json_values,
    },
    optional={
        "status": st.sampled_from(["ok", "stopped", "x"]) | json_values,
        "stats": json_values,
        "created": json_values,
    },
)
documents = (
    json_values
    | st.lists(message_like, max_size=4)
    | st.fixed_dictionaries(
        {
            "format": st.just("chatui.conversation"),
            "version": st.just(1) | json_values,
            "messages": st.lists(message_like, max_size=3) | json_values,
        },
        optional={"title": json_values, "created": json_values, "model": json_values, "load_settings": json_values},
    )
    | st.fixed_dictionaries(
        {"chat_history": st.lists(message_like, max_size=3) | json_values},
        optional={"settings": json_values | st.fixed_dictionaries({"config": json_values})},
    )
)


def check_import(path: Path) -> None:
    try:
        result = import_conversation(path)
    except ImportFormatError as error:
        assert str(error).startswith(f"{path.name}: ")
        assert "cannot import (" not in str(error), "an unexpected exception was wrapped"
    else:
        assert isinstance(result, Conversation)


@FUZZ
@given(document=documents)
def test_fuzz_import_json_structures(tmp_path: Path, document: Any) -> None:
    check_import(write(tmp_path, json.dumps(document), "fuzz.json"))


@FUZZ
@given(
    data=st.binary(max_size=200)
    | st.text().map(lambda text: text.encode("utf-8", "surrogatepass"))
    | documents.map(lambda doc: json.dumps(doc).encode()[:-1])
)
def test_fuzz_import_bytes(tmp_path: Path, data: bytes) -> None:
    check_import(write(tmp_path, data, "fuzz.bin"))


# -- markdown ----------------------------------------------------------------------------------


def test_export_markdown_layout() -> None:
    conv = sample(contents=("Question?", "Answer.", "More?", "Partial"))
    text = export_markdown(conv)
    assert text.startswith("<!-- chatui:conversation {")  # hidden when rendered
    assert "\n# Sample\n" in text
    assert "- **Model:** org/model" in text
    assert "temperature=0.7" in text and "do_sample=true" in text and "seed=null" in text
    assert "## System prompt\n\nBe nice." in text
    assert text.count("## User") == 2 and text.count("## Assistant") == 2
    assert text.index("Question?") < text.index("Answer.") < text.index("More?")
    assert "*(stopped)*" in text


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[2J",
        "\x1b]52;c;SGVsbG8=\x07",
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
        "\x07",
        "\x08\x08\x08",
        "over\rwrite",
        "\x9b2J",
        "\x00",
        "\x7f",
    ],
)
def test_export_markdown_neutralises_terminal_controls(hostile: str) -> None:
    conv = sample(title=f"T{hostile}", contents=(f"user {hostile}", f"bot {hostile}"), system_prompt=hostile)
    conv.model = f"m{hostile}"
    conv.generation_settings = {"k": hostile}
    text = export_markdown(conv)
    controls = [ch for ch in text if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F]
    assert controls == []
    assert "user " in text


@FUZZ
@given(title=st.text(), system_prompt=st.none() | st.text(), contents=st.lists(st.text(), max_size=5).map(tuple))
def test_export_markdown_round_trip_any_text(
    tmp_path: Path, title: str, system_prompt: str | None, contents: tuple[str, ...]
) -> None:
    conv = sample(title, contents, system_prompt)
    imported = import_conversation(write(tmp_path, export_markdown(conv), "chat.md"))
    assert shape(imported) == shape(conv)


def test_export_markdown_shows_line_breaks_as_written_and_reads_back(tmp_path: Path) -> None:
    poem = "Roses are red,\nViolets are blue.\n\n- a list\n- stays a list\n\n```\ncode\nstays\n```"
    conv = sample(contents=("Name three colors.", "Here are three colors:\n\nRed: Red\nBlue: Blue\nGreen: Green", poem))
    text = export_markdown(conv)
    assert "Red: Red\\\nBlue: Blue\\\nGreen: Green\n" in text  # hard breaks: a viewer keeps the lines
    assert "Roses are red,\\\nViolets are blue.\n" in text
    assert "- a list\n- stays a list\n" in text and "```\ncode\nstays\n```" in text  # untouched
    assert [m.content for m in import_conversation(write(tmp_path, text, "c.md")).messages] == list(conv_contents(conv))


def conv_contents(conv):
    return (m.content for m in conv.messages)


def test_markdown_that_chatui_did_not_write_or_that_was_edited_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="notes.md: a Markdown file chatui did not write"):
        import_conversation(write(tmp_path, "# My notes\n\nsome text\n", "notes.md"))
    text = export_markdown(sample(contents=("Red: Red\nBlue: Blue",)))
    edited = text.replace("Red: Red\\\n", "Red: Red\n")
    with pytest.raises(ImportFormatError, match="the file was changed"):
        import_conversation(write(tmp_path, edited, "edited.md"))


def test_export_markdown_keeps_text_readable() -> None:
    conv = sample(contents=("tab\there\r\nwindows line", "\x1b[31mred\x1b[0m"))
    text = export_markdown(conv)
    assert "tab\there\\\nwindows line" in text  # CRLF is LF, the line break a hard one
    assert "␛[31mred␛[0m" in text


# -- files -------------------------------------------------------------------------------------


def test_write_file_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    target.write_text("old")
    target.chmod(0o644)
    write_file_atomic(target, "new ☃\n")
    assert target.read_text(encoding="utf-8") == "new ☃\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]  # no temporary file left
    with pytest.raises(OSError):
        write_file_atomic(tmp_path / "missing" / "x.md", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]


def test_a_pipe_or_device_is_written_not_replaced(tmp_path: Path) -> None:
    """`chatui --export last -o /dev/null` (or a named pipe) writes into it: renaming a temporary
    file over it, as root, would turn /dev/null into a plain file."""
    import os
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_file_atomic(pipe, "through the pipe")
    reader.join(5)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # still a pipe
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def attached_conversation() -> Conversation:
    from images import png

    from tui.store.parts import FilePart, ImagePart, TextPart

    parts = (
        ImagePart("red dot.png", "image/png", png((200, 0, 0))),
        FilePart("notes.md", "text/markdown", "# Plan\n```\ncode\n```\nbuy zucchini"),
        TextPart("What about these?"),
    )
    conv = sample()
    first = conv.messages[0]
    conv.messages[0] = Message(first.id, "user", parts, first.created, None)
    return conv


def test_json_export_carries_images_as_data_urls_and_documents_as_name_and_text(tmp_path):
    conv = attached_conversation()
    data = json.loads(export_json(conv))
    image, document, text = data["messages"][0]["content"]
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")
    assert document == {"type": "text", "text": '<file name="notes.md">\n# Plan\n```\ncode\n```\nbuy zucchini\n</file>'}
    assert text == {"type": "text", "text": "What about these?"}
    assert isinstance(data["messages"][1]["content"], str)  # text-only messages stay strings
    path = tmp_path / "chat.json"
    path.write_text(export_json(conv))
    back = import_conversation(path)
    assert back.messages[0].parts == conv.messages[0].parts
    assert [m.content for m in back.messages] == [m.content for m in conv.messages]


def test_markdown_export_writes_images_beside_the_file_and_reads_them_back(tmp_path):
    from tui.store.exports import markdown_images

    conv = attached_conversation()
    text = export_markdown(conv, "chat_files")
    images = markdown_images(conv, "chat_files")
    [(relative, data)] = images.items()
    assert f"![red dot.png](<{relative}>)" in text and relative.startswith("chat_files/") and relative.endswith(".png")
    assert "<details><summary>notes.md</summary>" in text and "buy zucchini" in text
    path = tmp_path / "chat.md"
    path.write_text(text)
    (tmp_path / "chat_files").mkdir()
    (tmp_path / relative).write_bytes(data)
    back = import_conversation(path)
    assert back.messages[0].parts == conv.messages[0].parts
    assert [m.content for m in back.messages] == [m.content for m in conv.messages]
    (tmp_path / relative).unlink()
    with pytest.raises(ImportFormatError, match="cannot read the image chat_files/"):
        import_conversation(path)


def test_tf_chat_export_has_images_as_the_chat_template_takes_them(tmp_path):
    conv = attached_conversation()
    data = json.loads(export_tf_chat(conv, {}))
    user = next(turn for turn in data["chat_history"] if turn["role"] == "user")
    assert user["content"][0]["type"] == "image" and user["content"][0]["url"].startswith("data:image/png;base64,")
    path = tmp_path / "tf.json"
    path.write_text(json.dumps(data))
    back = import_conversation(path)
    image, original = back.messages[0].parts[0], conv.messages[0].parts[0]
    assert (image.kind, image.data, image.mime) == ("image", original.data, "image/png")
    assert back.messages[0].parts == conv.messages[0].parts  # the image's name and the document come back


def test_tf_chat_import_reads_documents_out_of_string_content(tmp_path):
    """A text-only message with a document is one string in a tf-chat save, as the model read it."""
    conv = attached_conversation()
    user = conv.messages[0]
    conv.messages[0] = Message(user.id, "user", user.parts[1:], user.created, None)  # the document and text
    data = json.loads(export_tf_chat(conv, {}))
    content = next(turn for turn in data["chat_history"] if turn["role"] == "user")["content"]
    assert isinstance(content, str) and content.startswith('<file name="notes.md">')
    path = tmp_path / "tf.json"
    path.write_text(json.dumps(data))
    assert import_conversation(path).messages[0].parts == conv.messages[0].parts
