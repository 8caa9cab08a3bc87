"""What the user does to messages: regenerate, continue, edit, copy, delete, switch versions.
A mixin of ChatScreen (screens/chat.py), which holds the state these work on."""

from __future__ import annotations

from textual import work

from tui.screens.dialogs import ConfirmScreen
from tui.store import Message as StoredMessage
from tui.chat_session import SessionError
from tui.widgets.message import MessageView
from tui.widgets.status_bar import AppState

class MessageActions:
    """Part of ChatScreen, which provides what these methods use (session, engine, state, views,
    the widgets)."""

    def generating(self) -> bool:
        """Say that a reply is being written (and return True), or return False."""
        if self.state is AppState.GENERATING:
            self.notify(f"Wait for the reply or press {self.keymap.key('chat.stop')} to stop it.",
                        severity="warning")
            return True
        return False

    def busy(self) -> bool:
        """Say why a reply cannot start now (and return True), or return False."""
        if self.generating():
            return True
        if self.state is not AppState.READY:
            self.notify("No model is ready yet.", severity="warning")
            return True
        return False

    async def action_regenerate(self) -> None:
        if not self.busy():
            await self.generate_reply("regenerate")

    async def action_continue_reply(self) -> None:
        if not self.busy():
            await self.generate_reply("continue")

    def action_edit_last(self) -> None:
        last_user = next((m for m in reversed(self.messages) if m.role == "user"), None)
        if last_user is None:
            self.notify("There is no message to edit.", severity="warning")
        else:
            self.edit_message(last_user)

    def edit_message(self, message: StoredMessage) -> None:
        if self.generating():
            return
        self.editing = message
        self.prompt_input.load_text(message.content)
        self.prompt_input.move_cursor(self.prompt_input.document.end)
        self.prompt_input.focus()
        self.notify(f"Edit the message and press {self.keymap.key('prompt.send')}: it is sent as a new version "
                    f"({self.keymap.key('chat.stop')} cancels).")

    def action_copy_last(self) -> None:
        reply = next((m for m in reversed(self.messages) if m.role == "assistant" and m.content), None)
        if reply is None:
            self.notify("There is no reply to copy.", severity="warning")
        else:
            self.copy_text(reply.content)

    def copy_text(self, text: str) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text)} characters.")

    async def on_message_view_action(self, event: MessageView.Action) -> None:
        view, action = event.view, event.action
        stored = next((m for m in self.messages if m.id == view.message_id), None)
        if action == "copy":
            self.copy_text(self.get_selected_text() or view.text)
        elif stored is None:
            self.notify("This message is not part of the conversation.", severity="warning")
        elif action == "edit":
            if stored.role != "user":
                key = self.keymap.key("message.regenerate")
                self.notify(f"Only your messages can be edited; regenerate a reply with {key}.", severity="warning")
            else:
                self.edit_message(stored)
        elif action == "regenerate":
            if stored is self.messages[-1]:
                await self.action_regenerate()
            else:
                self.notify("Regenerate works on the last message.", severity="warning")
        elif action == "delete":
            self.delete_message(stored)
        elif action in ("previous_version", "next_version"):
            await self.switch_version(stored, -1 if action == "previous_version" else 1)

    def on_message_view_typed(self, event: MessageView.Typed) -> None:
        self.prompt_input.focus()
        self.prompt_input.insert(event.text)

    @work
    async def delete_message(self, message: StoredMessage) -> None:
        if self.generating():
            return
        later = self.session.later_count(message)
        question = "Delete this message" + (f" and the {later} after it?" if later else "?")
        if await self.app.push_screen_wait(ConfirmScreen(question)):
            self.session.delete_message(message)
            self.report_saves()
            await self.render_conversation()
            self.prompt_input.focus()  # the focused message is gone: typing goes to the prompt

    async def switch_version(self, message: StoredMessage, step: int) -> None:
        if self.generating():
            return
        try:
            shown = self.session.switch_version(message, step)
        except SessionError as exc:
            self.notify(str(exc))
            return
        self.report_saves()
        await self.render_conversation()
        view = self.views.get(shown.id)
        if view is not None:
            view.focus()
