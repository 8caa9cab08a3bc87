"""One chat message: a role header, Markdown body, an optional reasoning section, and stats.

An assistant reply streams through an InputFirstStream (appends parse only the last block),
and ends with one full render so the final Markdown is exact. All text passes through `inert()`
first: control characters from a model or a file never reach the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.containers import Vertical
from textual.message import Message
from textual.widget import MountError, Widget
from textual.widgets import Collapsible, Markdown, Static

from tui.store.parts import Attachment
from tui.text import ThinkSplitter, chunk_cut, inert, markdown_parser, split_think
from tui.ui.actions import Keymap, bindings
from tui.ui.activity import UserActivity
from tui.ui.widgets.attachments import AttachmentsShown
from tui.ui.widgets.markdown_stream import InputFirstStream

ROLE_TITLES = {
    "user": "You",
    "assistant": "Assistant",
    "system": "System",
    "error": "Error",
    "note": "chatui",
    "tool": "Tool",
}


class LiveMarkdown(Markdown):
    """Markdown with chat's line breaks (`tui.text.markdown_parser`: a newline in a paragraph is a
    line break, as the model wrote it), whose changes reach the screen at once. Textual's Markdown appends and updates
    inside `App.batch_update()`, and a screen update that falls due during a batch is skipped; the
    batch's end wakes only the app, not the screen, so what changed meanwhile (a key typed into
    the prompt while a reply streamed) waited for whatever next sent the screen a message. Each
    append or update now wakes the screen when it is done."""

    def __init__(self, markdown: str | None = None, **kwargs) -> None:
        super().__init__(markdown, parser_factory=markdown_parser, **kwargs)

    def append(self, markdown: str) -> AwaitComplete:
        return AwaitComplete(self._then_rendered(super().append(markdown)))

    def update(self, markdown: str) -> AwaitComplete:
        return AwaitComplete(self._then_rendered(super().update(markdown)))

    async def _then_rendered(self, work: AwaitComplete) -> None:
        await work
        self.rendered()

    def rendered(self) -> None:
        """Called once an append or update is mounted."""
        if self.is_attached:
            self.screen.check_idle()


class MessageMarkdown(LiveMarkdown):
    """A message's Markdown that can fold. Textual lays out every widget of a screen at each
    change, off-screen ones too, and a long reply is hundreds of block widgets (one per paragraph,
    list item, code fence). Folded, it keeps its text and its height but drops its blocks, so a
    long chat costs what its visible part costs; it unfolds (renders again) when scrolled near.
    The chat pane decides when (`ChatView`)."""

    folded = False
    streaming = False  # a stream writes into it: never folded
    flush_bottom = True  # no margin under its last block: it ends the message, or its list goes on
    _marked_end: Widget | None = None

    # The last block's margin is dropped through a class, not `:last-child`: a rule with an order
    # pseudo-class makes Textual restyle every block of the body at each mount, which was 40% of
    # the UI's time while a long reply streamed; and each chunk of a long reply is a body of its
    # own, so `:last-child` also ran paragraphs together where one chunk met the next.

    def mark_end(self) -> None:
        """Put the `-end` class on the last block (if `flush_bottom`), and only there."""
        last = self.children[-1] if self.flush_bottom and self.children else None
        marked = self._marked_end
        if marked is not last:
            if marked is not None:
                marked.remove_class("-end")
            if last is not None:
                last.add_class("-end")
            self._marked_end = last

    def rendered(self) -> None:
        self.mark_end()
        super().rendered()

    async def fold(self) -> None:
        height = self.outer_size.height
        if self.folded or self.streaming or not height or not self.children or self.lock.is_locked:
            return
        self.folded = True
        self.styles.height = height  # border-box: what it measured, padding included
        await self.remove_children()

    async def unfold(self, markdown: str | None = None) -> None:
        """Render again (with `markdown` as the new text, if given)."""
        if self.folded:
            self.folded = False
            await super().update(self.source if markdown is None else markdown)
            self.styles.height = None  # back to the stylesheet's auto

    def update(self, markdown: str) -> AwaitComplete:
        if not self.folded:
            return super().update(markdown)
        if markdown == self.source:  # the exact render at a reply's end, of a chunk off-screen
            return AwaitComplete()
        return AwaitComplete(self.unfold(markdown))


class MessageView(Vertical, can_focus=True):
    """A message in the chat pane. `role` is user, assistant, error or note. Focus one (click or
    Tab) to act on it: copy, edit, delete, regenerate, or switch between its versions."""

    DEFAULT_CSS = """
    MessageView {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
        /* a role's bar is a quarter-cell line; the focused message's a full block in the text's
           colour: most of the bar's cell changes from background to foreground (WCAG 2.2's 3:1) */
        &.user { background: $primary 12%; border-left: wide $primary; }
        &.assistant { border-left: wide $secondary; }
        &.error { border-left: wide $error; background: $error 10%; }
        &.note { border-left: wide $accent; color: $text-muted; }
        &.tool { border-left: wide $warning; background: $warning 6%; }
        &:focus { background: $accent 10%; border-left: thick $foreground; }
        .message-header { color: $text-muted; text-style: bold; }
        &.user .message-header { color: $primary; }
        &.assistant .message-header { color: $secondary; }
        .message-header.streaming { text-style: bold italic; }
        Markdown { margin: 0; padding: 0; background: transparent; }
        .message-stats { color: $text-muted; text-style: italic; }
        .think { background: transparent; border: none; padding: 0; margin: 0; color: $text-muted; }
        /* MessageMarkdown.mark_end: no blank line under a message */
        .message-body > MarkdownBlock.-end { margin-bottom: 0; }
    }
    """

    BINDINGS = bindings("message")

    @dataclass
    class Action(Message):
        view: MessageView
        action: str

    @dataclass
    class Typed(Message):
        """The user typed while this message had focus: the text belongs in the prompt."""

        text: str

    class BodyAdded(Message):
        """A finished part of a long reply: the chat pane may fold what has scrolled far away."""

    @dataclass
    class _Append(Message):
        text: str
        shown: threading.Event | None = None

    @dataclass
    class _Finish(Message):
        text: str
        status: str
        stats: str

    def __init__(
        self,
        role: str,
        text: str = "",
        *,
        stats: str = "",
        status: str = "ok",
        version: str = "",
        message_id: str | None = None,
        attachments: Sequence[Attachment] = (),
        keymap: Keymap | None = None,
        activity: UserActivity | None = None,
        **kwargs,
    ) -> None:
        super().__init__(classes=f"message {role}", **kwargs)
        self.keymap = keymap or Keymap()  # the keys named in hints
        self.activity = activity  # the user's input, which a streaming reply lets draw first
        self.message_id = message_id
        self.attachments = tuple(attachments)  # shown above the text
        self.role = role
        self.text = text
        self.status = status
        self._stats = stats
        self._version = version
        self._splitter: ThinkSplitter | None = None
        self._streams: dict[str, InputFirstStream] = {}
        self._chunk_text = ""  # answer text in the Markdown widget being streamed into
        self._cut_next: bool | None = None  # start a new widget before more text (its flush_bottom)
        self._answer_len = 0  # characters of answer text so far (what was there, plus the stream)
        self._cuts: list[int] = []  # where each further Markdown widget of the answer begins

    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), classes="message-header")
        if self.attachments:
            yield AttachmentsShown(self.attachments)
        think, answer = split_think(self.text) if self.role == "assistant" else ("", self.text)
        thinking = Collapsible(
            LiveMarkdown(inert(think), open_links=False, classes="think-body"),
            title="Reasoning",
            collapsed=True,
            classes="think",
        )
        thinking.display = bool(think)
        yield thinking
        yield MessageMarkdown(inert(answer), open_links=False, classes="message-body")
        stats = Static(self._stats, classes="message-stats")
        stats.display = bool(self._stats)
        yield stats

    def _header_text(self) -> str:
        title = ROLE_TITLES.get(self.role, self.role)
        continues = self.keymap.key("chat.continue")
        if self.status == "stopped":
            title += f" · stopped ({continues} continues)"
        elif self.status == "failed":
            title += " · failed"
        elif self.status == "length":
            title += f" · cut off ({continues} continues)"
        elif self.status == "interrupted":
            title += f" · interrupted ({continues} continues)"
        if self._version:
            previous, following = self.keymap.key("message.previous_version"), self.keymap.key("message.next_version")
            title += f" · {self._version} ({previous}/{following})"
        return title

    @property
    def body(self) -> MessageMarkdown:
        return self.query_one(".message-body", MessageMarkdown)

    def action_act(self, action: str) -> None:
        self.post_message(self.Action(self, action))

    def on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self.post_message(self.Typed(event.character))

    def action_move(self, step: int) -> None:
        siblings = [v for v in self.parent.children if isinstance(v, MessageView)] if self.parent else []
        index = siblings.index(self) + step if self in siblings else -1
        if 0 <= index < len(siblings):
            siblings[index].focus()
            siblings[index].scroll_visible()

    # -- streaming ------------------------------------------------------------------------------

    # The app hands streaming work to the view's own message queue, so parsing and rendering
    # never hold up the app's queue, where key presses arrive.

    def append_later(self, fragment: str, shown: threading.Event | None = None) -> None:
        """Queue streamed text; `shown` is set once it is on screen (or the stream is over)."""
        self.text += fragment  # what the message is, now; the render follows
        self.post_message(self._Append(fragment, shown))

    def finish_later(self, text: str, *, status: str = "ok", stats: str = "") -> None:
        self.text, self.status = text, status  # what the message is, now; the render follows
        self.post_message(self._Finish(text, status, stats))

    async def on_message_view__append(self, message: _Append) -> None:
        message.stop()
        try:
            if self._splitter is not None:
                await self._render_fragment(message.text)
        except MountError:
            if not self._going_away():
                raise
        shown = message.shown
        if shown is not None:

            def show_after_refresh() -> None:
                self.call_after_refresh(shown.set)

            self._when_appended(show_after_refresh)

    def _when_appended(self, callback: Callable[[], None]) -> None:
        """Call back once the text written so far is in every stream's widget, so `shown` covers
        the Markdown parse and mount: the reply's pacing is measured from it."""
        streams = list(self._streams.values())
        left = len(streams)

        def one_done() -> None:
            nonlocal left
            left -= 1
            if left == 0:
                callback()

        if not streams:
            callback()
        for stream in streams:
            stream.when_appended(one_done)

    async def on_message_view__finish(self, message: _Finish) -> None:
        message.stop()
        try:
            await self.finish(message.text, status=message.status, stats=message.stats)
        except MountError:
            if not self._going_away():
                raise

    def _going_away(self) -> bool:
        """The view or the app is being taken down (quit as a reply ends): nothing left to draw."""
        return not self.is_attached or not self.is_running or not self.is_parent_active

    def start_stream(self) -> None:
        self._splitter = ThinkSplitter()
        self._answer_len, self._cuts = len(split_think(self.text)[1] if self.role == "assistant" else self.text), []
        self._set_streaming(True)

    async def _render_fragment(self, fragment: str) -> None:
        assert self._splitter is not None, "start_stream() first"
        for piece in self._splitter.feed(fragment):
            await self._write(piece.kind, piece.text)

    async def _write(self, kind: str, text: str) -> None:
        if kind == "answer":
            # A long reply streams into a chain of Markdown widgets, so each append re-parses a
            # short document and the cost per token stays flat however long the reply grows.
            # finish() renders each widget's whole text once at the end.
            if self._cut_next is not None:
                await self._next_chunk(flush_bottom=self._cut_next)
            cut = chunk_cut(self._chunk_text, text)
            if cut is not None:
                at, flush_bottom = cut
                if at < len(text):  # the next chunk starts inside this text
                    if at:
                        await self._write(kind, text[:at])
                    await self._next_chunk(flush_bottom)
                    await self._write(kind, text[at:])
                    return
                self._cut_next = flush_bottom  # after this text: once more comes
        stream = self._streams.get(kind)
        if stream is None:
            if kind == "think":
                section = self.query_one(".think", Collapsible)
                section.display = True
                target = section.query_one(".think-body", Markdown)
            else:
                target = self.body
                await target.unfold()
                target.streaming = True
            stream = self._streams[kind] = InputFirstStream(target, self.activity)
        await stream.write(inert(text))
        if kind == "answer":
            self._chunk_text += text
            self._answer_len += len(text)

    async def _next_chunk(self, flush_bottom: bool) -> None:
        """End the Markdown widget being streamed into and stream into a new one after it."""
        await self._stop_stream("answer")
        chunk = MessageMarkdown(open_links=False, classes="message-body stream-chunk")
        chunk.streaming = True
        previous = self.query(".message-body").last(MessageMarkdown)
        previous.flush_bottom = flush_bottom
        previous.mark_end()
        await self.mount(chunk, after=previous)
        self._streams["answer"] = InputFirstStream(chunk, self.activity)
        self.post_message(self.BodyAdded())
        self._chunk_text, self._cut_next = "", None
        self._cuts.append(self._answer_len)

    async def finish(self, text: str, *, status: str = "ok", stats: str = "") -> None:
        """End the stream and render the whole reply once, exactly: each Markdown widget of a long
        reply is parsed again from its own full text (they were cut where Markdown splits cleanly,
        see `chunk_cut`, so each is whole Markdown), one widget at a time so input is handled in
        between."""
        for kind in list(self._streams):
            await self._stop_stream(kind)
        self._splitter = None
        self._chunk_text, self._cut_next = "", None
        self._set_streaming(False)
        if self._cuts and self.role == "assistant" and self.query(".message-body"):
            self.text = text
            think, answer = split_think(text)
            section = self.query_one(".think", Collapsible)
            section.display = bool(think)
            await section.query_one(".think-body", Markdown).update(inert(think))
            bounds = [0, *self._cuts, len(answer)]
            for widget, start, end in zip(
                self.query(".message-body").results(Markdown), bounds, bounds[1:], strict=False
            ):
                await widget.update(inert(answer[start:end]))
        else:
            await self.set_text(text)
        self._cuts = []
        self.set_status(status)
        self.set_stats(stats)

    async def set_text(self, text: str) -> None:
        self.text = text
        if not self.query(".think") or not self.query(".message-body"):
            self.call_after_refresh(self.set_text, text)  # children not mounted yet: once they are
            return
        await self.query(".stream-chunk").remove()  # a new text is one Markdown widget again
        self.body.flush_bottom = True
        think, answer = split_think(text) if self.role == "assistant" else ("", text)
        section = self.query_one(".think", Collapsible)
        section.display = bool(think)
        await section.query_one(".think-body", Markdown).update(inert(think))
        await self.body.update(inert(answer))

    async def _stop_stream(self, kind: str) -> None:
        # None to stop after a chunk's mount failed while the view was being taken down (the
        # MountError is let go, see on_message_view__append): the next chunk starts afresh.
        stream = self._streams.pop(kind, None)
        if stream is not None:
            await stream.stop()
        if kind == "answer":
            for body in self.query(".message-body").results(MessageMarkdown):
                body.streaming = False

    def _set_streaming(self, streaming: bool) -> None:
        # On the header, the only widget the class styles: a class change on the message itself
        # restyles every widget inside it (~1 s at the end of a 3,000-token reply).
        for header in self.query(".message-header").results(Static):
            header.set_class(streaming, "streaming")

    def set_status(self, status: str) -> None:
        self.status = status
        self._update_header()

    def set_version(self, version: str) -> None:
        self._version = version
        self._update_header()

    def _update_header(self) -> None:
        for header in self.query(".message-header").results(Static):  # none yet before compose
            header.update(self._header_text())

    def set_stats(self, stats: str) -> None:
        self._stats = stats
        for widget in self.query(".message-stats").results(Static):
            widget.update(stats)
            widget.display = bool(stats)
