"""Streaming into Markdown with the user's input first: the stream's own guarantees, and the
bridge that paces a reply's batches."""

from __future__ import annotations

import asyncio
import threading
import time

from textual.app import App, ComposeResult
from textual.widgets import Markdown

from tui.activity import UserActivity
from tui.bridge import ReplyDelta, ReplyEnded, pump_turn
from tui.engine import Finished, TokenDelta, Turn
from tui.widgets.markdown_stream import InputFirstStream


class MarkdownApp(App):
    def compose(self) -> ComposeResult:
        yield Markdown()


def record_appends(markdown: Markdown, log: list[str], entry=None) -> None:
    """Log each append's text (or `entry`) as the stream calls it."""
    append = markdown.append

    def recording(text: str):
        log.append(text if entry is None else entry)
        return append(text)

    markdown.append = recording


def test_writes_are_joined_in_order_and_stop_waits_for_every_append():
    async def scenario():
        app = MarkdownApp()
        async with app.run_test() as pilot:
            markdown = app.query_one(Markdown)
            appended: list[str] = []
            record_appends(markdown, appended)
            stream = InputFirstStream(markdown)
            words = [f"word{i}" + ("\n\n" if i % 10 == 9 else " ") for i in range(200)]
            for word in words:
                await stream.write(word)
            await stream.stop()  # what was pending is appended before it returns
            assert markdown.source == "".join(words)
            assert "".join(appended) == "".join(words)
            assert len(appended) < len(words)  # writes that came during an append were joined
            # every append is done and none overlapped: the blocks are the paragraphs, in order
            paragraphs = [str(block.render()).strip() for block in markdown.children]
            assert paragraphs == ["".join(words[i:i + 10]).strip() for i in range(0, 200, 10)]

    asyncio.run(scenario())


def test_an_append_waits_for_fresh_input_to_be_drawn():
    """A key that just came in is drawn (a frame goes out) before the stream's next append, whose
    layout would otherwise hold it back; input older than that does not slow the stream."""

    async def scenario():
        app = MarkdownApp()
        async with app.run_test() as pilot:
            markdown = app.query_one(Markdown)
            events: list[str] = []
            record_appends(markdown, events, "append")
            activity = UserActivity()
            stream = InputFirstStream(markdown, activity)
            await pilot.pause()

            activity.last_at = time.monotonic()  # a key, just now
            markdown.call_after_refresh(events.append, "frame")
            await stream.write("after a key ")
            await pilot.pause(0.2)
            assert events == ["frame", "append"]

            events.clear()
            activity.last_at = time.monotonic() - 1  # a second ago: no wait
            markdown.call_after_refresh(events.append, "frame")
            await stream.write("no key")
            await stream.stop()
            assert events[0] == "append"
            assert markdown.source == "after a key no key"

    asyncio.run(scenario())


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
            turn._emit(TokenDelta("x ", i + 1))
            time.sleep(0.002)
        turn._emit(Finished("x " * 400, "stop", None))

    producer = threading.Thread(target=produce)
    producer.start()
    target = FrameTarget(frame_s=0.02)
    pump_turn(target, turn, 1, user_is_active=lambda: active)
    producer.join()
    gaps = sorted(b - a for a, b in zip(target.posted, target.posted[1:]))
    return gaps[len(gaps) // 2]


def test_batches_rest_longer_while_the_user_is_active():
    """A frame costs `took`; the bridge rests 2x that between batches (UI idle half the time), and
    4x while the user types or scrolls, so a keypress lands in a frame less often."""
    idle, active = batch_spacing(False), batch_spacing(True)
    print(f"\nbatch spacing with 20 ms frames: {idle * 1000:.0f} ms, while the user is active "
          f"{active * 1000:.0f} ms")
    assert active > 1.5 * idle
