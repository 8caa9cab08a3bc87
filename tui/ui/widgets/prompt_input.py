"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J inserts a newline (keys of the table
of actions, scope "prompt"), the text area's Up/Down recall earlier prompts while the input is
empty (or while browsing them). Pasted paths of existing files (what terminals paste when files
are dropped on them) are posted up as `PathPasted` instead of inserted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from tui.core.attachments import dropped_files
from tui.ui.actions import bindings


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: round $primary 50%;
        background: $surface;
        &:focus { border: round $primary; }
    }
    """
    BINDINGS = bindings("prompt")

    @dataclass
    class Submitted(Message):
        input: PromptInput
        text: str

        @property
        def control(self) -> PromptInput:
            return self.input

    @dataclass
    class PathPasted(Message):
        """Paths of files were pasted (files dropped on the terminal): the screen may offer them
        as attachments; `text` is what was pasted, for the prompt if not."""

        text: str
        files: list[Path]

    async def _on_paste(self, event: events.Paste) -> None:
        files = [] if self.read_only else dropped_files(event.text)
        if files:
            event.stop()
            event.prevent_default()
            self.post_message(self.PathPasted(event.text, files))
            return
        await super()._on_paste(event)

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.prompt_history: list[str] = []
        self._history_index: int | None = None  # position while browsing history

    # The prompt's keys are priority bindings, which the app runs as the key arrives, while the
    # characters typed before it may still wait in this widget's queue (a fast typist, a paste,
    # keys sent in one burst): both actions queue behind them, so Enter sends all that was typed.
    def action_send(self) -> None:
        self.call_later(self._submit)

    def action_new_line(self) -> None:
        self.call_later(self._insert_new_line)

    def _insert_new_line(self) -> None:
        start, end = self.selection
        if not self.read_only:
            self.replace("\n", start, end, maintain_selection_offset=False)

    # The text area's own Up/Down (public actions): they recall earlier prompts while browsing them.
    def action_cursor_up(self, select: bool = False) -> None:
        if select or not self._browsing() or not self._recall(-1):
            super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if select or not self._browsing() or not self._recall(1):
            super().action_cursor_down(select)

    def _browsing(self) -> bool:
        """Up/Down go through earlier prompts: the input is empty or shows one of them."""
        return not self.text or self._history_index is not None

    def _recall(self, step: int) -> bool:
        if not self.prompt_history:
            return False
        if self._history_index is None:
            if step > 0:
                return False
            index = len(self.prompt_history) - 1
        else:
            index = self._history_index + step
        if index >= len(self.prompt_history):
            self._history_index = None
            self.load_text("")
            return True
        index = max(index, 0)
        self._history_index = index
        self.load_text(self.prompt_history[index])
        self.move_cursor(self.document.end)
        return True

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._history_index is not None and self.text != self.prompt_history[self._history_index]:
            self._history_index = None  # edited a recalled prompt: it is a new one now

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._history_index = None
        self.load_text("")
        self.post_message(self.Submitted(self, text))
