"""The chat pane folds message Markdown far from view (keeps its text and height, drops its block
widgets) and unfolds it when scrolled near: a long chat lays out like a short one."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import booted, message_views, run, send, wait_for
from textual.widgets.markdown import MarkdownBlock


def long_reply(paragraphs: int = 120) -> str:
    blocks = []
    for i in range(paragraphs):
        blocks.append(f"Paragraph {i} is about **bold** ideas and `code` in a sentence of several words.")
        if i % 10 == 4:
            blocks.append("- item one\n- item two\n- item three")
    return "\n\n".join(blocks)


REPLY = long_reply()


def after_a_long_reply(tmp_path, check, reply: str = REPLY) -> None:
    """Run `await check(pilot, app)` once a long reply has streamed into the app (100x24)."""

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine([reply], token_delay=0.0005), size=(100, 24)) as (pilot, app):
            await send(pilot, app, "write a lot")
            await wait_for(
                pilot, lambda: app.chat_screen.state == "ready" and message_views(app.chat_screen)[-1].text == reply
            )
            await pilot.pause(0.3)
            await check(pilot, app)

    run(scenario())


def block_count(app) -> int:
    return len(app.chat_screen.chat.query(MarkdownBlock))


async def unfold_all(pilot, app) -> None:
    for body in app.chat_screen.chat._bodies():
        await body.unfold()
    await pilot.pause(0.1)


def test_far_markdown_is_folded_and_unfolds_when_scrolled_near(tmp_path):
    async def check(pilot, app):
        bodies = app.chat_screen.chat._bodies()
        assert len(bodies) > 4  # the reply streamed into a chain of chunks
        assert bodies[1].folded and not bodies[-1].folded  # the top is far away, the end in view
        folded_blocks, folded_height = block_count(app), app.chat_screen.chat.virtual_size.height
        assert message_views(app.chat_screen)[-1].text == REPLY and app.chat_screen.messages[-1].content == REPLY

        app.chat_screen.chat.scroll_home(animate=False)
        await wait_for(pilot, lambda: not bodies[1].folded and bodies[-1].folded)
        assert "Paragraph 0 is about" in str(bodies[1].children[0].render())
        assert app.chat_screen.chat.virtual_size.height == folded_height  # nothing moved

        await unfold_all(pilot, app)
        assert block_count(app) > 2 * folded_blocks  # what every layout walked before folding
        assert app.chat_screen.chat.virtual_size.height == folded_height  # folded heights were exact

        app.chat_screen.chat.scroll_end(animate=False)
        await wait_for(pilot, lambda: bodies[1].folded)
        await bodies[1].update("A new **text**.")  # an edit reaches a folded body: it renders
        assert not bodies[1].folded and bodies[1].source == "A new **text**."
        assert "A new text." in str(bodies[1].children[0].render())

    after_a_long_reply(tmp_path, check)


def test_a_width_change_measures_folded_markdown_again(tmp_path):
    async def check(pilot, app):
        assert app.chat_screen.chat._bodies()[1].folded
        await pilot.resize_terminal(70, 24)  # narrower: every paragraph wraps onto more lines
        await pilot.pause(0.5)
        await wait_for(pilot, lambda: app.chat_screen.chat._bodies()[1].folded)  # refolded at the new width
        height = app.chat_screen.chat.virtual_size.height
        await unfold_all(pilot, app)
        assert app.chat_screen.chat.virtual_size.height == height

    after_a_long_reply(tmp_path, check)


def test_paragraphs_keep_their_blank_line_where_one_chunk_meets_the_next(tmp_path):
    """A long reply is a chain of Markdown widgets; where one ends and the next begins the reader
    must see the same one blank line as between any two paragraphs, and the message must end
    with no blank line under its last block."""

    async def check(pilot, app):
        await unfold_all(pilot, app)
        app.chat_screen.chat.scroll_end(animate=False)
        view = message_views(app.chat_screen)[-1]
        bodies = app.chat_screen.chat._bodies()[-4:]
        for before, after in zip(bodies, bodies[1:], strict=False):
            last, first = before.children[-1], after.children[0]
            assert first.region.y - last.region.bottom == 1, (last.source_range, first.source_range)
        stats = view.query_one(".message-stats")
        assert stats.region.y == bodies[-1].children[-1].region.bottom  # no blank line before it
        assert sum(block.has_class("-end") for body in bodies for block in body.children) == 1

    after_a_long_reply(tmp_path, check)


def test_a_long_list_streams_in_chunks_that_read_as_one_list(tmp_path):
    """A 300-item list has no blank line to cut at: it is cut between items instead, so each
    append re-parses a short list, and the halves join with no gap and go on numbering."""
    reply = "Steps:\n\n" + "".join(f"{i}. Step number {i} of the plan\n" for i in range(1, 301))

    async def check(pilot, app):
        await unfold_all(pilot, app)
        reply_view = message_views(app.chat_screen)[-1]
        bodies = [body for body in app.chat_screen.chat._bodies() if body.parent is reply_view]
        assert len(bodies) >= 5  # the list was cut, not streamed as one growing block
        assert "".join(body.source for body in bodies) == reply
        app.chat_screen.chat.scroll_end(animate=False)
        await pilot.pause(0.2)
        for before, after in zip(bodies[-4:], bodies[-3:], strict=False):
            last, first = before.children[-1], after.children[0]
            assert first.region.y == last.region.bottom  # no blank line inside the list
            number = int(after.source.split(".", 1)[0])
            assert first.query("MarkdownBullet").first().symbol.strip() == f"{number}."  # numbering goes on
        assert app.chat_screen.messages[-1].content == reply

    after_a_long_reply(tmp_path, check, reply)


def test_chunks_are_cut_only_where_markdown_splits_cleanly():
    from tui.text import CHUNK_CHARS, chunk_cut

    para = "word " * (CHUNK_CHARS // 5)
    assert chunk_cut("", "short") is None
    assert chunk_cut(para, "more words\n\nNext") == (len("more words\n\n"), False)
    items = "".join(f"- item {i}\n" for i in range(200))
    at, flush = chunk_cut(items[: CHUNK_CHARS + 3], items[CHUNK_CHARS + 3 : CHUNK_CHARS + 40])
    assert flush and (items[: CHUNK_CHARS + 3] + items[CHUNK_CHARS + 3 :])[CHUNK_CHARS + 3 + at :].startswith("- item")
    assert chunk_cut("```\n" + "code line\n" * 100, "more\n\nstill code\n") is None  # inside a fence
    assert chunk_cut("- a\n" * 250, "1. b\n") is None  # a bullet list, then an ordered one: two lists
    assert chunk_cut("- a\n" * 250, "  - nested\n") is None  # not a top-level item


def test_a_streamed_fragment_is_shown_only_once_its_markdown_is_in_the_message(tmp_path):
    """The bridge spaces the reply's frames by how long a batch takes from its post to `shown`;
    `shown` used to be set after the next refresh even when the Markdown append (parse, mount,
    layout) had not run yet, so the UI looked cheaper than it was and took most of a core late in
    a long reply."""
    import asyncio
    import threading

    from textual.app import App, ComposeResult
    from textual.await_complete import AwaitComplete

    from tui.ui.widgets.message import MessageView

    class OneMessage(App):
        def compose(self) -> ComposeResult:
            yield MessageView("assistant", "")

    async def scenario():
        app = OneMessage()
        async with app.run_test() as pilot:
            view = app.query_one(MessageView)
            view.start_stream()
            body = view.body
            append = body.append

            def slow_append(text: str) -> AwaitComplete:  # a parse and mount that outlast a frame
                async def later() -> None:
                    await asyncio.sleep(0.15)
                    await append(text)

                return AwaitComplete(later())

            body.append = slow_append  # type: ignore[method-assign]
            seen: list[str] = []
            fragments = ["Here is **one** paragraph.\n\n", "- a list\n- of two\n\n", "```python\nx = 1\n```\n"]
            for fragment in fragments:
                shown = threading.Event()
                shown_set = shown.set

                def record(shown_set=shown_set) -> None:
                    seen.append(view.body.source)
                    shown_set()

                shown.set = record  # type: ignore[method-assign]
                view.append_later(fragment, shown=shown)
                await wait_for(pilot, shown.is_set)
            texts = ["".join(fragments[: i + 1]) for i in range(len(fragments))]
            assert seen == texts

    run(scenario())
