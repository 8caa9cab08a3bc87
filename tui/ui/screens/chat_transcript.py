"""The open conversation on screen: a MessageView per message (the newest RENDER_WINDOW drawn
at first, a button for earlier ones), notes, and the status bar's figures of the conversation.
A part of the chat screen (screens/chat.py), which owns the widgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Button

from tui.engine.adapters import describe
from tui.store import Message as StoredMessage
from tui.store.meta import MessageMeta
from tui.store.parts import attachments_of
from tui.ui.bridge import ContextCounted, count_context
from tui.ui.screens.chat_tools import tool_card
from tui.ui.widgets.message import MessageView

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen

RENDER_WINDOW = 20  # messages drawn when a conversation opens (more on request)


def stats_text(meta: MessageMeta) -> str:
    """A reply's stats line: its tokens, speed and TTFT, and the adapters it was made with."""
    metrics = meta.metrics
    if metrics is None or not metrics.new_tokens:
        return ""
    tokens = metrics.new_tokens
    speed = f"{metrics.decode_tok_s:.1f} tok/s · TTFT {metrics.ttft_s:.2f} s"
    adapter = f" · adapter {describe(meta.adapters)}" if meta.adapters else ""
    if metrics.continued_tokens:  # a continued reply: the whole reply, then its last part's speed
        return f"{tokens} tokens · the last {metrics.continued_tokens} continued at {speed}{adapter}"
    return f"{tokens} token{'' if tokens == 1 else 's'} · {speed}{adapter}"


class Transcript:
    """The message views of the open conversation, by message id."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.views: dict[str, MessageView] = {}
        self._context_request = 0  # the latest count of the conversation's tokens asked for

    def message_view(self, role: str, text: str, **kwargs: Any) -> MessageView:
        return MessageView(role, text, keymap=self.screen.keymap, activity=self.screen.activity, **kwargs)

    def view_for(self, message: StoredMessage) -> MessageView:
        if message.role == "tool":  # a short card: the call, its outcome, the first lines
            attached = attachments_of(message.parts)  # a tool's images (MCP image content)
            return self.message_view("tool", tool_card(message), message_id=message.id, attachments=attached)
        return self.message_view(
            message.role,
            message.content,
            stats=stats_text(message.meta),
            status=message.status,
            version=self.screen.session.version_label(message),
            message_id=message.id,
            attachments=attachments_of(message.parts),
        )

    async def mount(self, message: StoredMessage) -> MessageView:
        view = await self.screen.chat.add(self.view_for(message))
        self.views[message.id] = view
        self.screen.refresh_welcome()
        return view

    async def render(self) -> None:
        """Show the active branch again (after opening, switching versions, editing, deleting).
        Only the newest RENDER_WINDOW messages are drawn at first; a button draws earlier ones."""
        await self.screen.chat.clear()
        self.views = {}
        await self._show_earlier(len(self.screen.messages))
        self.screen.chat.anchor()
        self.screen.refresh_welcome()
        self.show_figures()

    def unanswered(self) -> bool:
        """The chat's last message is the user's, with no reply (imported so, or its reply deleted)."""
        messages = self.screen.messages
        return bool(messages) and messages[-1].role == "user" and self.screen.session.reply is None

    def hint_unanswered(self) -> None:
        """Say how to answer a last message that has no reply."""
        if self.unanswered():
            key = self.screen.keymap.key("chat.regenerate")
            self.screen.notify(f"Your last message has no reply: {key} answers it.", timeout=10)

    def show_figures(self) -> None:
        """The status bar's figures of the open conversation: tok/s and TTFT of its last reply
        (none if it has none yet), and the context it fills (its last reply's figure while that
        is the last message, else counted by the engine)."""
        messages, status = self.screen.messages, self.screen.status
        replies = [
            m.meta.metrics for m in messages if m.role == "assistant" and m.meta.metrics and m.meta.metrics.new_tokens
        ]
        last = replies[-1] if replies else None
        status.update_info(tok_s=last.decode_tok_s if last else None, ttft_s=last.ttft_s if last else None)
        self.forget_context_count()
        metrics = messages[-1].meta.metrics if messages else None
        if metrics is not None and metrics.new_tokens:
            # (a continued reply's prompt held its earlier part: only the last part is new)
            status.update_info(context_used=metrics.prompt_tokens + (metrics.continued_tokens or metrics.new_tokens))
        elif not messages or self.screen.engine.info is None:
            status.update_info(context_used=0)
        else:
            count_context(self.screen, self.screen.engine, self.screen.session.history(), self._context_request)

    def forget_context_count(self) -> None:
        """A count asked for before now is out of date (a reply started, the chat changed)."""
        self._context_request += 1

    def context_counted(self, message: ContextCounted) -> None:
        if message.request == self._context_request and not self.screen.replies.running:
            self.screen.status.update_info(context_used=message.tokens)

    async def _show_earlier(self, first_shown: int) -> None:
        """Draw up to RENDER_WINDOW messages before message `first_shown`, and a button for the rest."""
        chat, messages = self.screen.chat, self.screen.messages
        earlier = messages[max(0, first_shown - RENDER_WINDOW) : first_shown]
        views = [self.view_for(m) for m in earlier]
        for message, view in zip(earlier, views, strict=True):
            self.views[message.id] = view
        if views:
            if first_shown < len(messages):
                chat.release_anchor()
            await chat.mount_all(views, before=0 if chat.children else None)
        hidden = first_shown - len(earlier)
        if hidden:
            await chat.mount(
                Button(f"Show {min(hidden, RENDER_WINDOW)} earlier messages ({hidden} hidden)", id="show-earlier"),
                before=0,
            )
        chat.refold_soon()

    async def show_earlier(self, button: Button) -> None:
        await button.remove()
        messages = self.screen.messages
        await self._show_earlier(next((i for i, m in enumerate(messages) if m.id in self.views), len(messages)))

    async def add_note(self, text: str, role: str = "note") -> None:
        await self.screen.chat.add(self.message_view(role, text))
