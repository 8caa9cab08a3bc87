"""Conversations as files to share: JSON and Markdown export; import of both, of the JSON that
`transformers chat` `!save` writes and of OpenAI-style message lists; an atomic writer.

A Markdown export reads well anywhere (line breaks as the model wrote them, as hard breaks) and
reads back exactly: an HTML comment before the title and before each message (invisible when
rendered) holds what the text does not show, and where to find each message's text."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from tui.paths import write_atomic
from tui.store.file_parts import (
    PartError,
    attachments_from_markdown,
    comment_json,
    finite,
    markdown_attachments,
    openai_content,
    parts_from_openai,
    template_history,
)
from tui.store.file_reading import ImportProblem, fail, json_of, read_text, reject_constant
from tui.store.meta import TOKEN_PROBS_KEY, MessageMeta
from tui.store.model import (
    DEFAULT_TITLE,
    ROLES,
    STATUSES,
    Conversation,
    Message,
    model_history,
    new_id,
    title_from,
)
from tui.store.parts import Part, text_of
from tui.text import inert, soft_break_lines

FORMAT = "chatui.conversation"
VERSION = 1

_C1 = re.compile("[\x7f-\x9f]")


class ImportFormatError(ValueError):
    """A file that cannot be imported; the message starts with the file name and says why."""


# ---------------------------------------------------------------------------------------------
# Export


def _stats(meta: MessageMeta) -> dict[str, Any] | None:
    """A message's meta as the files' "stats" (null when there is none)."""
    return meta.to_dict() or None


def _entry(message: Message, tree: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "role": message.role,
        "content": openai_content(message.parts),
        "created": message.created,
        "status": message.status,
        "stats": _stats(message.meta),
    }
    return entry | ({"id": message.id, "parent_id": message.parent_id} if tree else {})


def export_json(conv: Conversation) -> str:
    """The conversation in chatui's JSON format: the active branch in "messages", and when there
    are others, every other version in "other_versions" (each message then with its id and its
    parent's). C1 control characters are written as \\u escapes: the text is inert in a terminal."""
    tree = bool(conv.other_versions)
    data = {
        "format": FORMAT,
        "version": VERSION,
        "id": conv.id,
        "title": conv.title,
        "created": conv.created,
        "updated": conv.updated,
        "model": conv.model,
        "load_settings": conv.load_settings,
        "generation_settings": conv.generation_settings,
        "system_prompt": conv.system_prompt,
        "messages": [_entry(m, tree) for m in conv.messages],
    }
    if conv.origin_id:  # a branch: where it came from
        data["origin"] = {"conversation_id": conv.origin_id, "message_id": conv.origin_message_id}
    if tree:
        data["other_versions"] = [_entry(m, tree) for m in conv.other_versions]
    text = json.dumps(finite(data), ensure_ascii=False, indent=2, allow_nan=False)
    return _C1.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"


EXPORT_FORMATS = ("json", "md", "tf-chat")


def export_as(conv: Conversation, fmt: str) -> str:
    """`conv` as chatui JSON ("json"), Markdown ("md") or `transformers chat`'s JSON ("tf-chat")."""
    if fmt == "tf-chat":
        from tui.engine.generation_config import config_dict  # imports transformers: only for this format
        from tui.engine.settings import GenerationSettings, SettingsError

        try:
            settings = GenerationSettings().with_updates(conv.generation_settings or {})
        except SettingsError:
            settings = GenerationSettings()
        return export_tf_chat(conv, config_dict(settings.generate_kwargs()))
    return export_json(conv) if fmt == "json" else export_markdown(conv)


def export_tf_chat(conv: Conversation, config: dict[str, Any]) -> str:
    """The JSON `transformers chat` writes with `!save`: `{"settings": {...}, "chat_history":
    [...]}`, `config` being the whole GenerationConfig dict (tui.engine.generation_config)."""
    history = template_history(model_history(conv.system_prompt or "", conv.messages))
    data = {"settings": {"base_url": None, "model_id": conv.model, "config": config}, "chat_history": history}
    return json.dumps(finite(data), ensure_ascii=False, indent=4) + "\n"


def _with_hard_breaks(content: str) -> tuple[str, list[int]]:
    """`content` with a backslash (a Markdown hard break) at the end of each line a viewer would
    join to the next, and the numbers of those lines."""
    lines = content.split("\n")
    marked = [n for n in soft_break_lines(content) if n < len(lines) - 1]
    for n in marked:
        lines[n] += "\\"
    return "\n".join(lines), marked


def export_markdown(conv: Conversation, folder: str = "images") -> str:
    """A readable transcript: title, settings, then one section per message. Terminal control
    characters are neutralised (see `tui.text.inert`), so `cat`-ing the file is harmless. Images
    link into `folder` beside the file (`markdown_images` says what goes there)."""
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(conv.created))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "title": conv.title,
        "created": conv.created,
        "updated": conv.updated,
        "model": conv.model,
        "load_settings": conv.load_settings,
        "generation_settings": conv.generation_settings,
        "system_prompt": conv.system_prompt,
    }
    parts = [
        f"{MARKDOWN_MARK}conversation {comment_json(header)} -->\n",
        inert(f"# {' '.join(conv.title.split())}\n\n- **Model:** {conv.model or 'default'}\n- **Date:** {date}\n"),
    ]
    if conv.generation_settings:
        settings = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in conv.generation_settings.items()
        )
        parts.append(inert(f"- **Generation settings:** {settings}\n"))
    if conv.other_versions:  # the visible versions only: the JSON export keeps every one
        count = len(conv.other_versions)
        parts.append(
            f"- **Other versions:** {count} message{'s' * (count > 1)} not shown here (the JSON export has them)\n"
        )
    if conv.system_prompt:
        system = _with_hard_breaks(conv.system_prompt.replace("\r\n", "\n"))[0]
        parts.append("\n## System prompt\n\n" + inert(system) + "\n")
    for message in conv.messages:
        lf = message.content.replace("\r\n", "\n")
        text, breaks = _with_hard_breaks(lf)
        shown = inert(text)
        stats = _stats(message.meta)
        if stats and TOKEN_PROBS_KEY in stats:  # token probabilities go to the JSON export only
            stats = {key: value for key, value in stats.items() if key != TOKEN_PROBS_KEY}
        meta = {
            "role": message.role,
            "status": message.status,
            "created": message.created,
            "stats": stats,
            "chars": len(shown),
            "breaks": breaks,
        }
        if shown != text or lf != message.content:  # control characters were changed: keep the exact text
            meta["content"] = message.content
        attached, recorded = markdown_attachments(message.parts, folder)
        meta |= {"attachments": recorded} if recorded else {}
        parts.append(f"\n{MARKDOWN_MARK}message {comment_json(meta)} -->\n## {message.role.capitalize()}\n\n")
        parts.append(shown + "\n" + inert(attached))
        if message.status != "ok":
            parts.append(f"\n*({message.status})*\n")
    return "".join(parts)


