"""ChatApp: the chat pane, the settings sidebar, the status bar, and every action and key.

The first frame draws before torch is imported: the engine loads the model on its own thread and
reports progress with messages. Replies stream from the engine through `tui.bridge`. The
conversation lives in an AutoSaver: every message is saved as it happens (the user message when
sent, the reply when finished or stopped); while the disk refuses, it waits in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.lazy import Lazy
from textual.widgets import Button, Footer, TextArea

from tui.bridge import ReplyDelta, ReplyEnded, pump_turn
from tui.engine import Engine, Failed, GenerationSettings, LoadError, LoadSettings, ModelInfo
from tui.engine.settings import SettingsError, format_value, parse_key_values
from tui.idle_gc import IdleCollector
from tui.slash import SlashError, help_text, is_slash_command, parse_slash
from tui.store import CURRENT_LEAF, AutoSaver, Library, StoreError
from tui.store import Message as StoredMessage
from tui.store.config import Config, ConfigError, config_path, save_presets
from tui.widgets.chat_view import ChatView
from tui.widgets.message import MessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.settings_panel import SettingsPanel
from tui.widgets.status_bar import StatusBar

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
RENDER_WINDOW = 20  # messages drawn when a conversation opens (more on request)
PREFILL_PAUSE_S = 0.6  # the user paused typing this long: the model reads their draft ahead


@dataclass
class LoadProgress(Message):
    done: int
    total: int
    label: str


@dataclass
class CompileDone(Message):
    """The engine's background torch.compile (`--compile`) has finished, well or not."""

    job: Any


@dataclass
class LoadDone(Message):
    info: ModelInfo | None
    error: str | None


