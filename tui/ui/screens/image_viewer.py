"""An image of the chat, full size: as large as the screen allows, its name and size below."""

from __future__ import annotations

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

    def __init__(self, image: ImagePart) -> None:
        super().__init__()
        self.image = image

    def compose_dialog(self) -> ComposeResult:
        close = Keymap.of(self.app).shown("image_viewer.close")
        with Vertical(id="viewer"):
            yield picture(self, self.image.data, "full")
            caption = f"{self.image.name} · {self.image.mime} · {human_size(len(self.image.data))}   {close}: close"
            yield Static(inert(caption), id="viewer-caption", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
