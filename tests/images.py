"""Pictures and documents made by the tests themselves (Pillow; PDFs written by pypdf)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def png(color: tuple[int, int, int] = (200, 20, 20), size: tuple[int, int] = (48, 40)) -> bytes:
    """A PNG of one colour, with a white square in a corner (so thumbnails show a shape)."""
    from PIL import Image

    image = Image.new("RGB", size, color)
    image.paste((255, 255, 255), (0, 0, size[0] // 3, size[1] // 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_message(data: bytes, text: str, name: str = "picture.png") -> dict[str, Any]:
    """A user message with one image and some text, as the engine takes it."""
    return {
        "role": "user",
        "content": [{"type": "image", "data": data, "mime": "image/png", "name": name}, {"type": "text", "text": text}],
    }


def pdf(path: Path, text: str | None, password: str | None = None) -> Path:
    """A one-page PDF with `text` on it (None: a page with no text at all), optionally encrypted."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=200)
    if text is not None:
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 150 Td ({escaped}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password is not None:
        writer.encrypt(password)
    with open(path, "wb") as file:
        writer.write(file)
    return path
