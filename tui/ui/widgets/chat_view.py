"""The scrollable chat pane. It follows a streaming reply only while the view is at the bottom:
scrolling up releases the anchor, scrolling back to the bottom restores it (Textual's anchor).

It also folds what is far from view. Textual lays out every widget on the screen at each change,
off-screen ones included, and a long reply is hundreds of Markdown block widgets: at 3,000 tokens
each layout took 50-500 ms, keypresses waited behind it and the decoder lost CPU to it. Message
Markdown more than a screen away from the viewport is folded (kept as text at its measured
height, no block widgets) and unfolded again as it scrolls near.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.events import Resize

from tui.ui.widgets.message import MessageMarkdown, MessageView

FOLD_MARGIN_SCREENS = 1  # Markdown within this many screen heights of the viewport stays rendered


class ChatView(VerticalScroll):
    DEFAULT_CSS = """
    ChatView {
        height: 1fr;
        padding: 0 1;
        scrollbar-gutter: stable;
    }
    """
    can_focus = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._refold_pending = False
        self._width = 0

    def on_mount(self) -> None:
        self.anchor()
        self.watch(self, "scroll_y", self.refold_soon, init=False)

    async def add(self, view: MessageView) -> MessageView:
        await self.mount(view)
        self.refold_soon()
        return view

    def on_message_view_body_added(self, message: MessageView.BodyAdded) -> None:
        message.stop()
        self.refold_soon()

    async def clear(self) -> None:
        await self.remove_children()
        self.anchor()

    # -- folding ---------------------------------------------------------------------------------

    async def on_resize(self, event: Resize) -> None:
        if event.size.width != self._width:
            # folded heights were measured at the old width: render everything again, then refold
            self._width = event.size.width
            for body in self._bodies():
                await body.unfold()
        self.refold_soon()

    def refold_soon(self) -> None:
        """Fold and unfold once the next layout is on screen (at most one pass per frame). Called
        on scrolling, resizes and new content (a view that follows a stream scrolls without
        telling its scroll_y watchers)."""
        if not self._refold_pending:
            self._refold_pending = True
            self.call_after_refresh(self._refold)

    def _bodies(self) -> list[MessageMarkdown]:
        return [child for view in self.query_children(MessageView) for child in view.query_children(MessageMarkdown)]

    async def _refold(self) -> None:
        self._refold_pending = False
        if not self.is_attached:  # the app is closing
            return
        # In content coordinates: where each body sits in the scrolled content (from the last
        # layout, which scrolling does not change) against the scroll offset as it is now. Screen
        # regions would lag a scroll that is not laid out yet, and nothing would fold after it.
        height = self.scrollable_content_region.height
        margin = height * FOLD_MARGIN_SCREENS
        near_top, near_bottom = self.scroll_y - margin, self.scroll_y + height + margin
        for view in self.query_children(MessageView):
            origin = view.virtual_region.y + view.styles.gutter.top
            for body in view.query_children(MessageMarkdown):
                if not body.is_attached:  # removed while an earlier body was folding
                    continue
                region = body.virtual_region.translate((0, origin))
                near = region.bottom >= near_top and region.y <= near_bottom
                if near and body.folded:
                    await body.unfold()
                elif not near and not body.folded and region.height:
                    await body.fold()
                    if not body.folded and body.lock.is_locked:  # mid-update: try again once it is done
                        self.set_timer(0.1, self.refold_soon)
