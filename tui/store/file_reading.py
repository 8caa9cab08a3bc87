"""Reading a file to import, safely: at most MAX_IMPORT_BYTES, UTF-8, JSON without NaN or
infinities and nested at most MAX_DEPTH deep. What is wrong is raised as `ImportProblem`, which
`tui.store.files` turns into one ImportFormatError naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64


class ImportProblem(Exception):
    """What is wrong with the data being imported (the file name is added on the way out)."""


def fail(message: str) -> NoReturn:
    raise ImportProblem(message)


def reject_constant(name: str) -> NoReturn:
    fail(f"not valid JSON ({name} is not a JSON number)")


def read_text(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        fail(f"cannot read the file ({error.strerror or error})")
    if len(raw) > MAX_IMPORT_BYTES:
        fail(f"too large to import (over {MAX_IMPORT_BYTES // 2**20} MiB)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        fail(f"not UTF-8 text (invalid byte at offset {error.start})")


def json_of(text: str) -> Any:
    try:
        data = json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as error:
        fail(f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})")
    except RecursionError:
        fail("nested too deeply")
    except ValueError as error:  # e.g. an integer with too many digits
        fail(f"not valid JSON ({error})")
    if _depth(data) > MAX_DEPTH:
        fail("nested too deeply")
    return data


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest
