"""Files attached to a message: read into image and document parts, checked before anything is
sent, shared by the app (`/attach`, a pasted path) and headless (`--image`, `--file`).

Images (PNG, JPEG, GIF, WebP, BMP, TIFF) are kept as their file's bytes, checked with Pillow.
Documents become their text: text, Markdown, code, CSV, JSON and the like as UTF-8, PDFs
through pypdf. Whatever cannot be used is an AttachmentError whose message is one line for the
user, naming the file."""

from __future__ import annotations

import io
import mimetypes
import os
import re
import shlex
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from urllib.parse import unquote, urlparse

from tui.store.parts import Attachment, FilePart, ImagePart

MAX_BYTES = 200 * 2**20  # larger files are refused before they are read
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
PDF_TYPE = "application/pdf"
# Suffixes read as text without sniffing (others are text when they decode as UTF-8, NUL-free).
TEXT_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv", ".json": "application/json"}


class AttachmentError(Exception):
    """A file cannot be attached; the message is one line for the user."""


def resolve_path(text: str, cwd: Path | None = None) -> Path:
    """A path as the user typed it: `~` expanded, relative to `cwd` (the working folder),
    surrounding quotes (as terminals paste them) removed."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


def dropped_files(text: str, cwd: Path | None = None) -> list[Path]:
    """The files in pasted text when it is nothing but paths of existing files, as terminals
    paste files dropped on them: one path, quoted or not; several, separated by spaces or lines,
    with spaces escaped (`a\\ b.png`) or quoted; `file://` URIs. Else []."""
    text = text.strip()
    if not text or len(text) > 16384:
        return []
    candidates: list[list[str]] = []
    with suppress(ValueError):  # unbalanced quotes: not a shell-quoted list
        candidates.append(shlex.split(text))
    candidates.append([text])  # one path with bare spaces
    candidates.append(text.splitlines())
    for pieces in candidates:
        paths = [_dropped_path(piece, cwd) for piece in pieces if piece.strip()]
        if paths and all(path is not None and is_file(path) for path in paths):
            return [path for path in paths if path is not None]
    return []


def is_file(path: Path) -> bool:
    """Whether `path` is a file; a name the file system refuses (over 255 bytes, say) is not."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _dropped_path(piece: str, cwd: Path | None) -> Path | None:
    piece = piece.strip()
    if piece.startswith("file://"):
        parsed = urlparse(piece)
        return Path(unquote(parsed.path)) if parsed.netloc in ("", "localhost") else None
    if not piece.startswith(("/", "~", "'", '"', ".")):
        return None  # a word typed or pasted is not taken for a file that happens to be there
    try:
        return resolve_path(piece, cwd)
    except (OSError, ValueError):
        return None


def read_attachment(path: Path, image_only: bool = False) -> Attachment:
    """The part for the file at `path` (an image or a document); `image_only` (`--image`)
    refuses anything but an image."""
    name = path.name
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise AttachmentError(f"{path} is not a file")
    except FileNotFoundError:
        raise AttachmentError(f"{path}: no such file") from None
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_BYTES:
        raise AttachmentError(f"{name} is {size / 2**20:,.0f} MB: attachments are limited to {MAX_BYTES // 2**20} MB")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix in IMAGE_TYPES or _looks_like_image(data):
        return _image(name, data, IMAGE_TYPES.get(suffix))
    if image_only:
        raise AttachmentError(f"{name} is not an image (PNG, JPEG, GIF, WebP, BMP or TIFF)")
    if suffix == ".pdf" or data.startswith(b"%PDF"):
        return FilePart(name, PDF_TYPE, _pdf_text(name, data))
    text = _as_text(data)
    if text is None:
        kind = f"{suffix} files" if suffix else "this kind of file"
        raise AttachmentError(
            f"chatui cannot read {kind} ({name}): attach images, PDFs or text (Markdown, code, CSV, JSON, ...)"
        )
    mime = TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "text/plain"
    return FilePart(name, mime, text)


def read_attachments(paths: Sequence[Path], image_only: bool = False) -> list[Attachment]:
    return [read_attachment(path, image_only) for path in paths]


