"""What the app is doing: the chat screen's `state`, which the status bar shows first."""

from __future__ import annotations

from enum import Enum


class AppState(str, Enum):
    LOADING = "loading"  # a model is loading
    READY = "ready"
    GENERATING = "generating"  # a reply is being written
    ERROR = "error"  # no model is loaded

    def __str__(self) -> str:
        return self.value
