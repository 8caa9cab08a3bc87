"""An image of the chat, full size: as large as the screen allows, its name and size below."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.core.attachments import human_size
from tui.store.parts import ImagePart
from tui.text import inert
from tui.ui.actions import Keymap, bindings
from tui.ui.screens.modal import Modal
from tui.ui.widgets.attachments import picture


class ImageViewer(Modal[None]):
    BINDINGS = bindings("image_viewer")
    DEFAULT_CSS = """
    ImageViewer { align: center middle; }
    ImageViewer #viewer {
        width: 95%; height: 95%; border: round $primary; background: $surface; align-horizontal: center;
    }
    ImageViewer .full { width: auto; height: 1fr; }
    ImageViewer #viewer-caption { height: 1; width: 1fr; color: $text-muted; }
    """

    def __init__(self, image: ImagePart, images: Sequence[ImagePart] = ()) -> None:
        """`image` first; `images` (the message's, or the chat's, in order) are a step away."""
        super().__init__()
        self.images = list(images) or [image]
        self.index = next((n for n, other in enumerate(self.images) if other == image), 0)

    @property
    def image(self) -> ImagePart:
        return self.images[self.index]

    def compose_dialog(self) -> ComposeResult:
        with Vertical(id="viewer"):
            yield picture(self, self.image.data, "full")
            yield Static(inert(self.caption()), id="viewer-caption", markup=False)

    def caption(self) -> str:
        keymap = Keymap.of(self.app)
        image = self.image
        text = f"{image.name} · {image.mime} · {human_size(len(image.data))}"
        if len(self.images) > 1:
            steps = f"{keymap.shown('image_viewer.previous')}/{keymap.shown('image_viewer.next')}"
            text += f" · {self.index + 1} of {len(self.images)} ({steps}: the others)"
        return f"{text}   {keymap.shown('image_viewer.close')}: close"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "step" or len(self.images) > 1  # one image: no keys for the others

    async def action_step(self, step: int) -> None:
        if len(self.images) < 2:
            return
        self.index = (self.index + step) % len(self.images)
        viewer = self.query_one("#viewer", Vertical)
        await viewer.remove_children()
        await viewer.mount(
            picture(self, self.image.data, "full"), Static(inert(self.caption()), id="viewer-caption", markup=False)
        )

    def action_close(self) -> None:
        self.dismiss(None)
