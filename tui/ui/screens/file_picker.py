"""The file picker for attachments: textual-fspicker's FileOpen dialog, starting in the last
folder used, with filters for what chatui can attach (tui/core/attachments.py reads it)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button
from textual_fspicker import FileOpen, Filters

from tui.core.attachments import IMAGE_TYPES, TEXT_TYPES

DOCUMENT_SUFFIXES = frozenset({".pdf", ".txt", *TEXT_TYPES})


class AttachFilePicker(FileOpen):
    """FileOpen sized for any terminal: most of a wide one, all of a narrow one (60×20 keeps the
    folder list, the name field, the filter and both buttons on screen)."""

    DEFAULT_CSS = """
    AttachFilePicker Dialog {
        width: 100%;
        height: 100%;
        max-width: 110;
        max-height: 30;
    }
    AttachFilePicker InputBar {
        padding: 0 1 0 0;
        Input { width: 1fr; min-width: 12; }
        Select { width: 20; }
        Button { width: auto; min-width: 8; }
    }
    """

    def on_mount(self) -> None:
        for button in self.query(Button):
            button.compact = True


def attach_picker(folder: Path) -> FileOpen:
    """A FileOpen dialog in `folder` (or the nearest folder above it that still exists). "All
    files" comes first: any UTF-8 text file (code of any language) can be attached, whatever its
    suffix. It answers the chosen Path, or None when cancelled."""
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return AttachFilePicker(
        folder,
        title="Attach a file",
        open_button="Attach",
        filters=Filters(
            ("All files", lambda path: True),
            ("Images", lambda path: path.suffix.lower() in IMAGE_TYPES),
            ("Documents", lambda path: path.suffix.lower() in DOCUMENT_SUFFIXES),
        ),
    )
