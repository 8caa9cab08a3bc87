"""A message's content as typed parts, in order: text now; images and attached files (blobs
named by their content hash) join the `Part` union as new part types.

A text-only message has exactly one TextPart (its text may be empty while a reply starts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class TextPart:
    """Text the user or the model wrote."""

    text: str
    kind: ClassVar[str] = "text"  # its stored `kind`


Part = TextPart  # the union of part types; one type so far


def text_parts(text: str) -> tuple[Part, ...]:
    """The parts of a text-only message."""
    return (TextPart(text),)


def text_of(parts: Sequence[Part]) -> str:
    """A message's text: its text parts joined (what the chat template and the exports read)."""
    return "".join(part.text for part in parts if isinstance(part, TextPart))


def part_row(part: Part) -> tuple[str, str | None]:
    """A part as its stored columns: kind and text."""
    return part.kind, part.text


def part_from_row(kind: str, text: str | None) -> Part:
    """A part from its stored columns; ValueError for a kind this chatui does not know."""
    if kind == TextPart.kind:
        return TextPart(text or "")
    raise ValueError(f"unknown message part kind {kind!r}")
