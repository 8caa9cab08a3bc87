"""Where chatui keeps its files: platformdirs only (XDG variables are honoured on Linux)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

import platformdirs

APP_NAME = "chatui"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """What the app remembers between runs that is neither settings nor data (the last folder a
    file was attached from)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` with `write(file)` through a temporary file in the same folder, synced, then
    `os.replace`d: readers see the old file or the whole new one, never a part. The file gets
    mode 0o600. On any failure the temporary file is removed and the error raised. A path that is
    not a regular file (a device such as /dev/null, a pipe) is written as it is, never replaced."""
    path = Path(path)
    if path.exists() and not path.is_file():
        with open(path, "wb") as file:
            write(file)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
