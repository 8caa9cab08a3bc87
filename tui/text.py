"""Text from models and files: made safe for a terminal, split into reasoning and answer, and
its line breaks kept (no Textual imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from markdown_it import MarkdownIt

# C0 controls (but tab and newline), DEL and C1 controls become visible, inert symbols, so an
# escape sequence in model output is shown as text and never reaches the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode control pictures: ESC → ␛, BEL → ␇, CR → ␍
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"  # C1 controls have no picture: show the escape as text


def inert(text: str) -> str:
    """`text` made safe for a terminal: CRLF becomes LF, and every other control character but
    newline and tab becomes a visible symbol (ESC → ␛, BEL → ␇, CR → ␍, C1 controls → `\\x9b`)."""
    return _CONTROL.sub(_picture, text.replace("\r\n", "\n"))


THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass
class Piece:
    kind: str  # "think" or "answer"
    text: str


class ThinkSplitter:
    """Split a streamed reply into reasoning (`<think>…</think>`) and answer text, fragment by
    fragment, holding back only what could be the start of a tag."""

    def __init__(self) -> None:
        self.in_think = False
        self._held = ""

    def feed(self, fragment: str) -> list[Piece]:
        text = self._held + fragment
        self._held = ""
        pieces: list[Piece] = []
        while text:
            tag = THINK_CLOSE if self.in_think else THINK_OPEN
            kind = "think" if self.in_think else "answer"
            index = text.find(tag)
            if index >= 0:
                if index:
                    pieces.append(Piece(kind, text[:index]))
                text = text[index + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_tag_suffix(text, tag)
            if keep:
                self._held = text[-keep:]
                text = text[:-keep]
            if text:
                pieces.append(Piece(kind, text))
            break
        return pieces

    def flush(self) -> list[Piece]:
        held, self._held = self._held, ""
        return [Piece("think" if self.in_think else "answer", held)] if held else []


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


def split_think(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a whole reply."""
    splitter = ThinkSplitter()
    pieces = splitter.feed(text) + splitter.flush()
    think = "".join(p.text for p in pieces if p.kind == "think")
    answer = "".join(p.text for p in pieces if p.kind == "answer")
    return think, answer


# -- line breaks ------------------------------------------------------------------------------
# Models write poems, addresses and "Red: ...\nBlue: ..." lists with single line breaks, which
# Markdown joins into one line. chatui shows line breaks as written: inside a paragraph a newline
# is a hard break. Code blocks, lists and tables are parsed as before.


def _soft_to_hard_breaks(state: Any) -> None:
    """A markdown-it core rule: every soft line break in inline text becomes a hard one."""
    for token in state.tokens:
        if token.type == "inline" and token.children:
            for child in token.children:
                if child.type == "softbreak":
                    child.type = "hardbreak"


@cache
def markdown_parser() -> MarkdownIt:
    """The parser for chat Markdown (GFM-like, line breaks kept); one instance, reused."""
    parser = MarkdownIt("gfm-like")
    parser.core.ruler.push("chatui_hard_breaks", _soft_to_hard_breaks)
    return parser


def soft_break_lines(markdown: str) -> list[int]:
    """The lines (0-based) that end in a soft line break: those a Markdown viewer would join to
    the next one. Each paragraph's breaks are its lines' ends, in order."""
    lines: list[int] = []
    for token in MarkdownIt("gfm-like").parse(markdown):
        if token.type != "inline" or not token.children or not token.map:
            continue
        breaks = [child.type for child in token.children if child.type in ("softbreak", "hardbreak")]
        lines += [token.map[0] + index for index, kind in enumerate(breaks) if kind == "softbreak"]
    return lines


# -- where a streamed Markdown reply may be cut into widgets (widgets/message.py) ---------------

CHUNK_CHARS = 800  # start a new streaming Markdown widget past this size (at a block boundary)
LIST_ITEM = re.compile(r"(?:([-*+])|\d{1,9}([.)]))[ \t]")  # a list item's marker at the start of a line


def chunk_cut(chunk: str, text: str) -> tuple[int, bool] | None:
    """Where the Markdown widget holding `chunk` may end, as `text` is added to it: an index into
    `text` where the next widget starts, and whether this one's last block keeps no margin.

    Only once the widget holds CHUNK_CHARS, never inside a code fence, and only where the Markdown
    splits cleanly: after a blank line, or between two items of one top-level list (a tight list
    has no blank line, and a long one, which small models like to write, was one block re-parsed
    whole at every append: 20 tok/s fell to 8). A list cut keeps no margin under its half, so
    the list reads as one; ordered lists go on numbering from their first item."""
    if len(chunk) + len(text) < CHUNK_CHARS:
        return None
    whole = chunk + text
    at = max(len(chunk), CHUNK_CHARS)
    while (at := whole.find("\n", at - 1) + 1) > 0:  # each line start from there on
        if whole.count("```", 0, at) % 2 == 0:
            if whole.endswith("\n\n", 0, at):
                return at - len(chunk), False
            before = whole[whole.rfind("\n", 0, at - 1) + 1 : at - 1]
            item, next_item = LIST_ITEM.match(before), LIST_ITEM.match(whole, at)
            if item and next_item and item.groups() == next_item.groups():
                return at - len(chunk), True
        at += 1
    return None
