"""The scrollable chat pane. It follows a streaming reply only while the view is at the bottom:
scrolling up releases the anchor, scrolling back to the bottom restores it (Textual's anchor)."""

from __future__ import annotations

from textual.containers import VerticalScroll

from tui.widgets.message import MessageView


class ChatView(VerticalScroll):
    can_focus = True

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, view: MessageView) -> MessageView:
        await self.mount(view)
        return view

    def messages(self) -> list[MessageView]:
        return list(self.query_children(MessageView))

    async def clear(self) -> None:
        await self.remove_children()
        self.anchor()
