"""Streams text into a Markdown widget, one append at a time, with the user's input drawn first.

Like Textual's MarkdownStream, writes that come while an append is running are joined into the
next one, so the widget never falls behind. Two differences:

- A key, click or scroll that just came in is drawn before the next append. Each append lays out
  the whole screen (30-70 ms with a long reply in view); a key handled just before it was drawn
  in that layout's frame instead of the cheap repaint it needs alone (55-65 ms to show, against
  about 5). Waiting one frame first costs the stream ~20 ms per keypress, only while typing.
- `stop()` lets the append in flight finish, then appends what is left, so appends never overlap
  and whatever comes after `stop()` (the exact render at a reply's end) sees them all done. It
  uses no task cancellation, which `asyncio.wait_for` on Python 3.11 can swallow.

`when_appended(callback)` calls back once everything written so far is appended: the reply's
pacing (`bridge.pump_turn`) measures a batch from its post until then, parse and mount included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.widgets import Markdown

from tui.ui.activity import UserActivity

FRESH_INPUT_S = 0.05  # input this recent is drawn before the next append
FRESH_INPUT_WAIT_S = 0.1  # the most an append waits for that frame


class InputFirstStream:
    def __init__(self, markdown: Markdown, activity: UserActivity | None = None) -> None:
        self.markdown = markdown
        self.activity = activity
        self._pending: list[str] = []
        self._new_text = asyncio.Event()
        self._stopping = False
        self._appending = False
        self._waiting: list[Callable[[], None]] = []  # when_appended callbacks
        self._task: asyncio.Task | None = asyncio.create_task(self._run())

    async def write(self, fragment: str) -> None:
        if self._task is None:
            raise RuntimeError("the stream has stopped")
        if fragment:
            self._pending.append(fragment)
            self._new_text.set()
            await asyncio.sleep(0)  # let the stream pick it up

    def when_appended(self, callback: Callable[[], None]) -> None:
        """Call `callback` once all text written so far is in the widget (now, if it is, or if the
        stream ended: a failed append leaves nothing that would call back later)."""
        if (self._pending or self._appending) and self._task is not None and not self._task.done():
            self._waiting.append(callback)
        else:
            callback()

    async def stop(self) -> None:
        """Append what is still pending, then end. Returns once every append is done."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True  # no cancellation: an append is never cut short
            self._new_text.set()
            await task

    async def _run(self) -> None:
        try:
            await self._append_until_stopped()
        finally:
            self._call_back()  # a failed append or a stop: nobody waits for ever

    def _call_back(self) -> None:
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()

    async def _append_until_stopped(self) -> None:
        while True:
            await self._new_text.wait()
            if not self._stopping:
                await self._let_fresh_input_show()
            self._new_text.clear()
            text, self._pending = "".join(self._pending), []
            if text:
                self._appending = True
                try:
                    await self.markdown.append(text)
                finally:
                    self._appending = False
            if not self._pending:
                self._call_back()
            if self._stopping and not self._pending:
                return

    async def _let_fresh_input_show(self) -> None:
        widget = self.markdown
        if self.activity is None or not widget.is_attached:
            return
        if self.activity.seconds_since() < FRESH_INPUT_S and widget.screen.is_current:
            drawn = asyncio.Event()
            widget.call_after_refresh(drawn.set)
            # bounded: a screen that stops drawing (the app closing) must not stall the stream
            give_up = asyncio.get_running_loop().call_later(FRESH_INPUT_WAIT_S, drawn.set)
            try:
                await drawn.wait()
            finally:
                give_up.cancel()