MARKDOWN_MARK = "<!-- chatui:"
_MARKER = re.compile(r"^<!-- chatui:(conversation|message) (\{.*\}) -->\n", re.M)


def _from_markdown(text: str, base: Path) -> Conversation:
    """A conversation from chatui's own Markdown export."""
    header = _MARKER.match(text)
    if header is None or header.group(1) != "conversation":
        fail("a Markdown file chatui did not write (chatui reads back its own Markdown exports)")
    data = _marker_json(header)
    messages: list[dict[str, Any]] = []
    position = header.end()
    while (found := _MARKER.search(text, position)) is not None:
        if found.group(1) != "message":
            fail(f"a second conversation header at character {found.start()}")
        meta = _marker_json(found)
        heading_end = text.find("\n\n", found.end())
        chars = meta.get("chars")
        if heading_end < 0 or not isinstance(chars, int) or chars < 0:
            fail(f"message {len(messages) + 1}: its text cannot be found")
        start = heading_end + 2
        shown, position = text[start : start + chars], start + chars
        if isinstance(meta.get("content"), str):
            content = meta["content"]
        else:
            lines = shown.split("\n")
            for n in meta.get("breaks") or []:
                if not (isinstance(n, int) and 0 <= n < len(lines) and lines[n].endswith("\\")):
                    fail(f"message {len(messages) + 1}: the file was changed (line breaks do not match)")
                lines[n] = lines[n][:-1]
            content = "\n".join(lines)
        try:
            attached = attachments_from_markdown(meta.get("attachments"), base)
        except PartError as error:
            fail(f"message {len(messages) + 1}: {error}")
        messages.append(
            {key: meta.get(key) for key in ("role", "status", "created", "stats")}
            | {"content": content, "with": attached}
        )
    return _from_chatui(data | {"messages": messages})


