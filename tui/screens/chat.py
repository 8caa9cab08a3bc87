"""The chat screen: the chat pane, the prompt, the settings sidebar and the status bar, and the
work of chatting: loading the model, sending, streaming replies, acting on messages.

Conversation state lives in a ChatSession (no Textual): this screen turns keys, slash commands
and widget messages into session calls and shows the result. Engine results arrive as messages
from `tui.bridge`. The app's state is `state`, one enum; its watcher updates the status bar.
Opening, saving and importing conversations live in `ConversationFlows` (screens/chat_files.py).
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.lazy import Lazy
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, TextArea
from textual.worker import get_current_worker

from tui.actions import Keymap, bindings
from tui.activity import UserActivity
from tui.bridge import ContextCounted, ReplyDelta, ReplyEnded, ReplyStarted, count_context, pump_turn
from tui.chat_session import ChatSession, Reply, SessionError, added_nothing
from tui.engine import Engine, Failed, Finished, LoadSettings, ModelInfo
from tui.idle_gc import IdleCollector
from tui.screens.chat_files import ConversationFlows
from tui.screens.chat_messages import MessageActions
from tui.screens.chat_model import ModelLoading
from tui.screens.chat_settings import SettingsHandlers
from tui.screens.chat_tokens import TOKEN_VIEW_TOP, TokenActions
from tui.screens.chat_tools import ToolCalls, tool_card
from tui.screens.tools import ToolActions
from tui.slash import SlashError, is_slash_command, parse_slash
from tui.store import Message as StoredMessage
from tui.store.config import Config
from tui.widgets.chat_view import ChatView
from tui.widgets.message import MessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.settings_panel import SettingsPanel
from tui.widgets.status_bar import AppState, StatusBar

RENDER_WINDOW = 20  # messages drawn when a conversation opens (more on request)
SIDEBAR_WIDTH = 42  # as in app.tcss
MIN_CHAT_WIDTH = 50  # narrower than this beside the sidebar, and the sidebar steps aside
PREFILL_PAUSE_S = 0.6  # the user paused typing this long: the model reads their draft ahead


NO_STREAM_NOTE = "num_beams={beams}: beam search cannot stream; the reply appears when it is done."


def stats_text(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("new_tokens"):
        return ""
    tokens = stats["new_tokens"]
    return f"{tokens} token{'' if tokens == 1 else 's'} · {stats['decode_tok_s']:.1f} tok/s · TTFT {stats['ttft_s']:.2f} s"


class ChatScreen(ModelLoading, MessageActions, SettingsHandlers, ConversationFlows, TokenActions, ToolActions,
                 ToolCalls, Screen[None]):
    BINDINGS = bindings("chat")
    # (not `bindings=True`: the footer is rebuilt on a refresh of bindings, ~50 ms of the UI thread
    # and memory churn at every reply's start and end; what the footer shows does not change with it)
    state: reactive[AppState] = reactive(AppState.LOADING, init=False)
    editing: StoredMessage | None = None  # a user message being edited into a new version
    # what the open conversation was made with, when it differs from the loaded model (offered)
    saved_load: reactive[LoadSettings | None] = reactive(None, init=False, bindings=True)

    def __init__(self, session: ChatSession, engine: Engine, config: Config, keymap: Keymap,
                 activity: UserActivity, collector: IdleCollector, load_settings: LoadSettings) -> None:
        super().__init__()
        self.session = session
        self.engine = engine
        self.config = config
        self.keymap = keymap
        self.activity = activity
        self.collector = collector
        self.load_settings = load_settings
        self.model_info: ModelInfo | None = None
        self.pending_send = False  # a message waits for the model
        self.views: dict[str, MessageView] = {}
        self.user_presets: dict[str, dict[str, Any]] = dict(config.presets)
        self._turn = None
        self._turn_id = 0
        self._reply_view: MessageView | None = None
        self._live_tokens = 0
        self._live_first_at: float | None = None
        self._live_prompt_tokens = 0
        self._context_request = 0  # the latest count of the open conversation's tokens asked for
        self._ticker = None
        self._prefill_timer = None
        self._save_error: str | None = None
        self._sidebar_hidden_by_user = False
        self._sidebar_forced = False
        self.settings_panel = SettingsPanel(session.generation, session.system_prompt, load_settings,
                                            self.preset_names(), id="sidebar")

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield ChatView(id="chat")
                send, new_line = self.keymap.key("prompt.send"), self.keymap.keys("prompt.new_line").replace(",", "/")
                yield PromptInput(id="prompt", placeholder=f"Message ({send} sends · {new_line} newline · /help)")
            yield Lazy(self.settings_panel)  # mounted after the first frame
        yield StatusBar(id="status")
        yield Footer()

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt_input(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def sidebar(self) -> SettingsPanel | None:
        """The settings panel once it is mounted and shows the values (it mounts after the first frame)."""
        return self.settings_panel if self.settings_panel.ready else None

    @property
    def messages(self) -> list[StoredMessage]:
        return self.session.messages

    def on_mount(self) -> None:
        self.prompt_input.focus()
        self.session.new()
        self.load_model(self.load_settings)
        self.start_tools()
        self.set_interval(10, self.retry_saves)

    def watch_state(self, state: AppState) -> None:
        if not self.is_attached:  # the app is closing
            return
        self.status.update_info(state=state)
        self.settings_panel.set_busy(state is AppState.LOADING)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Loading a chat's own model is offered (in the footer) only while the open chat was made
        with another."""
        if action == "load_saved_model":
            return self.saved_load is not None
        return True

    # -- sending and streaming ------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if not isinstance(event.text_area, PromptInput):
            return
        if self._prefill_timer is not None:
            self._prefill_timer.stop()
        self._prefill_timer = self.set_timer(PREFILL_PAUSE_S, self._prefill_draft)

    def _prefill_draft(self) -> None:
        """While the user pauses typing, the model reads the conversation and their draft into
        its KV cache (`Engine.prefill`): on Enter only what they typed since is left to read,
        so the first token comes sooner in a long chat."""
        self._prefill_timer = None
        try:
            draft = self.prompt_input.text.strip()
        except NoMatches:  # the app is closing
            return
        if not draft or is_slash_command(draft) or self.state is not AppState.READY or self.editing is not None:
            return
        self.engine.prefill(self.session.history() + [{"role": "user", "content": draft}], self.session.generation)

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if is_slash_command(text):
            await self.run_slash(text)
            return
        if self.state is AppState.GENERATING:
            self.notify(f"A reply is being written: press {self.keymap.key('chat.stop')} to stop it first.",
                        severity="warning")
            self.prompt_input.load_text(text)
            return
        await self.send(text)

    async def send(self, text: str) -> None:
        edited, self.editing = self.editing, None
        user = self.session.add_user_message(text, edit_of=edited)
        self.report_saves()
        if edited is not None:  # an edit becomes a new version of that message
            await self.render_conversation()
        else:
            await self._mount_message(user)
        self.chat.anchor()
        if self.state in (AppState.LOADING, AppState.ERROR):
            self.pending_send = True
            if self.state is AppState.LOADING:
                self.notify("The model is loading: your message will be sent when it is ready.")
            return
        self.new_user_turn()
        await self.generate_reply("send")

    async def generate_reply(self, kind: str, plan: Reply | None = None) -> None:
        """The one streaming path: send, regenerate, continue and a branch from a token (planned
        by the caller) all come here."""
        self.pending_send = False
        try:
            reply = self.session.start_reply(plan or self.session.plan_reply(kind))
        except SessionError as exc:
            self.notify(str(exc), severity="warning")
            return
        if reply.continues is not None:
            view = self.views[reply.continues.id]
        else:
            if reply.replaces is not None and reply.replaces.id in self.views:
                await self.views.pop(reply.replaces.id).remove()
            view = await self.chat.add(self.message_view("assistant", reply.base))
        self._reply_view = view
        view.set_status("ok")
        view.set_stats("")
        view.start_stream()
        self._turn_id += 1
        self._turn = self.engine.generate(reply.messages, self.session.generation,
                                          TOKEN_VIEW_TOP if self.record_token_probs else 0, self.tools_for_next_reply())
        self.state = AppState.GENERATING
        self._live_tokens, self._live_first_at, self._live_prompt_tokens = 0, None, 0
        self._context_request += 1  # a count asked for before this reply is out of date
        self.status.update_info(detail="", tok_s=None, ttft_s=None)
        self._ticker = self.set_interval(0.25, self._tick_status)
        self.collector.reply_started()
        self.run_worker(lambda t=self._turn, i=self._turn_id: pump_turn(
            self, t, i, self.activity.is_active, lambda: get_current_worker().is_cancelled),
            thread=True, group="reply", exit_on_error=False)

    def _tick_status(self) -> None:
        """Live figures of the reply being written: tok/s, and the context it fills so far."""
        info: dict[str, Any] = {}
        if self._live_prompt_tokens:
            info["context_used"] = self._live_prompt_tokens + self._live_tokens
        if self._live_first_at is not None and self._live_tokens > 1:
            elapsed = time.perf_counter() - self._live_first_at
            if elapsed > 0:
                info["tok_s"] = (self._live_tokens - 1) / elapsed
        if info:
            self.status.update_info(**info)

    def on_reply_started(self, message: ReplyStarted) -> None:
        if message.turn_id == self._turn_id:
            self._live_prompt_tokens = message.prompt_tokens
            self.status.update_info(context_used=message.prompt_tokens)
            if not message.streams:
                self.notify(NO_STREAM_NOTE.format(beams=self.session.generation.values.get("num_beams")))

    async def on_reply_delta(self, message: ReplyDelta) -> None:
        if message.turn_id != self._turn_id or self._reply_view is None:
            message.shown.set()
            return
        self._live_tokens, self._live_first_at = message.tokens, message.first_token_at
        if message.choices:
            self.session.reply_token_probs(message.choices)
        self.session.reply_progress(message.text)
        self._reply_view.append_later(message.text, shown=message.shown)

    async def on_reply_ended(self, message: ReplyEnded) -> None:
        if message.turn_id != self._turn_id or self._reply_view is None:
            return
        if self._ticker is not None:
            self._ticker.stop()
        self.collector.reply_ended()
        view, final = self._reply_view, message.final
        self._turn, self._reply_view = None, None
        if message.choices:
            self.session.reply_token_probs(message.choices)
        if self.session.reply is not None and added_nothing(self.session.reply, final):
            self.notify("The model had nothing to add to this reply.")
        stored = self.session.end_reply(final)
        self.report_saves()
        if isinstance(final, Failed):
            self.notify(final.error, title="Generation failed", severity="error", timeout=10)
        elif final.dropped_messages:
            self.notify(f"{final.dropped_messages} oldest messages were left out to fit the context.",
                        severity="warning")
        view.message_id = stored.id
        self.views[stored.id] = view
        view.finish_later(stored.content, status=stored.status, stats=stats_text(stored.stats))
        view.set_version(self.session.version_label(stored))
        if isinstance(final, Failed):
            await self.add_note(final.error, role="error")
        self.state = AppState.READY
        self.status.update_info(detail="")
        self.show_chat_figures()
        self.refresh_memory()
        if isinstance(final, Finished):
            await self.after_reply(stored)

    def leave_reply(self) -> None:
        """The conversation is being left (quit, a new chat, another chat) while a reply is
        written: stop it, and save what it wrote so far as stopped, as Esc does."""
        if self._turn is not None:
            self._turn.stop()
        self._turn_id += 1  # ignore the events of a reply still winding down
        self._turn, self._reply_view = None, None
        self.workers.cancel_group(self, "reply")  # its worker stops listening, ended or not
        if self.session.leave_reply() is not None and self.is_attached:
            self.report_saves()
        if self._ticker is not None:
            self._ticker.stop()
        self.collector.reply_ended()
        if self.state is AppState.GENERATING:
            self.state = AppState.READY

    # -- rendering the conversation -------------------------------------------------------------

    def message_view(self, role: str, text: str, **kwargs: Any) -> MessageView:
        return MessageView(role, text, keymap=self.keymap, activity=self.activity, **kwargs)

    def _view_for(self, message: StoredMessage) -> MessageView:
        if message.role == "tool":  # a short card: the call, its outcome, the first lines
            return self.message_view("tool", tool_card(message), message_id=message.id)
        return self.message_view(message.role, message.content, stats=stats_text(message.stats),
                                 status=message.status, version=self.session.version_label(message),
                                 message_id=message.id)

    async def _mount_message(self, message: StoredMessage) -> MessageView:
        view = await self.chat.add(self._view_for(message))
        self.views[message.id] = view
        return view

    async def render_conversation(self) -> None:
        """Show the active branch again (after opening, switching versions, editing, deleting).
        Only the newest RENDER_WINDOW messages are drawn at first; a button draws earlier ones."""
        await self.chat.clear()
        self.views = {}
        await self._show_earlier(len(self.messages))
        self.chat.anchor()
        self.show_chat_figures()

    def show_chat_figures(self) -> None:
        """The status bar's figures of the open conversation: tok/s and TTFT of its last reply
        (none if it has none yet), and the context it fills (its last reply's figure while that
        is the last message, else counted by the engine)."""
        replies = [m for m in self.messages if m.role == "assistant" and m.stats and m.stats.get("new_tokens")]
        last = replies[-1].stats if replies else None
        self.status.update_info(tok_s=last["decode_tok_s"] if last else None,
                                ttft_s=last["ttft_s"] if last else None)
        self._context_request += 1
        if self.messages and self.messages[-1].stats and self.messages[-1].stats.get("new_tokens"):
            stats = self.messages[-1].stats
            self.status.update_info(context_used=stats["prompt_tokens"] + stats["new_tokens"])
        elif not self.messages or self.model_info is None:
            self.status.update_info(context_used=0)
        else:
            count_context(self, self.engine, self.session.history(), self._context_request)

    def on_context_counted(self, message: ContextCounted) -> None:
        if message.request == self._context_request and self._turn is None:
            self.status.update_info(context_used=message.tokens)

    async def _show_earlier(self, first_shown: int) -> None:
        """Draw up to RENDER_WINDOW messages before message `first_shown`, and a button for the rest."""
        earlier = self.messages[max(0, first_shown - RENDER_WINDOW):first_shown]
        views = [self._view_for(m) for m in earlier]
        for message, view in zip(earlier, views):
            self.views[message.id] = view
        if views:
            if first_shown < len(self.messages):
                self.chat.release_anchor()
            await self.chat.mount_all(views, before=0 if self.chat.children else None)
        hidden = first_shown - len(earlier)
        if hidden:
            await self.chat.mount(Button(f"Show {min(hidden, RENDER_WINDOW)} earlier messages ({hidden} hidden)",
                                         id="show-earlier"), before=0)
        self.chat.refold_soon()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "show-earlier":
            return
        await event.button.remove()
        await self._show_earlier(next((i for i, m in enumerate(self.messages) if m.id in self.views),
                                      len(self.messages)))

    async def add_note(self, text: str, role: str = "note") -> None:
        await self.chat.add(self.message_view(role, text))

    # -- actions of the whole chat (the rest: chat_messages.py, chat_settings.py, chat_files.py) --

    def action_stop(self) -> None:
        if self.stop_tool():
            return
        if self._turn is not None:
            self._turn.stop()
        elif self.editing is not None:
            self.editing = None
            self.prompt_input.load_text("")
            self.notify("Edit cancelled.")

    async def action_new_chat(self) -> None:
        self.leave_reply()
        self.pending_send = False
        self.editing = None
        self.saved_load = None
        self.session.new()
        self.chat_changed()
        await self.render_conversation()
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
        and comes back when there is room, unless the user hid it."""
        fits = self.size.width >= SIDEBAR_WIDTH + MIN_CHAT_WIDTH
        if fits:
            self._sidebar_forced = False
        self.settings_panel.display = not self._sidebar_hidden_by_user and (fits or self._sidebar_forced)

    async def run_slash(self, text: str) -> None:
        try:
            command = parse_slash(text)
        except SlashError as exc:
            self.notify(str(exc), severity="error")
            return
        target = self.app if command.action.scope == "app" else self
        action = command.action.action
        await target.run_action(f"{action}({command.argument!r})" if command.argument else action)
