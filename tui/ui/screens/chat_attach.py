"""Attachments of the next message: `/attach PATH`, a file path pasted into the prompt, the chips
above the prompt (removable), the checks before sending, and the image viewer. A part of the chat
screen (screens/chat.py), which owns the widgets.

Reading a file and the checks before sending are those headless runs (tui/core/attachments.py,
`ChatSession.attachment_problem`): a refusal is one line and the typed message stays."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.attachments import (
    AttachmentError,
    human_size,
    is_file,
    read_attachment,
    refuse_images,
    resolve_path,
    too_long,
)
from tui.paths import state_dir, write_atomic
from tui.store.model import model_content
from tui.store.parts import Attachment, FilePart, ImagePart, TextPart, images_of
from tui.ui.screens.dialogs import ConfirmScreen
from tui.ui.screens.file_picker import attach_picker
from tui.ui.screens.image_viewer import ImageViewer
from tui.ui.widgets.attachments import AttachmentChips, size_of
from tui.ui.widgets.message import MessageView

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen

log = logging.getLogger(__name__)


LAST_FOLDER_FILE = "last-attach-folder"  # in the state folder: where the picker opens next time


def remembered_folder() -> Path:
    """The folder the last file was attached from, in this run or an earlier one; else where
    chatui started."""
    try:
        folder = Path((state_dir() / LAST_FOLDER_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return Path.cwd()
    return folder if folder.is_absolute() and folder.is_dir() else Path.cwd()


def remember_folder(folder: Path) -> None:
    try:
        state_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(state_dir() / LAST_FOLDER_FILE, lambda file: file.write(str(folder).encode("utf-8")))
    except OSError as exc:  # a nicety: the picker opens where chatui started next time
        log.info("could not remember the attachment folder: %s", exc)


class Attachments:
    """The files waiting to go with the next message, and the chips that show them."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.pending: list[Attachment] = []
        self.tokens: dict[str, int] = {}  # a document's digest → its tokens, once counted
        self.last_folder: Path = remembered_folder()
        self._told_unseen: tuple[str, str] = ("", "")  # the chat and model the last such notice was for

    @property
    def chips(self) -> AttachmentChips:
        return self.screen.query_one(AttachmentChips)

    # -- adding and removing --------------------------------------------------------------------

    def action_attach(self, answer: str = "") -> None:
        """`/attach PATH`: the file goes with the next message; without a path (the palette's
        "Attach a file", or a bare `/attach`) a file picker opens in the last folder used."""
        self.screen.run_worker(self._attach(answer), group="attach")

    async def _attach(self, answer: str) -> None:
        if not answer:
            chosen = await self.screen.app.push_screen_wait(attach_picker(self.last_folder))
            if chosen is None:
                return
            answer = str(chosen)
        await self.attach(answer)

    async def attach(self, typed: str) -> bool:
        """Read the file at `typed` and add it; a refusal is one line. True when it was added."""
        path = resolve_path(typed)
        if path.parent != self.last_folder and is_file(path):  # used, even if refused: the picker opens there
            self.last_folder = path.parent
            remember_folder(path.parent)
        try:
            attachment = await asyncio.to_thread(read_attachment, path)
            if self.screen.engine.info is not None:
                model, _ = self.screen.session.loaded_model()
                refuse_images([attachment], model, self.screen.engine.capabilities.images)
        except AttachmentError as exc:
            self.screen.notify(str(exc), severity="error")
            return False
        self.pending.append(attachment)
        await self.show()
        if isinstance(attachment, FilePart) and attachment.digest not in self.tokens:
            self.screen.run_worker(self._count(attachment), group="attachment-tokens")
        return True

    async def _count(self, document: FilePart) -> None:
        info = self.screen.engine.info
        if info is not None and too_long([document], info.context_size):
            return  # sending says it does not fit; counting it would hold the model's thread for long
        content = model_content((document, TextPart("")))
        future = self.screen.engine.count_tokens([{"role": "user", "content": content}])
        try:
            self.tokens[document.digest] = await asyncio.wrap_future(future)
        except Exception as exc:  # a count is a nicety: the chip just goes without it
            log.info("could not count the tokens of %s: %s", document.name, exc)
            return
        await self.show()

    def action_detach(self, answer: str = "") -> None:
        self.screen.run_worker(self._detach(answer), group="attach")

    async def _detach(self, answer: str) -> None:
        """`/detach [N]`: remove attachment N (from 1), or the last one."""
        if not self.pending:
            self.screen.notify("Nothing is attached.", severity="warning")
            return
        try:
            index = int(answer) - 1 if answer.strip() else len(self.pending) - 1
        except ValueError:
            index = -1
        if not 0 <= index < len(self.pending):
            self.screen.notify(f"/detach takes a number from 1 to {len(self.pending)}.", severity="error")
            return
        await self.remove(index)

    async def remove(self, index: int) -> None:
        if 0 <= index < len(self.pending):
            removed = self.pending.pop(index)
            await self.show()
            self.screen.notify(f"Removed {removed.name}.")

    async def show(self) -> None:
        await self.chips.show([self.label(attachment) for attachment in self.pending])

    def label(self, attachment: Attachment) -> str:
        kind = "image" if isinstance(attachment, ImagePart) else "file"
        label = f"{kind}: {attachment.name} · {human_size(size_of(attachment))}"
        tokens = self.tokens.get(attachment.digest) if isinstance(attachment, FilePart) else None
        return label + (f" · {tokens:,} tokens" if tokens else "")

    def offer_pasted(self, text: str, files: list[Path]) -> None:
        """Paths of files pasted into the prompt (as a terminal pastes files dropped on it):
        offered as attachments; declined, or refused, the text goes into the prompt as it was."""
        self.screen.run_worker(self._offer_pasted(text, files), group="attach")

    async def _offer_pasted(self, text: str, files: list[Path]) -> None:
        names = ", ".join(path.name for path in files)
        question = f"Attach {names} to your message? (no: what you pasted goes in as text)"
        if await self.screen.app.push_screen_wait(ConfirmScreen(question)):
            for path in files:
                await self.attach(str(path))  # a refusal is said; the prompt stays as it was
        else:
            self.screen.prompt_input.insert(text)

    def tell_if_images_unseen(self) -> None:
        """The open chat has images and the model in use reads text only: say so once per chat
        and model (it is given their names), rather than let it answer as if it saw them."""
        engine, screen = self.screen.engine, self.screen
        if engine.info is None or engine.capabilities.images:
            return
        images = [image for message in screen.messages for image in images_of(message.parts)]
        key = (screen.session.conversation.id if screen.session.conversation else "", engine.info.name)
        if images and key != self._told_unseen:
            self._told_unseen = key
            screen.notify(
                f"This chat has {len(images)} image{'s' if len(images) > 1 else ''}; {engine.info.name} reads text "
                "only, so it is given their names, not the pictures (load a vision model to show them).",
                severity="warning",
                timeout=10,
            )

    # -- sending --------------------------------------------------------------------------------

    async def problem(self, text: str) -> str | None:
        """Why the next message cannot go with its attachments (one line), or None."""
        if not self.pending or self.screen.engine.info is None:
            return None  # no model yet: checked by the model when it answers
        session, status = self.screen.session, self.screen.status.info
        used = status.context_used if self.screen.messages else 0  # known: the history is not counted again
        problem = session.attachment_problem
        return await asyncio.to_thread(problem, list(self.pending), text, self.screen.editing, used)

    async def replace(self, attachments: Sequence[Attachment]) -> None:
        """The chips become these (a message being edited shows its own, to keep or remove)."""
        self.pending = list(attachments)
        await self.show()
        for attachment in self.pending:
            if isinstance(attachment, FilePart) and attachment.digest not in self.tokens:
                self.screen.run_worker(self._count(attachment), group="attachment-tokens")

    async def take(self) -> list[Attachment]:
        """The attachments for the message being sent; the chips empty."""
        taken, self.pending = self.pending, []
        await self.show()
        return taken

    # -- viewing --------------------------------------------------------------------------------

    def action_view_image(self) -> None:
        """The focused message's first image (or the chat's last image) full size."""
        focused = self.screen.focused
        messages = self.screen.messages
        if isinstance(focused, MessageView) and focused.message_id:
            messages = [m for m in messages if m.id == focused.message_id]
        images = [image for message in messages for image in images_of(message.parts)]
        if not images:
            self.screen.notify("There is no image to show.", severity="warning")
            return
        self.view(images[0] if isinstance(focused, MessageView) else images[-1], images)

    def view(self, image: ImagePart, images: Sequence[ImagePart] = ()) -> None:
        """`image` full size; the others of its message (or the chat) a key away."""
        if not images:  # a click on a thumbnail: its message's images
            images = next(
                (images_of(m.parts) for m in self.screen.messages if image in images_of(m.parts)),
                (image,),
            )
        self.screen.app.push_screen(ImageViewer(image, images))
