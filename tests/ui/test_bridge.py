"""The bridge from the engine to Textual: how it paces a reply's batches."""

from __future__ import annotations

import threading
import time

from tui.engine import Finished, TokenDelta, Turn
from tui.ui.bridge import ReplyDelta, ReplyEnded, pump_turn


class FrameTarget:
    """Stands in for the app: each batch is 'on screen' after `frame_s`, as a real frame would be."""

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self.posted: list[float] = []

    def post_message(self, message) -> None:
        if isinstance(message, ReplyDelta):
            self.posted.append(time.perf_counter())
            threading.Timer(self.frame_s, message.shown.set).start()
        assert isinstance(message, (ReplyDelta, ReplyEnded))


def batch_spacing(active: bool) -> float:
    """Median seconds between batches when every frame costs 20 ms and tokens come every 2 ms."""
    turn = Turn()

    def produce() -> None:
        for i in range(400):
            turn.emit(TokenDelta("x ", i + 1))
            time.sleep(0.002)
        turn.emit(Finished("x " * 400, "stop", None))

    producer = threading.Thread(target=produce)
    producer.start()
    target = FrameTarget(frame_s=0.02)
    pump_turn(target, turn, 1, user_is_active=lambda: active)
    producer.join()
    gaps = sorted(b - a for a, b in zip(target.posted, target.posted[1:], strict=False))
    return gaps[len(gaps) // 2]


def test_batches_rest_longer_while_the_user_is_active():
    """A frame costs `took`; the bridge rests 2x that between batches (UI idle half the time), and
    4x while the user types or scrolls, so a keypress lands in a frame less often."""
    idle, active = batch_spacing(False), batch_spacing(True)
    print(f"\nbatch spacing with 20 ms frames: {idle * 1000:.0f} ms, while the user is active {active * 1000:.0f} ms")
    assert active > 1.5 * idle