def stats_text(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("new_tokens"):
        return ""
    return f"{stats['new_tokens']} tokens · {stats['decode_tok_s']:.1f} tok/s · TTFT {stats['ttft_s']:.2f} s"


@dataclass
class Reply:
    """The reply being generated: where it streams and what it will be saved as."""

    view: MessageView
    parent_id: str | None  # the user message it answers
    continues: StoredMessage | None = None  # the stored reply it continues, if any

    @property
    def base(self) -> str:
        return self.continues.content if self.continues else ""


class ChatApp(App):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "chatui"

    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new"),
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+g", "edit_last", "Edit last", id="chat.edit_last"),
        Binding("ctrl+t", "continue_reply", "Continue", id="chat.continue"),
        Binding("f3", "copy_last", "Copy reply", id="chat.copy"),
        Binding("ctrl+o", "conversations", "Chats", id="chat.conversations"),
        Binding("ctrl+s", "save_file", "Save file", id="chat.save_file"),
        Binding("ctrl+l", "clear", "Clear", show=False, id="chat.clear"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="app.sidebar"),
        Binding("f1", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, options: Any = None, config: Config | None = None, *, engine: Engine | None = None,
                 saver: AutoSaver | None = None, conversation: str | None = None) -> None:
        super().__init__()
        from tui.cli import parse_args

        self.options = options or parse_args([])
        self.config = config or Config(path=config_path())
        self.engine = engine or Engine()
        # The library opens on the first write, after the first frame (opening checks integrity).
        self.saver = saver or AutoSaver(None, reopen=Library)
        self.load_settings: LoadSettings = self.options.load
        self.generation: GenerationSettings = self.options.generation
        self.system_prompt: str = self.options.system_prompt or ""
        self.model_info: ModelInfo | None = None
        self.state = "loading"
        self.pending_send = False  # a message waits for the model
        self.editing: StoredMessage | None = None  # a user message being edited into a new version
        self.views: dict[str, MessageView] = {}
        self._turn = None
        self._turn_id = 0
        self._reply: Reply | None = None
        self._live_tokens = 0
        self._live_first_at: float | None = None
        self._ticker = None
        self._prefill_timer = None
        self.collector = IdleCollector()
        self._save_error: str | None = None
        self._open_at_start = conversation

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield ChatView(id="chat")
                yield PromptInput(id="prompt", placeholder="Message (Enter sends · Shift+Enter/Ctrl+J newline · /help)")
            yield Lazy(SettingsPanel(id="sidebar"))  # mounted after the first frame
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
        """The settings panel, or None during the first frame (it is mounted lazily)."""
        panels = self.query(SettingsPanel)
        return panels.first() if panels and panels.first().ready else None

    @property
    def messages(self) -> list[StoredMessage]:
        """The active branch of the current conversation."""
        conv = self.saver.conversation
        return conv.messages if conv else []

    @property
    def last_input_at(self) -> float:
        """time.monotonic() of the last key, click or scroll (a streaming reply draws it first)."""
        return self.collector.last_activity

    def user_is_active(self) -> bool:
        """A key, click or scroll in the last half second (safe to call from any thread)."""
        return time.monotonic() - self.last_input_at < 0.5

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            self.collector.activity()  # the user is here: not the moment to pause for the collector
        await super().on_event(event)

    def on_mount(self) -> None:
        from tui.themes import DEFAULT_THEME, register_themes

        for warning in register_themes(self):
            self.notify(warning, title="Themes", severity="warning", timeout=15)
        wanted = self.options.theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.theme = DEFAULT_THEME
            self.notify(f"Unknown theme {wanted!r}; try one of: {', '.join(sorted(self.available_themes))}",
                        severity="warning", timeout=15)
        self._theme_at_start = self.theme
        if self.config.keys:
            self.set_keymap(self.config.keys)
        for error in self.config.errors:
            self.notify(error, title="config.toml", severity="warning", timeout=15)
        self.prompt_input.focus()
        self.start_conversation()
        self.start_load(self.load_settings)
        self.set_interval(10, self._retry_saves)
        self.set_interval(0.5, self.collector.tick)
        if self._open_at_start:
            self.call_after_refresh(self.open_conversation_ref, self._open_at_start)

    async def open_conversation_ref(self, ref: str) -> None:
        """Open a conversation by id, unique id prefix or 'last' (from --conversation)."""
        library = self.open_library()
        if library is None:
            return
        try:
            conv_id = library.resolve_id(ref)
        except (KeyError, StoreError) as exc:
            self.notify(f"--conversation {ref}: {exc}", severity="error", timeout=15)
            return
        await self.open_conversation(conv_id)

    # -- model loading --------------------------------------------------------------------------

    def start_load(self, settings: LoadSettings) -> None:
        self.state = "loading"
        self.collector.thaw()
        name = settings.model or DEFAULT_MODEL_NAME
        self.status.update_info(state="loading", detail=f"loading {name}", tok_s=None)
        self.status.show_progress(0, 100)
        if self.sidebar:
            self.sidebar.set_busy(True)
        future = self.engine.load(settings, lambda d, t, label: self.post_message(LoadProgress(d, t, label)))

        def done(f) -> None:
            try:
                self.post_message(LoadDone(f.result(), None))
            except LoadError as exc:
                self.post_message(LoadDone(self.engine.info, str(exc)))
            except Exception as exc:  # never a traceback: a bug still ends as a clear message
                self.post_message(LoadDone(self.engine.info, f"{type(exc).__name__}: {exc}"))

        future.add_done_callback(done)

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.state == "loading":
            self.status.show_progress(message.done, message.total)
            self.status.update_info(detail=message.label)

    async def on_load_done(self, message: LoadDone) -> None:
        self.status.hide_progress()
        self.model_info = message.info
        if message.info is not None:
            self.load_settings = self.engine.load_settings or self.load_settings
        if self.sidebar:
            self.sidebar.set_busy(False)
            if message.info is not None:
                self.sidebar.show_model(message.info, self.load_settings)
        if message.error:
            self.notify(message.error, title="Model load failed", severity="error", timeout=15)
            await self.add_note(f"Model load failed: {message.error}", role="error")
        if message.info is None:
            self.state = "error"
            self.status.update_info(state="error", detail="no model loaded (fix it in the sidebar, then Apply)",
                                    model="")
            return
        info = message.info
        self.collector.freeze_long_lived()
        for warning in info.warnings:
            self.notify(warning, severity="warning", timeout=10)
        self.state = "ready"
        self.status.update_info(
            state="ready", detail="", model=info.name, device=info.device, dtype=info.dtype,
            quantization=info.quantization, context_size=info.context_size,
        )
        self.refresh_memory()
        self._watch_compile()
        if self.pending_send:
            await self.generate_reply()

    def _watch_compile(self) -> None:
        """`--compile`: the engine compiles in the background; the status bar says how it goes."""
        job = self.engine.compile
        if job is None:
            self.status.update_info(compile="")
            return
        self.status.update_info(compile="compiling (torch.compile, in the background)")

        job.done.add_done_callback(lambda _future: self.post_message(CompileDone(job)))  # thread-safe

    def on_compile_done(self, message: "CompileDone") -> None:
        job = message.job
        if job is not self.engine.compile:
            return  # a later load replaced it
        if job.state == "ready":
            self.status.update_info(compile="compiled")
            self.notify("torch.compile is done: replies now use the static cache and the compiled model.")
        else:
            self.status.update_info(compile="compile failed")
            self.notify(job.error, severity="warning", timeout=15)

    def refresh_memory(self) -> None:
        from tui.engine.metrics import cuda_memory, rss_bytes

        cuda = cuda_memory()
        self.status.update_info(rss_bytes=rss_bytes(), cuda_allocated=cuda[0] if cuda else None,
                                cuda_reserved=cuda[1] if cuda else None)

    # -- the conversation on disk ---------------------------------------------------------------

    def start_conversation(self) -> None:
        self.saver.start(**self._settings_record())

    def _settings_record(self) -> dict[str, Any]:
        return {
            "model": self.model_info.name if self.model_info else (self.load_settings.model or DEFAULT_MODEL_NAME),
            "load_settings": self.load_settings.as_dict(),
            "generation_settings": self.generation.as_dict(),
            "system_prompt": self.system_prompt or None,
        }

    def saved(self) -> None:
        """Tell the user when saving starts or stops failing (the conversation stays in memory)."""
        library = self.saver.library
        if library is not None and library.recovered_from is not None:
            self.notify(f"The conversation library was damaged; it was moved to {library.recovered_from} "
                        "and a new one started.", severity="error", timeout=20)
            library.recovered_from = None
        error = self.saver.last_error if self.saver.pending else None
        if error and error != self._save_error:
            self.notify(f"{error}. Your messages are kept in memory and saved when possible.",
                        title="Not saved", severity="error", timeout=15)
        elif self._save_error and not error:
            self.notify("Saving works again: every message is saved.")
        self._save_error = error

    def _retry_saves(self) -> None:
        if self.saver.pending:
            self.saver.retry()
            self.saved()

    def open_library(self) -> Library | None:
        if self.saver.library is None:
            self.saver.retry()
            self.saved()
        if self.saver.library is None:
            self.notify(self.saver.last_error or "The conversation library cannot be opened.", severity="error")
        return self.saver.library

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
        except NoMatches:  # another screen is on top (help, conversations) or the app is closing
            return
        if (not draft or is_slash_command(draft) or self.state != "ready" or self.model_info is None
                or self.editing is not None):
            return
        self.engine.prefill(self.history() + [{"role": "user", "content": draft}], self.generation)

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if is_slash_command(text):
            await self.run_slash(text)
            return
        if self.state == "generating":
            self.notify("A reply is being written: press Esc to stop it first.", severity="warning")
            self.prompt_input.load_text(text)
            return
        await self.send(text)

    async def send(self, text: str) -> None:
        if self.editing is not None:  # an edit becomes a new version of that message
            edited, self.editing = self.editing, None
            self.saver.user_message(text, parent_id=edited.parent_id)
            self.saved()
            await self.render_conversation()
        else:
            user = self.saver.user_message(text)
            self.saved()
            await self._mount_message(user)
        self.chat.anchor()
        if self.state in ("loading", "error") or self.model_info is None:
            self.pending_send = True
            if self.state == "loading":
                self.notify("The model is loading: your message will be sent when it is ready.")
            return
        await self.generate_reply()

    def history(self, messages: list[StoredMessage] | None = None) -> list[dict[str, str]]:
        """What the model sees: the system prompt, then every message but failed replies."""
        turns = [{"role": "system", "content": self.system_prompt}] if self.system_prompt.strip() else []
        source = self.messages if messages is None else messages
        return turns + [{"role": m.role, "content": m.content} for m in source if m.status != "failed"]

    async def generate_reply(self, *, regenerate: bool = False, continue_reply: bool = False) -> None:
        """The one streaming path: send, regenerate and continue all come here."""
        self.pending_send = False
        messages = list(self.messages)
        if continue_reply:
            target = messages[-1]
            self._reply = Reply(self.views[target.id], target.parent_id, continues=target)
        else:
            if regenerate:
                old = messages.pop()
                if old.id in self.views:
                    await self.views.pop(old.id).remove()
            parent = messages[-1].id if messages else None
            self._reply = Reply(await self.chat.add(MessageView("assistant", "")), parent)
        self.saver.set_settings(**self._settings_record())
        view = self._reply.view
        view.set_status("ok")
        view.set_stats("")
        view.start_stream()
        self._turn_id += 1
        self._turn = self.engine.generate(self.history(messages), self.generation)
        self.state = "generating"
        self._live_tokens, self._live_first_at = 0, None
        self.status.update_info(state="generating", detail="", tok_s=None)
        self._ticker = self.set_interval(0.25, self._tick_status)
        self.collector.reply_started()
        self.run_worker(lambda t=self._turn, i=self._turn_id: pump_turn(self, t, i, self.user_is_active), thread=True,
                        group="reply", exit_on_error=False)

    def _tick_status(self) -> None:
        if self._live_first_at is not None and self._live_tokens > 1:
            elapsed = time.perf_counter() - self._live_first_at
            if elapsed > 0:
                self.status.update_info(tok_s=(self._live_tokens - 1) / elapsed)

    async def on_reply_delta(self, message: ReplyDelta) -> None:
        if message.turn_id != self._turn_id or self._reply is None:
            message.shown.set()
            return
        self._live_tokens, self._live_first_at = message.tokens, message.first_token_at
        self._reply.view.append_later(message.text, shown=message.shown)

    async def on_reply_ended(self, message: ReplyEnded) -> None:
        if message.turn_id != self._turn_id or self._reply is None:
            return
        if self._ticker is not None:
            self._ticker.stop()
        self.collector.reply_ended()
        reply, final = self._reply, message.final
        self._turn, self._reply = None, None
        content = reply.base + final.text
        stats = final.metrics.as_dict() if final.metrics and final.metrics.new_tokens else None
        if isinstance(final, Failed):
            status = "failed"
            self.notify(final.error, title="Generation failed", severity="error", timeout=10)
        else:
            status = {"stopped": "stopped", "length": "length"}.get(final.reason, "ok")
            if final.dropped_messages:
                self.notify(f"{final.dropped_messages} oldest messages were left out to fit the context.",
                            severity="warning")
        if reply.continues is not None:
            stored = self.saver.update_message(reply.continues.id, content=content, status=status, stats=stats)
        else:
            stored = self.saver.assistant_message(content, status=status, stats=stats, parent_id=reply.parent_id)
        self.saved()
        reply.view.message_id = stored.id
        self.views[stored.id] = reply.view
        reply.view.finish_later(content, status=status, stats=stats_text(stats))
        reply.view.set_version(self._version_label(stored))
        if isinstance(final, Failed):
            await self.add_note(final.error, role="error")
        self.state = "ready"
        info: dict[str, Any] = {"state": "ready", "detail": ""}
        if stats:
            info.update(tok_s=stats["decode_tok_s"], ttft_s=stats["ttft_s"],
                        context_used=stats["prompt_tokens"] + stats["new_tokens"])
        self.status.update_info(**info)
        self.refresh_memory()

    # -- rendering the conversation -------------------------------------------------------------

    def _version_label(self, message: StoredMessage) -> str:
        versions = self.saver.versions(message.id)
        if len(versions) < 2:
            return ""
        index = next(i for i, v in enumerate(versions) if v.id == message.id)
        return f"version {index + 1}/{len(versions)} (←/→)"

    def _view_for(self, message: StoredMessage) -> MessageView:
        return MessageView(message.role, message.content, stats=stats_text(message.stats), status=message.status,
                           version=self._version_label(message), message_id=message.id)

    async def _mount_message(self, message: StoredMessage) -> MessageView:
        view = await self.chat.add(self._view_for(message))
        self.views[message.id] = view
        return view

    async def render_conversation(self) -> None:
        """Show the active branch again (after opening, switching versions, editing, deleting).
        Only the newest RENDER_WINDOW messages are drawn at first; a button draws earlier ones."""
        await self.chat.clear()
        self.views = {}
        shown = self.messages[-RENDER_WINDOW:]
        views = [self._view_for(m) for m in shown]
        for message, view in zip(shown, views):
            self.views[message.id] = view
        if views:
            await self.chat.mount_all(views)
        hidden = len(self.messages) - len(shown)
        if hidden:
            await self.chat.mount(Button(f"Show {min(hidden, RENDER_WINDOW)} earlier messages ({hidden} hidden)",
                                         id="show-earlier"), before=0)
        self.chat.anchor()
        self.chat.refold_soon()
        last = self.messages[-1] if self.messages else None
        stats = last.stats if last and last.stats else {}
        self.status.update_info(context_used=stats.get("prompt_tokens", 0) + stats.get("new_tokens", 0))

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "show-earlier":
            return
        await event.button.remove()
        first_shown = next((i for i, m in enumerate(self.messages) if m.id in self.views), len(self.messages))
        earlier = self.messages[max(0, first_shown - RENDER_WINDOW):first_shown]
        views = [self._view_for(m) for m in earlier]
        for message, view in zip(earlier, views):
            self.views[message.id] = view
        if views:
            self.chat.release_anchor()
            await self.chat.mount_all(views, before=0)
        hidden = first_shown - len(earlier)
        if hidden:
            await self.chat.mount(Button(f"Show {min(hidden, RENDER_WINDOW)} earlier messages ({hidden} hidden)",
                                         id="show-earlier"), before=0)
        self.chat.refold_soon()

    async def add_note(self, text: str, role: str = "note") -> None:
        await self.chat.add(MessageView(role, text))

    # -- actions --------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self._turn is not None:
            self._turn.stop()
        elif self.editing is not None:
            self.editing = None
            self.prompt_input.load_text("")
            self.notify("Edit cancelled.")

    async def _abandon_reply(self) -> None:
        """Stop a reply in flight without saving it (the conversation is being left)."""
        if self._turn is not None:
            self._turn.stop()
        self._turn_id += 1  # ignore the events of a reply still winding down
        self._turn, self._reply = None, None
        if self._ticker is not None:
            self._ticker.stop()
        self.collector.reply_ended()
        if self.state == "generating":
            self.state = "ready"
            self.status.update_info(state="ready")

    async def action_new_chat(self) -> None:
        await self._abandon_reply()
        self.pending_send = False
        self.editing = None
        self.start_conversation()
        await self.render_conversation()
        self.status.update_info(context_used=0)
        self.prompt_input.focus()

    async def action_clear(self) -> None:
        await self.action_new_chat()

    def _busy(self) -> bool:
        if self.state == "generating":
            self.notify("Wait for the reply or press Esc to stop it.", severity="warning")
            return True
        if self.model_info is None or self.state == "loading":
            self.notify("No model is ready yet.", severity="warning")
            return True
        return False

    async def action_regenerate(self) -> None:
        if self._busy():
            return
        if not self.messages or self.messages[-1].role != "assistant":
            self.notify("There is no reply to regenerate.", severity="warning")
            return
        await self.generate_reply(regenerate=True)

    async def action_continue_reply(self) -> None:
        if self._busy():
            return
        if not self.messages or self.messages[-1].role != "assistant" or self.messages[-1].status == "failed":
            self.notify("There is no reply to continue.", severity="warning")
            return
        await self.generate_reply(continue_reply=True)

    async def action_edit_last(self) -> None:
        last_user = next((m for m in reversed(self.messages) if m.role == "user"), None)
        if last_user is None:
            self.notify("There is no message to edit.", severity="warning")
            return
        self.edit_message(last_user)

    def edit_message(self, message: StoredMessage) -> None:
        if self.state == "generating":
            self.notify("Wait for the reply or press Esc to stop it.", severity="warning")
            return
        self.editing = message
        self.prompt_input.load_text(message.content)
        self.prompt_input.move_cursor(self.prompt_input.document.end)
        self.prompt_input.focus()
        self.notify("Edit the message and press Enter: it is sent as a new version (Esc cancels).")

    def action_copy_last(self) -> None:
        reply = next((m for m in reversed(self.messages) if m.role == "assistant" and m.content), None)
        if reply is None:
            self.notify("There is no reply to copy.", severity="warning")
            return
        self.copy_text(reply.content)

    def copy_text(self, text: str) -> None:
        self.copy_to_clipboard(text)
        self.notify(f"Copied {len(text)} characters.")

    def action_toggle_sidebar(self) -> None:
        if self.sidebar:
            self.sidebar.display = not self.sidebar.display

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, str]]:
        keymap = getattr(self, "_keymap", {}) or {}
        rows = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            key = keymap.get(binding.id, binding.key) if binding.id else binding.key
            rows.append((key, binding.description))
        rows.append(("ctrl+p", "Command palette"))
        for binding in MessageView.BINDINGS:
            assert isinstance(binding, Binding)
            rows.append((f"{binding.key} (on a message)", binding.description))
        return rows

    # -- message operations (a focused message posts these) -------------------------------------

    async def on_message_view_action(self, event: MessageView.Action) -> None:
        view, action = event.view, event.action
        stored = next((m for m in self.messages if m.id == view.message_id), None)
        if action == "copy":
            self.copy_text(view.text)
        elif stored is None:
            self.notify("This message is not part of the conversation.", severity="warning")
        elif action == "edit":
            if stored.role != "user":
                self.notify("Only your messages can be edited; regenerate a reply with r.", severity="warning")
            else:
                self.edit_message(stored)
        elif action == "regenerate":
            if stored.role == "assistant" and stored is self.messages[-1]:
                await self.action_regenerate()
            else:
                self.notify("Regenerate works on the last reply.", severity="warning")
        elif action == "delete":
            self.delete_message(stored)
        elif action in ("previous_version", "next_version"):
            await self.switch_version(stored, -1 if action == "previous_version" else 1)

    @work
    async def delete_message(self, message: StoredMessage) -> None:
        from tui.screens.conversations import ConfirmScreen

        if self.state == "generating":
            self.notify("Wait for the reply or press Esc to stop it.", severity="warning")
            return
        later = len(self.messages) - 1 - next(i for i, m in enumerate(self.messages) if m.id == message.id)
        question = "Delete this message" + (f" and the {later} after it?" if later else "?")
        if await self.push_screen_wait(ConfirmScreen(question)):
            self.saver.delete_message(message.id)
            self.saved()
            await self.render_conversation()

    async def switch_version(self, message: StoredMessage, step: int) -> None:
        if self.state == "generating":
            self.notify("Wait for the reply or press Esc to stop it.", severity="warning")
            return
        versions = self.saver.versions(message.id)
        index = next(i for i, v in enumerate(versions) if v.id == message.id) + step
        if len(versions) < 2 or not 0 <= index < len(versions):
            self.notify("No other version that way." if len(versions) > 1 else "This message has one version.")
            return
        self.saver.switch_version(versions[index].id)
        self.saved()
        await self.render_conversation()
        view = self.views.get(versions[index].id)
        if view is not None:
            view.focus()

    # -- conversations and files ----------------------------------------------------------------

    @work
    async def action_conversations(self) -> None:
        from tui.screens.conversations import ConversationBrowser

        library = self.open_library()
        if library is None:
            return
        result = await self.push_screen_wait(ConversationBrowser(library))
        if result is None:
            return
        if result.action == "new":
            await self.action_new_chat()
        elif result.conv_id:
            await self.open_conversation(result.conv_id)

    async def open_conversation(self, conv_id: str) -> None:
        await self._abandon_reply()
        self.editing = None
        try:
            conv = self.saver.resume(conv_id)
        except (StoreError, KeyError) as exc:
            self.notify(f"Cannot open the conversation: {exc}", severity="error")
            return
        await self.render_conversation()
        self.restore_settings(conv.generation_settings, conv.system_prompt, conv.load_settings)
        self.notify(f"Opened “{conv.title}”.")

    def restore_settings(self, generation: dict[str, Any], system_prompt: str | None,
                         load: dict[str, Any]) -> None:
        """Bring back the settings a conversation was held with (invalid ones are reported)."""
        try:
            self.generation = GenerationSettings().with_updates(generation or {})
        except SettingsError as exc:
            self.notify(f"Kept the current generation settings: the saved ones are invalid ({exc}).",
                        severity="warning")
        if self.sidebar:
            self.sidebar.show_generation(self.generation)
        self.set_system_prompt(system_prompt or "")
        wanted_keys = ("model", "dtype", "device", "quantization", "attn_implementation")
        wanted = {k: v for k, v in (load or {}).items() if k in wanted_keys}
        try:
            target = self.load_settings.replace(**wanted)
        except (SettingsError, TypeError):
            return
        if target != self.load_settings and self.state != "loading":
            self.notify("Loading the model this conversation used.")
            self.apply_load_settings(target)

    def conversation_renamed(self, conv_id: str, title: str) -> None:
        conv = self.saver.conversation
        if conv is not None and conv.id == conv_id:
            conv.title = title

    def conversation_deleted(self, conv_id: str) -> None:
        conv = self.saver.conversation
        if conv is not None and conv.id == conv_id:
            self.call_later(self.action_new_chat)

    @work
    async def action_save_file(self) -> None:
        from tui.screens.conversations import TextPromptScreen
        from tui.store import export_json, export_markdown, write_file_atomic

        conv = self.saver.conversation
        if conv is None or not conv.messages:
            self.notify("Nothing to save yet.", severity="warning")
            return
        default = str(Path.cwd() / f"chatui-{conv.id[:8]}.md")
        answer = await self.push_screen_wait(
            TextPromptScreen("Save the conversation to (.md for Markdown, .json for JSON)", default))
        if not answer:
            return
        path = Path(answer).expanduser()
        text = export_json(conv) if path.suffix.lower() == ".json" else export_markdown(conv)
        try:
            write_file_atomic(path, text)
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"Saved to {path}")

    @work
    async def action_open_file(self) -> None:
        from tui.screens.conversations import TextPromptScreen
        from tui.store import ImportFormatError, import_conversation

        answer = await self.push_screen_wait(TextPromptScreen(
            "Open a conversation file (chatui JSON, transformers chat !save JSON, or an OpenAI-style list)",
            placeholder="path/to/file.json"))
        if not answer:
            return
        library = self.open_library()
        if library is None:
            return
        try:
            conv = import_conversation(Path(answer).expanduser())
            conv_id = library.import_conversation(conv)
        except ImportFormatError as exc:
            self.notify(str(exc), title="Not imported", severity="error", timeout=15)
            return
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        await self.open_conversation(conv_id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in ("quit",):
                continue
            yield SystemCommand(binding.description, f"{binding.description} ({binding.key})",
                                lambda a=binding.action: self.run_action(a))
        yield SystemCommand("Open file", "Import a conversation file and open it", self.action_open_file)
        sidebar = self.sidebar
        for name in sidebar.preset_names() if sidebar else []:
            yield SystemCommand(f"Preset: {name}", f"Use the {name} generation preset",
                                lambda n=name: sidebar.apply_preset(n))
        yield SystemCommand("Save as defaults", "Write the current settings to config.toml", self.save_defaults)

    # -- settings -------------------------------------------------------------------------------

    def set_generation(self, updates: dict[str, Any]) -> str | None:
        """Apply validated generation values; returns an error text (and changes nothing) if bad."""
        try:
            candidate = self.generation.with_updates(updates)
        except SettingsError as exc:
            return str(exc)
        if self.model_info and candidate.max_new_tokens >= self.model_info.context_size:
            return (f"max_new_tokens: {candidate.max_new_tokens} does not fit the model's context of "
                    f"{self.model_info.context_size} tokens")
        self.generation = candidate
        if self.sidebar:
            self.sidebar.show_generation(self.generation)
        return None

    def set_system_prompt(self, text: str) -> None:
        self.system_prompt = text
        if self.sidebar:
            self.sidebar.show_system_prompt(text)

    def apply_load_settings(self, settings: LoadSettings) -> None:
        if self.state == "generating":
            self.notify("Stop the reply before reloading the model.", severity="warning")
            return
        self.model_info = None
        self.start_load(settings)

    def save_user_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        try:
            path = save_presets(presets, self.config.path)
        except ConfigError as exc:
            self.notify(str(exc), title="Could not save the preset", severity="error")
            return
        self.notify(f"Preset saved in {path}")

    def save_defaults(self) -> None:
        from tui.store.config import save_defaults

        try:
            path = save_defaults(self.load_settings, self.generation, self.system_prompt, self.theme,
                                 path=self.config.path)
        except ConfigError as exc:
            self.notify(str(exc), title="Could not save", severity="error")
            return
        self.notify(f"Saved as defaults in {path}")

    # -- slash commands -------------------------------------------------------------------------

    async def run_slash(self, text: str) -> None:
        try:
            command = parse_slash(text)
            if command.name == "help":
                await self.add_note("Commands:\n\n```\n" + help_text() + "\n```\n\nKeys: press F1.")
            elif command.name in ("clear", "new"):
                await self.action_new_chat()
            elif command.name == "set":
                words = command.words()
                if not words:
                    raise SlashError("/set needs key=value pairs, e.g. /set temperature=0.5")
                try:
                    updates = parse_key_values(words)
                except SettingsError as exc:
                    raise SlashError(f"/set: {exc}") from None
                error = self.set_generation(updates)
                if error:
                    raise SlashError(f"/set: {error}")
                self.notify("Set " + " ".join(f"{k}={format_value(v)}" for k, v in updates.items()))
            elif command.name == "system":
                self.set_system_prompt(command.argument)
                self.notify("System prompt set for the next turns." if command.argument else "System prompt cleared.")
            elif command.name == "status":
                await self.add_note(self.status_report())
            elif command.name == "regenerate":
                await self.action_regenerate()
            elif command.name == "continue":
                await self.action_continue_reply()
            elif command.name == "quit":
                self.exit()
        except SlashError as exc:
            self.notify(str(exc), severity="error")

    def status_report(self) -> str:
        info = self.model_info
        lines = ["**Status**", ""]
        if info:
            lines += [f"- model: `{info.name}` ({info.source})",
                      f"- device: {info.device} · dtype: {info.dtype} · quantization: {info.quantization} · "
                      f"attention: {info.attn_implementation}",
                      f"- context: {info.context_size} tokens · footprint: {info.footprint_bytes / 2**20:,.0f} MB"]
        else:
            lines.append(f"- model: not loaded ({self.state})")
        lines.append("- generation: `" + self.generation.describe() + "`")
        lines.append(f"- system prompt: {self.system_prompt!r}" if self.system_prompt else "- system prompt: none")
        conv = self.saver.conversation
        if conv is not None:
            saved = "saved" if not self.saver.pending else f"{self.saver.pending} changes not saved yet"
            lines.append(f"- conversation: {conv.id[:8]} “{conv.title}” ({saved})")
        return "\n".join(lines)

    async def on_unmount(self) -> None:
        if self._turn is not None:
            self._turn.stop()
        self.collector.restore()  # the interpreter's usual thresholds, for whatever runs next
        self.engine.shutdown()
        self.saver.retry()
        if self.theme != getattr(self, "_theme_at_start", self.theme):
            from tui.store.config import save_theme

            try:
                save_theme(self.theme, self.config.path)  # the theme picked in the palette is the one next time
            except ConfigError:
                pass


def run_app(options: Any, config: Config | None = None, conversation: str | None = None) -> int:
    app = ChatApp(options, config, conversation=conversation)
    app.run()
    return 0
