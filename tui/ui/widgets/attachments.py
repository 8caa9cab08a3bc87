"""Attachments on screen: the chips above the prompt (what goes with the next message, each
removable), and a message's images and documents shown inside it.

Images are drawn by textual-image with the terminal's best protocol (Kitty graphics, Sixel, else
Unicode half-blocks); a headless app (tests, snapshots) always gets half-blocks, which draw the
same everywhere. textual-image asks the terminal what it can do when it is first imported, so
this module is imported before the app starts (by the message widget, which the app imports).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Static
from textual_image.widget import HalfcellImage
from textual_image.widget import Image as TerminalImage

from tui.core.attachments import human_size
from tui.engine.vision import upright_rgb
from tui.store.parts import Attachment, FilePart, ImagePart
from tui.text import inert

SHOWN_PIXELS = 2048  # the longest side of an image drawn in the terminal (a full-screen 4K one is no wider)


def picture(widget: Widget, data: bytes, classes: str) -> Widget:
    """An image widget for `data` (half-blocks when the app is headless), or a note if Pillow
    cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return Static(f"(cannot show this image: {exc})", classes=classes)
    image = upright_rgb(image)
    image.thumbnail((SHOWN_PIXELS, SHOWN_PIXELS))  # a terminal shows no more: a 24 MP photo is 70 MB decoded
    kind = HalfcellImage if widget.app.is_headless else TerminalImage
    return kind(image, classes=classes)


def size_of(attachment: Attachment) -> int:
    return len(attachment.data) if isinstance(attachment, ImagePart) else len(attachment.text.encode("utf-8"))


class Chip(Static):
    """One attachment of the next message; a click removes it."""

    def on_click(self) -> None:
        index = int((self.id or "chip-0").removeprefix("chip-"))
        self.post_message(AttachmentChips.Removed(index))


class AttachmentChips(VerticalScroll):
    """What goes with the next message: a chip each (name, size, and a document's tokens), one
    a line so none is cut off at any width (four lines show, the rest scroll); clicking one
    removes it."""

    DEFAULT_CSS = """
    AttachmentChips { height: auto; max-height: 4; width: 1fr; display: none; padding: 0 1; }
    AttachmentChips.-shown { display: block; }
    AttachmentChips Chip {
        width: auto; max-width: 100%; height: 1; padding: 0 1; background: $primary 30%;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    AttachmentChips Chip:hover { background: $error 40%; }
    """

    can_focus = False  # not a stop on Tab's way from the prompt to the messages: chips are clicked

    @dataclass
    class Removed(Message):
        index: int

    @property
    def labels(self) -> list[str]:
        return [str(chip.content) for chip in self.query(Chip)]

    async def show(self, chips: Sequence[str]) -> None:
        """Show these chip labels (none: the row hides)."""
        await self.remove_children()
        await self.mount_all(Chip(f"{inert(label)} ✕", id=f"chip-{n}", markup=False) for n, label in enumerate(chips))
        self.set_class(bool(chips), "-shown")


class AttachmentsShown(Vertical):
    """A message's attachments inside it: each image as a thumbnail with its name (clicking it,
    or the view key on the message, opens it full size), each document folded, with its text."""

    DEFAULT_CSS = """
    AttachmentsShown { height: auto; }
    AttachmentsShown .thumbnail { width: auto; height: 8; }
    AttachmentsShown .caption { color: $text-muted; }
    AttachmentsShown Collapsible { padding: 0; }
    """

    @dataclass
    class ImageChosen(Message):
        image: ImagePart

    def __init__(self, attachments: Sequence[Attachment], **kwargs) -> None:
        super().__init__(**kwargs)
        self.attachments = tuple(attachments)

    def compose(self) -> ComposeResult:
        for attachment in self.attachments:
            label = f"{attachment.name} · {human_size(size_of(attachment))}"
            if isinstance(attachment, ImagePart):
                yield picture(self, attachment.data, "thumbnail")
                yield Static(inert(f"image: {label}"), classes="caption", markup=False)
            elif isinstance(attachment, FilePart):
                body = Static(inert(attachment.text), markup=False)
                yield Collapsible(body, title=inert(f"file: {label}"), collapsed=True)

    def on_click(self, event) -> None:  # noqa: ANN001 (a Textual Click)
        widget = event.widget
        if widget is not None and widget.has_class("thumbnail"):
            thumbnails = list(self.query(".thumbnail"))
            images = [a for a in self.attachments if isinstance(a, ImagePart)]
            if widget in thumbnails:
                self.post_message(self.ImageChosen(images[thumbnails.index(widget)]))