def refuse_images(attachments: Sequence[Attachment], model: str, accepts_images: bool) -> None:
    """AttachmentError when images go to a model that reads text only."""
    images = [a.name for a in attachments if isinstance(a, ImagePart)]
    if images and not accepts_images:
        raise AttachmentError(
            f"{model} reads text only: it cannot see {', '.join(images)} (load a vision model to send images)"
        )


def describe(attachment: Attachment) -> str:
    """Name and size, as a chip shows it."""
    size = len(attachment.blob) if isinstance(attachment, ImagePart) else len(attachment.text)
    return f"{attachment.name} ({human_size(size)})"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:,.1f} KB" if size < 2**20 else f"{size / 2**20:,.1f} MB"


# No tokenizer packs more characters than this into a token of real text: documents longer than
# the context times this cannot fit, and are refused without tokenizing them (a 20 MB text took
# a minute and 4 GB to count, on the model's thread).
MAX_CHARS_PER_TOKEN = 16


def too_long(documents: Sequence[FilePart], context: int) -> str | None:
    """Why these documents cannot fit a context of `context` tokens whatever their tokens (more
    than MAX_CHARS_PER_TOKEN characters a token), in one line; None when they might."""
    chars = sum(len(document.text) for document in documents)
    if not context or chars <= context * MAX_CHARS_PER_TOKEN:
        return None
    names = ", ".join(document.name for document in documents)
    verb = "does" if len(documents) == 1 else "do"
    return (
        f"{names} {verb} not fit: {chars:,} characters are far more than the model's context of "
        f"{context:,} tokens can hold (attach a part of it)"
    )


def fit_problem(
    names: Sequence[str], message_tokens: int, used_tokens: int, context: int, max_new_tokens: int
) -> str | None:
    """Why a message with attachments cannot be sent (it needs more of the context than is left
    after the conversation so far and the reply's max_new_tokens), saying by how much; None if
    it fits or the counts are unknown (0)."""
    if not message_tokens or not context:
        return None
    left = max(context - max_new_tokens - used_tokens, 0)
    if message_tokens <= left:
        return None
    verb = "does" if len(names) == 1 else "do"
    return (
        f"{', '.join(names)} {verb} not fit: the message takes {message_tokens:,} tokens, "
        f"{message_tokens - left:,} more than the {left:,} left in the context ({context:,} tokens, "
        f"{used_tokens:,} used by the chat, {max_new_tokens:,} kept for the reply)"
    )


def _looks_like_image(data: bytes) -> bool:
    return data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _image(name: str, data: bytes, mime: str | None) -> ImagePart:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes it all: a truncated or damaged file fails here
            found = Image.MIME.get(image.format or "")
    except UnidentifiedImageError:
        raise AttachmentError(f"{name} is not a readable image (not a format Pillow knows)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AttachmentError(f"{name} is not a readable image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise AttachmentError(f"{name} is too large an image ({exc})") from None
    return ImagePart(name, found or mime or "application/octet-stream", data)


def _pdf_text(name: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise AttachmentError(f"{name} is an encrypted PDF: save an unprotected copy to attach it")
        pages = [page.extract_text() or "" for page in reader.pages]
    except AttachmentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise AttachmentError(f"{name} is not a readable PDF ({exc})") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # no lone surrogates from odd fonts
    if not text:
        raise AttachmentError(
            f"{name} has no text to read (a scanned or image-only PDF?): attach its pages as images instead"
        )
    return text


def _as_text(data: bytes) -> str | None:
    """The text of a text file: UTF-8, UTF-16 with its byte-order mark (Windows tools write it),
    else Windows-1252 / Latin-1 (older CSV exports); None for what does not read as text (NULs;
    in the Windows-1252 fallback, more than one control character in 200)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8-sig")  # text as it is, escape codes of a terminal log included
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace")  # any bytes decode so: binary is told by its controls
    return text if len(_CONTROLS.findall(text)) <= len(text) // 200 else None


_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\ufffd]")  # not in text: control characters but tab, newlines, form feed
