"""The chat screen: the chat pane, the prompt, the settings sidebar and the status bar.

Conversation state lives in a ChatSession (no Textual). The screen's work is done by parts, each
owning its state: `replies` (the reply being written, screens/chat_reply.py), `transcript` (the
messages on screen, chat_transcript.py), `loader` (loading the model, chat_model.py),
`message_actions` (chat_messages.py), `settings_editor` (chat_settings.py), `files` (saves,
opening, files: chat_files.py), `lab` (the tuning lab, chat_tokens.py) and `tool_calls`
(chat_tools.py). The screen composes the widgets, routes widget and bridge messages to the parts,
and runs the table's chat actions on the part that has them (`route_actions`). The app's state
is `state`, one enum; its watcher updates the status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, TextArea

from tui.core.chat_session import ChatSession
from tui.engine import LoadSettings
from tui.engine.backend import Backend
from tui.store import Message as StoredMessage
from tui.store.config import Config
from tui.ui.actions import Keymap, bindings
from tui.ui.activity import UserActivity
from tui.ui.bridge import CompileDone, ContextCounted, LoadDone, LoadProgress, ReplyDelta, ReplyEnded, ReplyStarted
from tui.ui.idle_gc import IdleCollector
from tui.ui.screens.chat_adapters import AdapterSwitcher
from tui.ui.screens.chat_attach import Attachments
from tui.ui.screens.chat_files import ConversationFiles
from tui.ui.screens.chat_messages import MessageActions
from tui.ui.screens.chat_model import ModelLoader
from tui.ui.screens.chat_models import ModelPicking
from tui.ui.screens.chat_reply import ReplyStream
from tui.ui.screens.chat_settings import SettingsEditor
from tui.ui.screens.chat_tokens import TuningLab
from tui.ui.screens.chat_tools import ToolCalls
from tui.ui.screens.chat_transcript import Transcript
from tui.ui.screens.dialogs import ConfirmScreen
from tui.ui.screens.routing import Route, route_actions, route_messages
from tui.ui.slash import SlashError, is_slash_command, parse_slash
from tui.ui.state import AppState
from tui.ui.widgets.adapter_list import AdapterList
from tui.ui.widgets.attachments import AttachmentChips, AttachmentsShown
from tui.ui.widgets.chat_view import ChatView
from tui.ui.widgets.keys_footer import KeysFooter
from tui.ui.widgets.message import MessageView
from tui.ui.widgets.prompt_input import PromptInput
from tui.ui.widgets.settings_panel import SettingsPanel
from tui.ui.widgets.status_bar import StatusBar
from tui.ui.widgets.welcome import WelcomePanel

# The parts that run the table's chat actions (each action on exactly one, found by its name).
ACTION_PARTS = (
    MessageActions,
    SettingsEditor,
    ConversationFiles,
    TuningLab,
    ToolCalls,
    Attachments,
    ModelPicking,
    AdapterSwitcher,
)
SIDEBAR_WIDTH = 42  # as in app.tcss
MIN_CHAT_WIDTH = 50  # narrower than this beside the sidebar, and the sidebar steps aside
OVERLAY_BELOW = 80  # a terminal narrower than this shows the sidebar, when asked for, over the chat


class ChatScreen(Screen[None]):
    BINDINGS = bindings("chat")
    # (not `bindings=True`: the footer is rebuilt on a refresh of bindings, ~50 ms of the UI thread
    # and memory churn at every reply's start and end; what the footer shows does not change with it)
    state: reactive[AppState] = reactive(AppState.LOADING, init=False)
    # what the open conversation was made with, when it differs from the loaded model (offered)
    saved_load: reactive[LoadSettings | None] = reactive(None, init=False, bindings=True)

    def __init__(
        self,
        session: ChatSession,
        engine: Backend,
        config: Config,
        keymap: Keymap,
        activity: UserActivity,
        collector: IdleCollector,
    ) -> None:
        super().__init__()
        self.session = session
        self.engine = engine
        self.config = config
        self.keymap = keymap
        self.activity = activity
        self.collector = collector
        self._editing: StoredMessage | None = None
        self._sidebar_hidden_by_user = False
        self._sidebar_forced = False
        self.replies = ReplyStream(self)
        self.transcript = Transcript(self)
        self.loader = ModelLoader(self)
        self.message_actions = MessageActions(self)
        self.settings_editor = SettingsEditor(self, config.presets)
        self.files = ConversationFiles(self)
        self.lab = TuningLab(self)
        self.tool_calls = ToolCalls(self)
        self.attachments = Attachments(self)
        self.models = ModelPicking(self)
        self.adapters = AdapterSwitcher(self)
        self.settings_panel = SettingsPanel(
            session.generation,
            session.system_prompt,
            session.load_settings,
            self.settings_editor.preset_names(),
            id="sidebar",
        )

    @property
    def parts(self) -> tuple[object, ...]:
        """The parts that run the table's chat actions, in ACTION_PARTS order."""
        return (
            self.message_actions,
            self.settings_editor,
            self.files,
            self.lab,
            self.tool_calls,
            self.attachments,
            self.models,
            self.adapters,
        )

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield WelcomePanel(id="welcome")
                yield ChatView(id="chat")
                send, new_line = (
                    self.keymap.key("prompt.send"),
                    (self.keymap.keys("prompt.new_line") or "").replace(",", "/"),
                )
                yield AttachmentChips(id="chips")
                yield PromptInput(id="prompt", placeholder=f"Message ({send} sends · {new_line} newline · /help)")
            yield Lazy(self.settings_panel)  # mounted after the first frame
        yield StatusBar(id="status")
        yield KeysFooter()

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def welcome(self) -> WelcomePanel:
        return self.query_one(WelcomePanel)

    def refresh_welcome(self) -> None:
        """The welcome panel shows while the open chat has no message."""
        self.welcome.display = not self.messages

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt_input(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def messages(self) -> list[StoredMessage]:
        return self.session.messages

    def on_mount(self) -> None:
        self.prompt_input.focus()
        keys = (
            ("app.help", "help"),
            ("app.sidebar", "settings"),
            ("chat.conversations", "chats"),
            ("chat.models", "models"),
        )
        self.welcome.show(
            keys=tuple((self.keymap.key(i), what) for i, what in keys if self.keymap.key(i)),
            send_key=self.keymap.key("prompt.send"),
        )
        self.session.new()
        self.loader.load(self.session.load_settings)
        self.tool_calls.start()
        self.set_interval(10, self.files.retry_saves)

    @property
    def editing(self) -> StoredMessage | None:
        """A user message being edited into a new version."""
        return self._editing

    @editing.setter
    def editing(self, message: StoredMessage | None) -> None:
        self._editing = message
        self.refresh_bindings()  # Esc cancels it: the footer says so

    def watch_state(self, state: AppState) -> None:
        if not self.is_attached:  # the app is closing
            return
        self.refresh_bindings()  # Esc stops a reply only while one is written
        self.status.update_info(state=state)
        self.welcome.show(state=state.value)
        self.settings_panel.set_busy(state is AppState.LOADING)

    @property
    def focus_chain(self) -> list[Widget]:
        """Tab goes prompt → messages → sidebar (as the README says): the messages are one stop,
        the focused one or else the last (↑/↓ move between them), then the sidebar's fields."""
        chain = super().focus_chain
        chat, prompt = self.chat, self.prompt_input
        in_chat = [widget for widget in chain if widget is chat or chat in widget.ancestors]
        messages = [widget for widget in in_chat if isinstance(widget, MessageView)]
        stop = self.focused if self.focused in in_chat else (messages[-1] if messages else None)
        rest = [  # the sidebar's fields, not the sidebar itself (it shows no focus; a field scrolls it)
            widget for widget in chain if widget not in (prompt, self.settings_panel) and widget not in in_chat
        ]
        return [prompt, *([stop] if stop is not None else []), *rest]

    def on_key(self, event: events.Key) -> None:
        """A letter typed outside a text field goes to the prompt (text fields and open menus keep
        theirs: they never pass them on). A space still works the focused button, switch or menu,
        unless the prompt has the focus already: then it was typed right behind a letter that
        moved it there."""
        character = event.character if event.is_printable else None
        if character and (not character.isspace() or self.focused is self.prompt_input):
            event.stop()
            event.prevent_default()
            self.set_focus(self.prompt_input)  # now, not later: the keys queued behind this one follow it
            self.prompt_input.insert(character)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Loading a chat's own model is offered (in the footer) only while the open chat was made
        with another."""
        if action == "load_saved_model":
            return self.saved_load is not None or bool(self.adapters.saved)
        return True

    # -- the prompt -----------------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if isinstance(event.text_area, PromptInput):
            self.replies.draft_changed()

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if is_slash_command(text):
            await self.run_slash(text)
            return
        if self.state is AppState.GENERATING:
            self.notify(
                f"A reply is being written: press {self.keymap.key('chat.stop')} to stop it first.", severity="warning"
            )
            self.prompt_input.load_text(text)
            return
        if self.editing is None and self.state is AppState.READY and self.transcript.unanswered():
            self.ask_before_a_second_turn(text)
            return
        await self.send(text)

    def ask_before_a_second_turn(self, text: str) -> None:
        """The last message has no reply: sending another would put two of the user's turns in a
        row. Ask; a no gives the text back to the prompt."""

        async def answered(yes: bool | None) -> None:
            if yes:
                await self.send(text)
            else:
                self.prompt_input.load_text(text)

        key = self.keymap.key("chat.regenerate")
        question = (
            f"Your last message has no reply yet ({key} answers it). Send this one after it, "
            "two of your turns in a row?"
        )
        self.app.push_screen(ConfirmScreen(question), answered)

    async def send(self, text: str) -> None:
        if self.attachments.pending and self.state is AppState.LOADING:
            # whether images can go, and whether it all fits, is the model's to say: not queued
            self.notify(
                "The model is still loading: a message with attachments is checked against it first. "
                "It stays here: press enter again once the model is ready.",
                severity="warning",
            )
            self.prompt_input.load_text(text)
            return
        problem = await self.attachments.problem(text)
        if problem:  # one line; the message and its attachments stay for another try
            self.notify(problem, severity="error")
            self.prompt_input.load_text(text)
            return
        edited, self.editing = self.editing, None
        attached = await self.attachments.take()
        user = self.session.add_user_message(text, edit_of=edited, attachments=attached)
        self.files.report_saves()
        if edited is not None:  # an edit becomes a new version of that message; the draft comes back
            await self.transcript.render()
            await self.message_actions.restore_draft()
        else:
            await self.transcript.mount(user)
        self.chat.anchor()
        if self.state in (AppState.LOADING, AppState.ERROR):
            self.replies.pending_send = True
            if self.state is AppState.LOADING:
                self.notify("The model is loading: your message will be sent when it is ready.")
            return
        self.tool_calls.loop.new_user_turn()
        await self.replies.start("send")

    async def run_slash(self, text: str) -> None:
        try:
            command = parse_slash(text)
        except SlashError as exc:
            self.notify(str(exc), severity="error")
            return
        target = self.app if command.action.scope == "app" else self
        action = command.action.action
        await target.run_action(f"{action}({command.argument!r})" if command.argument else action)

    # -- messages from the bridge and the widgets, to the parts ----------------------------------

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "show-earlier":
            await self.transcript.show_earlier(event.button)

    async def on_message_view_action(self, event: MessageView.Action) -> None:
        await self.message_actions.on_view_action(event)

    def on_message_view_typed(self, event: MessageView.Typed) -> None:
        self.prompt_input.focus()
        self.prompt_input.insert(event.text)

    # -- actions of the whole chat (the others run on the parts: route_actions) ------------------

    def action_stop(self) -> None:
        if self.tool_calls.stop() or self.replies.stop():
            return
        if self.settings_panel.has_class("-overlay") and self.settings_panel.display:
            self.action_toggle_sidebar()
            return
        self.message_actions.drop_edit("Edit cancelled.")  # the draft it replaced comes back

    async def action_new_chat(self) -> None:
        self.replies.leave()
        self.replies.pending_send = False
        self.message_actions.drop_edit()
        self.saved_load = None
        self.adapters.saved = ()
        self.session.new()
        self.tool_calls.loop.new_chat()
        await self.transcript.render()
        self.prompt_input.focus()

    def action_toggle_sidebar(self) -> None:
        shown = bool(self.settings_panel.display)
        self._sidebar_hidden_by_user = shown
        self._sidebar_forced = not shown  # asked for: shown even where it leaves the chat narrow
        self.place_sidebar()

    def on_resize(self) -> None:
        self.place_sidebar()

    def place_sidebar(self) -> None:
        """The sidebar steps aside when the chat beside it would be narrower than MIN_CHAT_WIDTH,
        and comes back when there is room, unless the user hid it. Asked for where it does not
        fit, it is shown beside a narrow chat, or below OVERLAY_BELOW columns over the chat (and
        focused: Esc or the sidebar key closes it)."""
        fits = self.size.width >= SIDEBAR_WIDTH + MIN_CHAT_WIDTH
        if fits:
            self._sidebar_forced = False
        panel = self.settings_panel
        was_over = panel.display and panel.has_class("-overlay")
        panel.display = not self._sidebar_hidden_by_user and (fits or self._sidebar_forced)
        over = bool(panel.display) and not fits and self.size.width < OVERLAY_BELOW
        panel.set_class(over, "-overlay")
        if over and not was_over and panel.is_mounted:
            first = next((widget for widget in panel.query("*") if widget.focusable), None)
            if first is not None:
                self.call_after_refresh(first.focus)
        elif was_over and not over and (self.focused is None or panel in self.focused.ancestors):
            self.prompt_input.focus()
        if over != was_over:
            self.refresh_bindings()  # the footer names what Esc does now

    def key_description(self, binding: Any) -> str:
        """What the footer calls a key now: Esc stops a reply or a running tool, else closes the
        sidebar lying over the chat, else cancels an edit (action_stop's order)."""
        # (state, not replies.generating(), which would warn)
        if binding.action == "stop" and self.state is not AppState.GENERATING and not self.tool_calls.loop.tool_running:
            if self.settings_panel.display and self.settings_panel.has_class("-overlay"):
                return "Close sidebar"
            if self.editing is not None:
                return "Cancel edit"
        return str(binding.description)

    def part_action(self, name: str) -> Callable[..., Any]:
        """`action_<name>` of the part that runs it."""
        for part in self.parts:
            method = getattr(part, f"action_{name}", None)
            if method is not None:
                return method
        raise LookupError(f"no part of the chat screen runs the action {name!r}")


route_actions(ChatScreen, ACTION_PARTS)


# Messages from the bridge and the widgets that one part of the screen handles whole: each goes
# to it as `on_<message>` (installed by route_messages); handlers with more to do are methods.
MESSAGE_ROUTES: dict[type[Message], Route] = {
    ReplyStarted: lambda screen, m: screen.replies.started(m),
    ReplyDelta: lambda screen, m: screen.replies.delta(m),
    ReplyEnded: lambda screen, m: screen.replies.ended(m),
    ContextCounted: lambda screen, m: screen.transcript.context_counted(m),
    LoadProgress: lambda screen, m: screen.loader.progress(m),
    LoadDone: lambda screen, m: screen.loader.done(m),
    CompileDone: lambda screen, m: screen.loader.compile_done(m),
    AttachmentChips.Removed: lambda screen, m: screen.attachments.remove(m.index),
    AttachmentsShown.ImageChosen: lambda screen, m: screen.attachments.view(m.image),
    PromptInput.PathPasted: lambda screen, m: screen.attachments.offer_pasted(m.text, m.files),
    SettingsPanel.GenerationChanged: lambda screen, m: screen.settings_editor.generation_changed(m.updates),
    SettingsPanel.GenerationReset: lambda screen, m: screen.settings_editor.generation_reset(m.key),
    SettingsPanel.SystemPromptChanged: lambda screen, m: setattr(screen.session, "system_prompt", m.text),
    SettingsPanel.PresetChosen: lambda screen, m: screen.settings_editor.apply_preset(m.name),
    SettingsPanel.PresetSaved: lambda screen, m: screen.settings_editor.save_preset(m.name),
    SettingsPanel.ReloadRequested: lambda screen, m: screen.loader.reload(m.settings),
    SettingsPanel.ModelPickRequested: lambda screen, m: screen.models.pick_for_sidebar(),
    AdapterList.UseRequested: lambda screen, m: screen.adapters.use(m.name),
    AdapterList.UnloadRequested: lambda screen, m: screen.adapters.unload(m.name),
    AdapterList.LoadRequested: lambda screen, m: screen.adapters.load(m.path),
    AdapterList.MergeRequested: lambda screen, m: screen.adapters.merge(),
}


route_messages(ChatScreen, MESSAGE_ROUTES)
