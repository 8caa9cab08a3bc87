"""chatui in a subprocess for tests: an isolated environment, reading its output without
blocking, killing it with SIGKILL, and reading the library it left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m tui ARGS` to the end (the test session's isolated folders unless `env`)."""
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def library_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "chatui" / "library.sqlite3"  # platformdirs on Linux, app name chatui


@contextmanager
def spawned(command: list[str], env: dict[str, str], **popen) -> Iterator[subprocess.Popen]:
    """`command` running in the repository root, stdin closed, stdout a pipe (`popen` adds to or
    overrides that); killed and waited for on the way out if it is still running."""
    proc = subprocess.Popen(
        command, **{"cwd": ROOT, "env": env, "stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, **popen}
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class PipeReader:
    """Collects a pipe's bytes on a thread, so the test can poll without blocking."""

    def __init__(self, pipe) -> None:
        self.data = bytearray()
        self.growth: list[tuple[float, int]] = []  # (time.monotonic(), bytes so far) after each read
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        fd = pipe.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self.data += chunk
                self.growth.append((time.monotonic(), len(self.data)))

    def text(self) -> str:
        with self._lock:
            return self.data.decode("utf-8", "replace")

    def __len__(self) -> int:
        with self._lock:
            return len(self.data)

    def bytes_at(self, moment: float) -> int:
        """How many bytes had arrived by `moment` (time.monotonic())."""
        with self._lock:
            return max((size for at, size in self.growth if at <= moment), default=0)

    def join(self) -> None:
        self._thread.join(10)


def poll(
    condition, timeout: float, what: str, proc: subprocess.Popen | None = None, output: PipeReader | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"the process ended (rc {proc.returncode}) before {what}: {output.text()[-2000:] if output else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def raw_rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """A plain read (no migration, no recovery) of the library, safe while another process writes."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def integrity(path: Path) -> str:
    return raw_rows(path, "PRAGMA integrity_check")[0][0]


def kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