def _marker_json(found: re.Match[str]) -> dict[str, Any]:
    try:
        data = json.loads(found.group(2), parse_constant=reject_constant)
    except ValueError as error:
        fail(f"a damaged chatui comment at character {found.start()} ({error})")
    if not isinstance(data, dict):
        fail(f"a damaged chatui comment at character {found.start()}")
    return data


def write_file_atomic(path: Path, text: str) -> None:
    """Write `text` as UTF-8 to `path` through a temporary file in the same folder and
    `os.replace`, so readers see the old file or the whole new one; the file gets mode 0o600."""
    write_atomic(Path(path), lambda file: file.write(text.encode("utf-8")))


# ---------------------------------------------------------------------------------------------
# Import


def import_conversation(path: Path) -> Conversation:
    """Read a conversation file (not saved: see `Library.import_conversation`).

    Accepts chatui JSON and Markdown, a `transformers chat` save (`{"settings", "chat_history"}`)
    and an OpenAI-style list of `{"role", "content"}` (bare or as `{"messages": [...]}`).
    Anything else raises ImportFormatError, and only that."""
    name = Path(path).name
    try:
        text = read_text(Path(path))
        markdown = _looks_like_markdown(path, text)
        conv = _from_markdown(text, Path(path).parent) if markdown else _parse(json_of(text))
        # Lone surrogates (from JSON \ud800 escapes) cannot be stored as UTF-8.
        json.dumps(_strings_of(conv), ensure_ascii=False).encode("utf-8")
        return conv
    except ImportProblem as problem:
        raise ImportFormatError(f"{name}: {problem}") from None
    except UnicodeEncodeError:
        raise ImportFormatError(f"{name}: contains text that is not valid Unicode") from None
    except Exception as error:  # whatever else goes wrong, the caller sees one kind of error
        raise ImportFormatError(f"{name}: cannot import ({type(error).__name__})") from None


def _looks_like_markdown(path: Path, text: str) -> bool:
    return text.startswith(MARKDOWN_MARK) or Path(path).suffix.lower() in (".md", ".markdown")


def _parse(data: Any) -> Conversation:
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return _from_chatui(data)
    if isinstance(data, dict) and "chat_history" in data:
        return _from_transformers(data)
    if isinstance(data, dict) and "messages" in data:
        model = data.get("model")
        return _foreign(data["messages"], model if isinstance(model, str) else None, {}, None)
    if isinstance(data, list):
        return _foreign(data, None, {}, None)
    fail("not a conversation (expected chatui JSON, a `transformers chat` save or a list of role/content messages)")


def _get(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str, default: Any = None, where: str = ""
) -> Any:
    """`data[key]` checked to be of `kind` (None allowed when it is the default)."""
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind == (int, float):
        fail(f"{where}{key!r} must be {what}, not {type(value).__name__}")
    return value


def _timestamp(data: dict[str, Any], key: str, default: float, where: str = "") -> float:
    raw = _get(data, key, (int, float), "a number (unix time)", default, where)
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        fail(f"{where}{key!r} is not a finite number")
    return value


