"""The conversation on disk: reporting saves, opening conversations from the library (the
browser, `--conversation`), and saving to and importing from files. A part of the chat screen
(screens/chat.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.engine import LoadSettings
from tui.engine.settings import describe_load_difference
from tui.store import (
    ImportFormatError,
    Library,
    StoreError,
    export_as,
    import_conversation,
    write_file_atomic,
)
from tui.store.exports import images_folder, write_export
from tui.ui.screens.conversations import ConversationBrowser
from tui.ui.screens.dialogs import ConfirmScreen, TextPromptScreen

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class ConversationFiles:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self._save_error: str | None = None  # the save failure last reported, until saving works again

    def report_saves(self) -> None:
        """Tell the user when saving starts or stops failing (the conversation stays in memory)."""
        saver = self.screen.session.saver
        library = saver.library
        if library is not None and library.recovered_from is not None:
            self.screen.notify(
                f"The conversation library was damaged; it was moved to {library.recovered_from} "
                "and a new one started.",
                severity="error",
                timeout=20,
            )
            library.recovered_from = None
        error = saver.last_error if saver.pending else None
        if error and error != self._save_error:
            self.screen.notify(
                f"{error}. Your messages are kept in memory and saved when possible.",
                title="Not saved",
                severity="error",
                timeout=15,
            )
        elif self._save_error and not error:
            self.screen.notify("Saving works again: every message is saved.")
        self._save_error = error

    def retry_saves(self) -> None:
        if self.screen.session.saver.pending:
            self.screen.session.saver.retry()
            self.report_saves()

    def open_library(self) -> Library | None:
        saver = self.screen.session.saver
        if saver.library is None:
            saver.retry()
            self.report_saves()
        if saver.library is None:
            self.screen.notify(saver.last_error or "The conversation library cannot be opened.", severity="error")
        return saver.library

    # -- opening --------------------------------------------------------------------------------

    def action_conversations(self) -> None:
        self.screen.run_worker(self._browse())

    async def _browse(self) -> None:
        library = self.open_library()
        if library is None:
            return
        result = await self.screen.app.push_screen_wait(ConversationBrowser(library, self.screen.keymap))
        conv = self.screen.session.conversation
        if conv is not None and conv.id in result.renamed:
            conv.title = result.renamed[conv.id]
        if result.action == "new" or (conv is not None and conv.id in result.deleted):
            await self.screen.action_new_chat()
        if result.action == "open" and result.conv_id:
            await self.open_conversation(result.conv_id)

    async def open_conversation_ref(self, ref: str, flags: dict[str, Any] | None = None) -> None:
        """Open a conversation by id, unique id prefix or 'last' (from --conversation); generation
        settings given as flags beside it win over the ones it was saved with."""
        library = self.open_library()
        if library is None:
            return
        try:
            conv_id = library.resolve_id(ref)
        except (KeyError, StoreError) as exc:
            self.screen.notify(f"--conversation {ref}: {exc}", severity="error", timeout=15)
            return
        await self.open_conversation(conv_id, flags)

    async def open_conversation(self, conv_id: str, flags: dict[str, Any] | None = None) -> None:
        self.screen.replies.leave()
        self.screen.tool_calls.loop.new_chat()
        self.screen.message_actions.drop_edit()
        try:
            conv = self.screen.session.open(conv_id)
        except (StoreError, KeyError) as exc:
            self.screen.notify(f"Cannot open the conversation: {exc}", severity="error")
            return
        await self.screen.transcript.render()
        self.screen.transcript.hint_unanswered()
        self.screen.attachments.tell_if_images_unseen()
        saved = self.screen.session.saved_settings(conv)
        for problem in saved.problems:
            self.screen.notify(f"Kept the current settings: {problem}.", severity="warning")
        generation = saved.generation or self.screen.session.generation
        if flags:
            generation = generation.with_updates(flags)
        self.screen.session.generation = generation
        self.screen.settings_panel.show_generation(generation)
        self.screen.settings_editor.set_system_prompt(saved.system_prompt)
        self.screen.notify(f"Opened “{conv.title}”.")
        self.offer_saved_model(saved.load)
        self.screen.adapters.offer_saved([m for m in self.screen.messages if m.role == "assistant"])

    def offer_saved_model(self, saved: LoadSettings | None) -> None:
        """Say what the open chat was made with, when it differs from what is loaded, and offer
        to load it (one key); never reload on its own."""
        screen, current = self.screen, self.screen.loader.load_settings
        differences = describe_load_difference(saved, current) if saved is not None else ""
        screen.saved_load = saved if differences else None
        if saved is not None and differences:
            key = screen.keymap.key("chat.load_saved_model")
            other_model = saved.model != current.model or saved.endpoint != current.endpoint
            screen.notify(
                f"This chat was made with {differences}. Press {key} to load that.",
                title="Another model" if other_model else "Other model options",
                timeout=20,
            )

    async def action_load_saved_model(self) -> None:
        screen = self.screen
        if screen.saved_load is None and not screen.adapters.saved:
            screen.notify("The open chat was made with the model that is loaded.")
            return
        if screen.adapters.saved:
            screen.adapters.ask_saved()  # loaded once the model is (or now, if it stays)
        if screen.saved_load is not None or screen.adapters.merge_requested:
            screen.loader.reload(screen.saved_load or screen.loader.load_settings)
        else:
            await screen.adapters.load_requested()
            screen.adapters.show()

    # -- files ----------------------------------------------------------------------------------

    def action_save_file(self, answer: str = "") -> None:
        self.screen.run_worker(self._save_file(answer))

    async def _save_file(self, answer: str) -> None:
        conv = self.screen.session.conversation
        if conv is None or not conv.messages:
            self.screen.notify("Nothing to save yet.", severity="warning")
            return
        if not answer:
            default = str(Path.cwd() / f"chatui-{conv.id[:8]}.md")
            typed: str | None = await self.screen.app.push_screen_wait(
                TextPromptScreen("Save the conversation to (.md for Markdown, .json for JSON)", default)
            )
            answer = typed or ""
        if not answer:
            return
        path = Path(answer).expanduser()
        if path.is_dir():
            self.screen.notify(f"{path} is a folder: give a file name.", severity="error")
            return
        if path.exists() and not await self.screen.app.push_screen_wait(ConfirmScreen(f"{path} exists. Replace it?")):
            self.screen.notify("Not saved.")
            return
        try:
            images = write_export(conv, "json" if path.suffix.lower() == ".json" else "md", path)
        except OSError as exc:
            self.screen.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
            return
        self.screen.notify(f"Saved to {path}" + (f" (images in {images_folder(path)}/)" if images else ""))

    def action_save_tf_chat(self, answer: str = "") -> None:
        """`!save [NAME]`: transformers chat's JSON, where transformers chat puts it by default."""
        conv = self.screen.session.conversation
        if conv is None or not conv.messages:
            self.screen.notify("Nothing to save yet.", severity="warning")
            return
        model = (conv.model or "model").replace("/", "--")
        path = (
            Path(answer).expanduser()
            if answer
            else (Path("chat_history") / model / f"chat_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json")
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file_atomic(path, export_as(conv, "tf-chat"))
        except OSError as exc:
            self.screen.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
            return
        self.screen.notify(f"Chat saved to {path.resolve()}")

    def action_open_file(self, answer: str = "") -> None:
        self.screen.run_worker(self._open_file(answer))

    async def _open_file(self, answer: str) -> None:
        if not answer:
            typed: str | None = await self.screen.app.push_screen_wait(
                TextPromptScreen(
                    "Open a conversation file (chatui JSON or Markdown, transformers chat !save JSON, "
                    "or an OpenAI-style list)",
                    placeholder="path/to/file.json",
                )
            )
            answer = typed or ""
        if not answer:
            return
        library = self.open_library()
        if library is None:
            return
        try:
            conv = import_conversation(Path(answer).expanduser())
            conv_id = library.import_conversation(conv)
        except ImportFormatError as exc:
            self.screen.notify(str(exc), title="Not imported", severity="error", timeout=15)
            return
        except StoreError as exc:
            self.screen.notify(str(exc), severity="error")
            return
        await self.open_conversation(conv_id)
