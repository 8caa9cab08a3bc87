"""A message's content as typed parts, in order: text, images and attached documents.

A text-only message has exactly one TextPart (its text may be empty while a reply starts). A
message with attachments has them first, then its text (as a user types: attach, then write).
Images and documents are stored once each in the library, named by the SHA-256 of their bytes
(`blob`); the part rows point at them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, NamedTuple


@dataclass(frozen=True)
class TextPart:
    """Text the user or the model wrote."""

    text: str
    kind: ClassVar[str] = "text"  # its stored `kind`


@dataclass(frozen=True)
class ImagePart:
    """An image: its file's bytes as they were attached (PNG, JPEG, ...), its name and type."""

    name: str
    mime: str
    data: bytes = field(repr=False)
    kind: ClassVar[str] = "image"

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class FilePart:
    """An attached document (text, Markdown, code, CSV, JSON, PDF): its name, its file's type and
    the text read from it, which is what the model sees."""

    name: str
    mime: str
    text: str = field(repr=False)
    kind: ClassVar[str] = "file"

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()

    @property
    def blob(self) -> bytes:
        return self.text.encode("utf-8")


Part = TextPart | ImagePart | FilePart
Attachment = ImagePart | FilePart  # the parts stored as blobs


class PartRow(NamedTuple):
    """A part as its stored columns (`blob`: the digest of its stored bytes)."""

    kind: str
    text: str | None
    blob: str | None = None
    name: str | None = None
    mime: str | None = None


def text_parts(text: str) -> tuple[Part, ...]:
    """The parts of a text-only message."""
    return (TextPart(text),)


def with_text(parts: Sequence[Part], text: str) -> tuple[Part, ...]:
    """`parts` with their text replaced by `text` (the attachments stay, first)."""
    return (*attachments_of(parts), TextPart(text))


def attachments_of(parts: Sequence[Part]) -> tuple[Attachment, ...]:
    return tuple(part for part in parts if not isinstance(part, TextPart))


def images_of(parts: Sequence[Part]) -> tuple[ImagePart, ...]:
    return tuple(part for part in parts if isinstance(part, ImagePart))


def text_of(parts: Sequence[Part]) -> str:
    """A message's text: its text parts joined (what an edit starts from; documents not included)."""
    return "".join(part.text for part in parts if isinstance(part, TextPart))


def document_text(part: FilePart) -> str:
    """A document as the model reads it: its name, then its text."""
    name = part.name.replace('"', "'").replace("\n", " ")  # the attribute stays one quoted line
    return f'<file name="{name}">\n{part.text}\n</file>'


def part_row(part: Part) -> PartRow:
    """A part as its stored columns."""
    if isinstance(part, TextPart):
        return PartRow(part.kind, part.text)
    return PartRow(part.kind, None, part.digest, part.name, part.mime)


def part_from_row(row: PartRow, data: bytes | None) -> Part:
    """A part from its stored columns and its blob's bytes; ValueError for a kind this chatui does
    not know or a part whose blob is missing."""
    if row.kind == TextPart.kind:
        return TextPart(row.text or "")
    if row.kind in (ImagePart.kind, FilePart.kind):
        if data is None:
            raise ValueError(f"the stored {row.kind} {row.name!r} has lost its data")
        if row.kind == ImagePart.kind:
            return ImagePart(row.name or "image", row.mime or "application/octet-stream", data)
        return FilePart(row.name or "file", row.mime or "text/plain", data.decode("utf-8", errors="replace"))
    raise ValueError(f"unknown message part kind {row.kind!r}")
