"""The one adapter between the engine's plain events and Textual messages.

A Textual thread worker reads a Turn's queue (it never touches torch), batches every delta that
arrived since the last read into one message, and posts it to the app (`post_message` is
thread-safe). Posts are spaced at least a frame apart, so the UI does at most ~30 updates a
second however fast tokens come (at CPU decode speeds every token still shows at once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual.message import Message
from textual.message_pump import MessagePump

from tui.engine import Failed, Finished, TokenDelta, Turn


@dataclass
class ReplyDelta(Message):
    """New reply text since the last batch."""

    turn_id: int
    text: str
    tokens: int  # reply tokens so far
    first_token_at: float  # perf_counter of the first delta (for live tok/s)


@dataclass
class ReplyEnded(Message):
    turn_id: int
    final: Finished | Failed


FRAME_S = 1 / 30


def pump_turn(target: MessagePump, turn: Turn, turn_id: int) -> None:
    """Forward a turn's events to `target` until it ends (run in a thread worker)."""
    first_at: float | None = None
    last_post = 0.0
    for event in turn:
        wait = last_post + FRAME_S - time.perf_counter()
        if wait > 0 and not isinstance(event, (Finished, Failed)):
            time.sleep(wait)  # let more tokens gather: one UI update per frame at most
        last_post = time.perf_counter()
        batch = [event] + turn.drain()
        text = "".join(e.text for e in batch if isinstance(e, TokenDelta))
        deltas = [e for e in batch if isinstance(e, TokenDelta)]
        if deltas:
            if first_at is None:
                first_at = time.perf_counter()
            target.post_message(ReplyDelta(turn_id, text, deltas[-1].tokens, first_at))
        final = next((e for e in batch if isinstance(e, (Finished, Failed))), None)
        if final is not None:
            turn.final = final
            target.post_message(ReplyEnded(turn_id, final))
            return
