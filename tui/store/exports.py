"""Writing an export to a file: the text, and for Markdown the images it links to, in a folder
beside it (`<name>_files/`, as browsers save a page). Every file is written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tui.paths import write_atomic
from tui.store.file_parts import image_file_name
from tui.store.files import export_as, export_markdown, write_file_atomic
from tui.store.model import Conversation
from tui.store.parts import ImagePart


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    return lambda file: file.write(data)


def images_folder(path: Path) -> str:
    return f"{path.stem}_files"


def markdown_images(conv: Conversation, folder: str = "images") -> dict[str, bytes]:
    """The image files a Markdown export links to: path relative to the file → bytes."""
    return {
        f"{folder}/{image_file_name(p)}": p.data for m in conv.messages for p in m.parts if isinstance(p, ImagePart)
    }


def write_export(conv: Conversation, fmt: str, path: Path) -> int:
    """Write `conv` as `fmt` ("json", "md", "tf-chat") to `path`; returns how many image files
    were written beside it. Raises OSError."""
    if fmt != "md":
        write_file_atomic(path, export_as(conv, fmt))
        return 0
    folder = images_folder(path)
    images = markdown_images(conv, folder)
    if images:
        (path.parent / folder).mkdir(exist_ok=True)
    for relative, data in images.items():
        write_atomic(path.parent / relative, _writer(data))
    write_file_atomic(path, export_markdown(conv, folder))
    return len(images)
