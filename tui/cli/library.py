"""`chatui --list / --export / --import`: the library from the command line. Each prints and
returns an exit code (0 done, 1 the library or a file could not be read or written, 2 a bad
argument or file)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from tui.store import (
    ImportFormatError,
    Library,
    StoreError,
    export_as,
    import_conversation,
)
from tui.store.exports import images_folder, markdown_images, write_export
from tui.store.files import EXPORT_FORMATS
from tui.text import inert

_MODEL_WIDTH = 40


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def list_command(library: Library, out: TextIO, err: TextIO | None = None) -> int:
    """Print every conversation, newest first: id prefix, last update, message count, model,
    title (last, as it varies most in width)."""
    try:
        summaries = library.list(limit=library.count())
    except StoreError as error:
        print(f"chatui: {error}", file=err or sys.stderr)
        return 1
    if not summaries:
        print("no conversations yet", file=out)
        return 0
    rows = [
        (
            s.id[:8],
            time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated)),
            str(s.message_count),
            _clip(inert(s.model or "-"), _MODEL_WIDTH),
            inert(" ".join(s.title.split())),
        )
        for s in summaries
    ]
    header = ("ID", "UPDATED", "MSGS", "MODEL", "TITLE")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
            row[4],
        ]
        print("  ".join(cells).rstrip(), file=out)
    return 0


def export_command(library: Library, ref: str, fmt: str, out_path: Path | None, out: TextIO, err: TextIO) -> int:
    """Export conversation `ref` (id, unique prefix or 'last') as `fmt` ('json' or 'md') to
    `out_path`, or to `out` when it is None."""
    if fmt not in EXPORT_FORMATS:
        print(f"chatui: unknown export format {fmt!r} (use {' or '.join(EXPORT_FORMATS)})", file=err)
        return 2
    try:
        conv = library.get(library.resolve_id(ref))
    except KeyError as error:
        print(f"chatui: {error}", file=err)
        return 2
    except StoreError as error:
        print(f"chatui: {error}", file=err)
        return 1
    if out_path is None:
        out.write(export_as(conv, fmt))
        if fmt == "md" and markdown_images(conv):
            print("chatui: the images are not written with the Markdown on stdout: export with -o FILE", file=err)
        return 0
    try:
        images = write_export(conv, fmt, out_path)
    except OSError as error:
        print(f"chatui: cannot write {out_path}: {error.strerror or error}", file=err)
        return 1
    beside = f" (and {images} image{'s' * (images != 1)} in {images_folder(out_path)}/)" if images else ""
    print(f"exported {conv.id[:8]} to {out_path}{beside}", file=out)
    return 0


def import_command(library: Library, path: Path, out: TextIO, err: TextIO) -> int:
    """Import a conversation file into the library and print its new id."""
    try:
        conv = import_conversation(path)
    except ImportFormatError as error:
        print(f"chatui: {error}", file=err)
        return 2
    try:
        new_id = library.import_conversation(conv)
    except StoreError as error:
        print(f"chatui: {error}", file=err)
        return 1
    print(new_id, file=out)
    return 0


def run_library_command(command: tuple[str, ...], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run ("list",), ("export", ref, format, output or "") or ("import", path)."""
    try:
        library = Library()
    except StoreError as exc:
        print(f"chatui: {exc}", file=err)
        return 1
    if library.recovered_from is not None:
        print(f"chatui: warning: the library was damaged; moved to {library.recovered_from}", file=err)
    with library:
        if command[0] == "list":
            return list_command(library, out, err)
        if command[0] == "export":
            _, ref, fmt, output = command
            return export_command(library, ref, fmt, Path(output) if output else None, out, err)
        return import_command(library, Path(command[1]), out, err)