def _from_chatui(data: dict[str, Any]) -> Conversation:
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        fail(f"unsupported {FORMAT} version {data.get('version')!r} (this chatui reads {VERSION})")
    now = time.time()
    created = _timestamp(data, "created", now)
    origin = _get(data, "origin", dict, "an object", {})  # a branch's link, kept as it was
    messages: list[Message] = []
    others: list[Message] = []
    for key, found in (("messages", messages), ("other_versions", others)):
        for number, item in enumerate(_get(data, key, list, "a list", []), 1):
            where = f"{key.replace('_', ' ')[:-1]} {number}: "
            if not isinstance(item, dict):
                fail(f"{where}expected an object, not {type(item).__name__}")
            role, content = _role_and_content(item, where)
            content = (*item.get("with", ()), *content)
            status = _get(item, "status", str, "a string", "ok", where)
            if status not in STATUSES:
                fail(f"{where}unknown status {status!r} (expected one of {', '.join(STATUSES)})")
            chained = messages[-1].id if found is messages and messages else None  # the active branch
            found.append(
                Message(
                    _get(item, "id", str, "a string", new_id(), where),
                    role,
                    content,
                    _timestamp(item, "created", created, where),
                    chained if found is messages else _get(item, "parent_id", str, "a string", None, where),
                    status,
                    MessageMeta.from_dict(_get(item, "stats", dict, "an object", None, where)),
                )
            )
    return Conversation(
        new_id(),
        _get(data, "title", str, "a string", DEFAULT_TITLE),
        created,
        _timestamp(data, "updated", created),
        _get(data, "model", str, "a string"),
        _get(data, "load_settings", dict, "an object", {}),
        _get(data, "generation_settings", dict, "an object", {}),
        _get(data, "system_prompt", str, "a string"),
        messages,
        others,
        _get(origin, "conversation_id", str, "a string"),
        _get(origin, "message_id", str, "a string"),
    )


def _from_transformers(data: dict[str, Any]) -> Conversation:
    settings = _get(data, "settings", dict, "an object", {})
    # transformers 5 keeps GenerationConfig.to_dict() under "config"; older releases kept the
    # generation flags beside "model_name_or_path".
    config = settings.get("config") if isinstance(settings.get("config"), dict) else settings
    from tui.engine.generation_config import settings_of  # imports transformers: only for these files
    from tui.engine.settings import SPECS_BY_NAME

    generation = settings_of(config, keep=SPECS_BY_NAME)
    model = next(
        (value for key in ("model_id", "model_name_or_path") if isinstance(value := settings.get(key), str) and value),
        None,
    )
    system_prompt = settings.get("system_prompt")
    return _foreign(
        data["chat_history"],
        model,
        generation,
        system_prompt if isinstance(system_prompt, str) and system_prompt else None,
    )


def _role_and_content(item: dict[str, Any], where: str) -> tuple[str, tuple[Part, ...]]:
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        fail(f"{where}unknown role {role!r} (expected one of {', '.join(ROLES)})")
    try:
        return role, parts_from_openai(content)
    except PartError as error:
        fail(f"{where}{error}")


def _foreign(
    raw_messages: Any, model: str | None, generation: dict[str, Any], system_prompt: str | None
) -> Conversation:
    """A conversation from a list of role/content messages; a leading system message becomes
    the system prompt."""
    if not isinstance(raw_messages, list):
        fail(f"the messages must be a list, not {type(raw_messages).__name__}")
    pairs = []
    for number, item in enumerate(raw_messages, 1):
        if not isinstance(item, dict):
            fail(f"message {number}: expected an object, not {type(item).__name__}")
        pairs.append(_role_and_content(item, f"message {number}: "))
    if pairs and pairs[0][0] == "system":
        system_prompt = text_of(pairs.pop(0)[1])
    now = time.time()
    messages: list[Message] = []
    for role, content in pairs:
        messages.append(Message(new_id(), role, content, now, messages[-1].id if messages else None))
    title = next((t for role, parts in pairs if role == "user" and (t := title_from(text_of(parts)))), DEFAULT_TITLE)
    return Conversation(new_id(), title, now, now, model, {}, generation, system_prompt, messages)


def _strings_of(conv: Conversation) -> list[Any]:
    messages = [
        [m.meta.to_dict(), *(f"{getattr(p, 'name', '')}{getattr(p, 'text', '')}" for p in m.parts)]
        for m in conv.messages
    ]
    return [conv.title, conv.model, conv.system_prompt, conv.load_settings, conv.generation_settings, messages]
