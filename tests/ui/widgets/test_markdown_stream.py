"""Streaming into Markdown with the user's input first: the stream's own guarantees."""

from __future__ import annotations

import asyncio
import time

from pilot import wait_for
from textual.app import App, ComposeResult
from textual.widgets import Markdown

from tui.ui.activity import UserActivity
from tui.ui.widgets.markdown_stream import InputFirstStream


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
        async with app.run_test():
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
            assert paragraphs == ["".join(words[i : i + 10]).strip() for i in range(0, 200, 10)]

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


def test_when_appended_calls_back_once_the_text_written_is_in_the_widget():
    """The reply's pacing measures a batch from its post until `when_appended` calls back: if it
    called back before the append (parse and mount), the UI's real cost per frame went unseen
    and the stream drew more frames than the UI could afford."""

    async def scenario():
        app = MarkdownApp()
        async with app.run_test() as pilot:
            markdown = app.query_one(Markdown)
            stream = InputFirstStream(markdown)
            seen: list[str] = []
            stream.when_appended(lambda: seen.append(markdown.source))  # nothing written: at once
            assert seen == [""]

            await stream.write("one paragraph\n\n")
            await stream.write("- an item\n- another")
            stream.when_appended(lambda: seen.append(markdown.source))
            assert len(seen) == 1  # not yet: the append has not run
            await wait_for(pilot, lambda: len(seen) == 2)
            assert seen == ["", "one paragraph\n\n- an item\n- another"]
            assert len(markdown.children) == 2  # the blocks were mounted by then

            await stream.write("\n\nlast")
            stream.when_appended(lambda: seen.append(markdown.source))
            await stream.stop()  # stopping appends what is pending, then calls back
            assert seen[-1].endswith("last")

    asyncio.run(scenario())
