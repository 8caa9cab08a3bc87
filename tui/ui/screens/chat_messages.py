"""What the user does to messages: regenerate, continue, edit, copy, delete, switch versions.
A part of the chat screen (screens/chat.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.core.chat_session import SessionError
from tui.store import Message as StoredMessage
from tui.store import NotFoundError, StoreError
from tui.store.parts import Attachment, attachments_of
from tui.ui.screens.dialogs import ConfirmScreen
from tui.ui.widgets.message import MessageView

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class MessageActions:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.draft: tuple[str, list[Attachment]] | None = None  # what the prompt held when an edit began

    async def action_regenerate(self) -> None:
        if not self.screen.replies.busy():
            await self.screen.replies.start("regenerate")

    async def action_continue_reply(self) -> None:
        if not self.screen.replies.busy():
            await self.screen.replies.start("continue")

    def action_edit_last(self) -> None:
        last_user = next((m for m in reversed(self.screen.messages) if m.role == "user"), None)
        if last_user is None:
            self.screen.notify("There is no message to edit.", severity="warning")
        else:
            self.edit(last_user)

    def edit(self, message: StoredMessage) -> None:
        screen = self.screen
        if screen.replies.generating():
            return
        if screen.editing is None:  # the unsent draft (text and chips) comes back when the edit ends
            self.draft = (screen.prompt_input.text, list(screen.attachments.pending))
        screen.editing = message
        prompt = screen.prompt_input
        prompt.load_text(message.content)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
        attached = attachments_of(message.parts)
        screen.run_worker(screen.attachments.replace(attached), group="attach")  # its chips, to keep or remove
        chips = " with its attachments above it (click one to remove it)" if attached else ""
        screen.notify(
            f"Edit the message{chips} and press {screen.keymap.key('prompt.send')}: it is sent as a new "
            f"version ({screen.keymap.key('chat.stop')} cancels)."
        )

    def drop_edit(self, said: str = "") -> None:
        """The edit ends without being sent (cancelled, another chat opened): the draft it took
        the place of comes back."""
        if self.screen.editing is None:
            return
        self.screen.editing = None
        self.screen.run_worker(self.restore_draft(), group="attach")
        if said:
            self.screen.notify(said)

    async def restore_draft(self) -> None:
        """After an edit (sent or not): the prompt and chips as they were before it began."""
        text, pending = self.draft or ("", [])
        self.draft = None
        self.screen.prompt_input.load_text(text)
        await self.screen.attachments.replace(pending)

    def action_copy_last(self) -> None:
        reply = next((m for m in reversed(self.screen.messages) if m.role == "assistant" and m.content), None)
        if reply is None:
            self.screen.notify("There is no reply to copy.", severity="warning")
        else:
            self.copy(reply.content)

    def copy(self, text: str) -> None:
        self.screen.app.copy_to_clipboard(text)
        self.screen.notify(f"Copied {len(text)} characters.")

    async def on_view_action(self, event: MessageView.Action) -> None:
        """An action on a focused message (its keys, MessageView.Action)."""
        screen = self.screen
        view, action = event.view, event.action
        stored = next((m for m in screen.messages if m.id == view.message_id), None)
        if action == "copy":
            self.copy(screen.get_selected_text() or view.text)
        elif stored is None:
            screen.notify("This message is not part of the conversation.", severity="warning")
        elif action == "edit":
            if stored.role != "user":
                key = screen.keymap.key("message.regenerate")
                screen.notify(f"Only your messages can be edited; regenerate a reply with {key}.", severity="warning")
            else:
                self.edit(stored)
        elif action == "regenerate":
            if stored is screen.messages[-1]:
                await self.action_regenerate()
            else:
                screen.notify("Regenerate works on the last message.", severity="warning")
        elif action == "delete":
            screen.run_worker(self.delete(stored))
        elif action in ("previous_version", "next_version"):
            await self.switch_version(stored, -1 if action == "previous_version" else 1)
        elif action == "branch":
            await self.branch(stored)

    async def action_branch_chat(self) -> None:
        """From the palette or `/branch`: the focused message, else the last one."""
        screen = self.screen
        focused = screen.focused
        message_id = focused.message_id if isinstance(focused, MessageView) else None
        stored = next((m for m in screen.messages if m.id == message_id), None)
        if stored is None and screen.messages:
            stored = screen.messages[-1]
        if stored is None:
            screen.notify("Nothing to branch yet: the chat is empty.", severity="warning")
        else:
            await self.branch(stored)

    async def branch(self, message: StoredMessage) -> None:
        """Copy the conversation down to `message` into a new chat and open it."""
        screen = self.screen
        if screen.replies.generating():
            screen.notify(f"A reply is being written: {screen.keymap.key('chat.stop')} stops it first.")
            return
        origin = screen.session.conversation
        screen.session.branch(message)
        self.drop_edit()
        screen.tool_calls.loop.new_chat()
        screen.files.report_saves()
        await screen.transcript.render()
        screen.prompt_input.focus()
        screen.notify(f"A new chat, branched from “{origin.title if origin else ''}” (which stays as it was).")
        screen.transcript.hint_unanswered()  # branched at one of your messages: how to answer it

    async def action_open_origin(self) -> None:
        """The chat this one was branched from, at the message it was copied down to."""
        screen = self.screen
        conversation = screen.session.conversation
        if conversation is None or not conversation.origin_id:
            screen.notify("This chat was not made by branching: it has no origin.", severity="warning")
            return
        library = screen.files.open_library()
        if library is None:
            return
        try:
            library.get(conversation.origin_id)
        except NotFoundError:
            screen.notify("The chat this one came from was deleted.", severity="warning")
            return
        except StoreError as exc:
            screen.notify(f"Cannot open the chat this one came from: {exc}", severity="error")
            return
        await screen.files.open_conversation(conversation.origin_id)
        view = screen.transcript.views.get(conversation.origin_message_id or "")
        if view is not None:
            view.focus()
            view.scroll_visible(animate=False)

    async def delete(self, message: StoredMessage) -> None:
        screen = self.screen
        if screen.replies.generating():
            return
        later = screen.session.later_count(message)
        question = "Delete this message" + (f" and the {later} after it?" if later else "?")
        if await screen.app.push_screen_wait(ConfirmScreen(question)):
            screen.session.delete_message(message)
            screen.files.report_saves()
            await screen.transcript.render()
            screen.prompt_input.focus()  # the focused message is gone: typing goes to the prompt
            screen.transcript.hint_unanswered()

    async def switch_version(self, message: StoredMessage, step: int) -> None:
        screen = self.screen
        if screen.replies.generating():
            return
        try:
            shown = screen.session.switch_version(message, step)
        except SessionError as exc:
            screen.notify(str(exc))
            return
        screen.files.report_saves()
        await screen.transcript.render()
        view = screen.transcript.views.get(shown.id)
        if view is not None:
            view.focus()
