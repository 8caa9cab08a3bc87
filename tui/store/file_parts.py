"""Message parts in conversation files (for `files.py`), and the JSON helpers the files share.

- JSON export and import: a text-only message's content is its text, as always; a message with
  attachments has OpenAI content parts, in order: images as `{"type": "image_url", "image_url":
  {"url": "data:<mime>;base64,..."}, "name"}`, documents as a text part holding their name and
  text as the model read them (`<file name="...">...</file>`), its text as a text part.
- transformers chat's save: the history as the chat template takes it, images as
  `{"type": "image", "url": "data:..."}`.
- Markdown export: images are files in a folder beside the Markdown file, linked relatively;
  documents are shown folded. The message's comment keeps what reads them back.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import mimetypes
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.store.parts import FilePart, ImagePart, Part, TextPart, attachments_of, document_text, text_of

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[^,;]*)*?;base64,(.*)", re.S)
_DOCUMENT = re.compile(r'<file name="([^"\n]*)">\n(.*)\n</file>', re.S)


class PartError(ValueError):
    """A content part a file holds cannot be read; the message says why."""


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def from_data_url(url: str) -> tuple[str, bytes]:
    found = _DATA_URL.fullmatch(url.strip())
    if found is None:
        raise PartError("an image must be a base64 data URL (data:image/...;base64,...)")
    try:
        return found.group(1) or "application/octet-stream", base64.b64decode(found.group(3), validate=True)
    except (binascii.Error, ValueError) as error:
        raise PartError(f"an image's data URL is not valid base64 ({error})") from None


def openai_content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """A message's parts as a JSON export writes them (a string when it is only text)."""
    if not attachments_of(parts):
        return text_of(parts)
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            url = data_url(part.mime, part.data)
            content.append({"type": "image_url", "image_url": {"url": url}, "name": part.name})
        else:
            text = document_text(part) if isinstance(part, FilePart) else part.text
            content.append({"type": "text", "text": text})
    return content


def parts_from_openai(content: Any) -> tuple[Part, ...]:
    """A message's parts from a file's content: a string, or OpenAI content parts (text,
    `image_url` data URLs; a text part that is a document as chatui writes it becomes one)."""
    if isinstance(content, str):
        return _documents_and_text(content)
    if not isinstance(content, list):
        raise PartError(f"content must be a string or a list of parts, not {type(content).__name__}")
    parts: list[Part] = []
    for number, item in enumerate(content, 1):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            document = _DOCUMENT.fullmatch(item["text"])
            if document:
                name = document.group(1)
                parts.append(FilePart(name, mimetypes.guess_type(name)[0] or "text/plain", document.group(2)))
            else:
                parts.append(TextPart(item["text"]))
        elif kind in ("image_url", "image"):
            url = item.get("image_url", {}).get("url") if kind == "image_url" else item.get("url")
            if not isinstance(url, str):
                raise PartError(f"part {number}: an image without a URL")
            mime, data = from_data_url(url)
            name = item.get("name") if isinstance(item.get("name"), str) else f"image{number}"
            parts.append(ImagePart(name, mime, data))
        else:
            raise PartError(f"part {number}: unknown content part {kind!r} (expected text or image_url)")
    return (*attachments_of(parts), TextPart(text_of(parts)))


_LEADING_DOCUMENT = re.compile(r'<file name="([^"\n]*)">\n(.*?)\n</file>(?:\n\n|\Z)', re.S)


def _documents_and_text(content: str) -> tuple[Part, ...]:
    """A message as a string, as the model read it (and `transformers chat` saves it): the
    documents before its text, each `<file name="...">...</file>`, become document parts again."""
    documents: list[Part] = []
    while match := _LEADING_DOCUMENT.match(content):
        name = match.group(1)
        documents.append(FilePart(name, mimetypes.guess_type(name)[0] or "text/plain", match.group(2)))
        content = content[match.end() :]
    return (*documents, TextPart(content))


def template_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A history as the chat template takes it (`model_history`), with images as data URLs:
    what `transformers chat` saves."""
    out = []
    for turn in history:
        content = turn["content"]
        if isinstance(content, list):
            content = [
                {"type": "image", "url": data_url(p["mime"], p["data"]), "name": p["name"]}
                if p.get("type") == "image"
                else p
                for p in content
            ]
        out.append(dict(turn, content=content))
    return out


def image_file_name(part: ImagePart) -> str:
    """The file an image gets in a Markdown export's folder: unique by content, named for people."""
    stem = re.sub(r"[^\w.-]+", "_", Path(part.name).stem)[:40] or "image"
    suffix = mimetypes.guess_extension(part.mime) or Path(part.name).suffix or ".bin"
    return f"{part.digest[:12]}-{stem}{suffix}"


def markdown_attachments(parts: Sequence[Part], folder: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's attachments in a Markdown export: what is shown (image links into `folder`,
    documents folded) and what its comment records to read them back."""
    shown, recorded = [], []
    for part in attachments_of(parts):
        if isinstance(part, ImagePart):
            link = f"{folder}/{image_file_name(part)}"
            shown.append(f"![{_label(part.name)}](<{link}>)")
            recorded.append({"kind": "image", "name": part.name, "mime": part.mime, "path": link})
        else:
            fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", part.text))])
            shown.append(
                f"<details><summary>{_label(part.name)}</summary>\n\n{fence}\n{part.text}\n{fence}\n</details>"
            )
            recorded.append({"kind": "file", "name": part.name, "mime": part.mime, "text": part.text})
    return "".join(f"\n{block}\n" for block in shown), recorded


def attachments_from_markdown(recorded: Any, base: Path) -> tuple[Part, ...]:
    """The attachments a Markdown export's comment records, images read from beside the file."""
    if not isinstance(recorded, list):
        return ()
    parts: list[Part] = []
    for item in recorded:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise PartError("a damaged attachment record")
        if item.get("kind") == "file" and isinstance(item.get("text"), str):
            parts.append(FilePart(item["name"], str(item.get("mime") or "text/plain"), item["text"]))
        elif item.get("kind") == "image" and isinstance(item.get("path"), str):
            path = (base / item["path"]).resolve()
            if base.resolve() not in path.parents:
                raise PartError(f"the image {item['path']} is outside the export's folder")
            try:
                data = path.read_bytes()
            except OSError as error:
                raise PartError(f"cannot read the image {item['path']} ({error.strerror or error})") from None
            parts.append(ImagePart(item["name"], str(item.get("mime") or "application/octet-stream"), data))
        else:
            raise PartError("a damaged attachment record")
    return tuple(parts)


def _label(name: str) -> str:
    return re.sub(r"[\[\]<>`*_\\]", "", name) or "attachment"


# -- JSON helpers -----------------------------------------------------------------------------


def finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities (not valid JSON) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def comment_json(value: Any) -> str:
    """JSON for an HTML comment: one line, nothing that could end the comment or reach a terminal."""
    text = json.dumps(finite(value), ensure_ascii=True, allow_nan=False)
    return text.replace(">", "\\u003e")
