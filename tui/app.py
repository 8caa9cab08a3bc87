"""ChatApp: the chat pane, the settings sidebar, the status bar, and every action and key.

The first frame draws before torch is imported: the engine loads the model on its own thread and
reports progress with messages. Replies stream from the engine through `tui.bridge`.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from tui.bridge import ReplyDelta, ReplyEnded, pump_turn
from tui.engine import Engine, Failed, Finished, GenerationSettings, LoadError, LoadSettings, ModelInfo
from tui.engine.settings import SettingsError, format_value, parse_key_values
from tui.store.config import Config, ConfigError, config_path, save_presets
from tui.slash import SlashError, help_text, is_slash_command, parse_slash
from tui.widgets.chat_view import ChatView
from tui.widgets.message import MessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.settings_panel import SettingsPanel
from tui.widgets.status_bar import StatusBar


@dataclass
class ChatMessage:
    role: str  # user / assistant
    content: str
    status: str = "ok"  # ok / stopped / length / failed
    stats: dict[str, Any] = field(default_factory=dict)
    view: MessageView | None = None


@dataclass
class LoadProgress(Message):
    done: int
    total: int
    label: str


@dataclass
class LoadDone(Message):
    info: ModelInfo | None
    error: str | None


def stats_text(metrics: dict[str, Any]) -> str:
    if not metrics:
        return ""
    return (f"{metrics['new_tokens']} tokens · {metrics['decode_tok_s']:.1f} tok/s · "
            f"TTFT {metrics['ttft_s']:.2f} s")


class ChatApp(App):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "chatui"
    COMMAND_PALETTE_BINDING = "ctrl+p"

    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new"),
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+e", "edit_last", "Edit last", id="chat.edit_last"),
        Binding("ctrl+k", "continue_reply", "Continue", id="chat.continue"),
        Binding("ctrl+y", "copy_last", "Copy reply", id="chat.copy"),
        Binding("ctrl+l", "clear", "Clear", show=False, id="chat.clear"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="app.sidebar"),
        Binding("f1", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, options: Any = None, config: Config | None = None, *, engine: Engine | None = None) -> None:
        super().__init__()
        from tui.cli import parse_args

        self.options = options or parse_args([])
        self.config = config or Config(path=config_path())
        self.engine = engine or Engine()
        self.load_settings: LoadSettings = self.options.load
        self.generation: GenerationSettings = self.options.generation
        self.system_prompt: str = self.options.system_prompt or ""
        self.messages: list[ChatMessage] = []
        self.model_info: ModelInfo | None = None
        self.state = "loading"
        self.pending_prompts: list[str] = []
        self._turn = None
        self._turn_id = 0
        self._reply: ChatMessage | None = None
        self._reply_base = ""  # text before a continued reply
        self._live_tokens = 0
        self._live_first_at: float | None = None
        self._ticker = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield ChatView(id="chat")
                yield PromptInput(id="prompt", placeholder="Message (Enter sends, Shift+Enter/Ctrl+J newline, /help)")
            yield SettingsPanel(id="sidebar")
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
    def sidebar(self) -> SettingsPanel:
        return self.query_one(SettingsPanel)

    def on_mount(self) -> None:
        if self.config.keys:
            self.set_keymap(self.config.keys)
        self.sidebar.set_user_presets(self.config.presets)
        for error in self.config.errors:
            self.notify(error, title="config.toml", severity="warning", timeout=15)
        self.prompt_input.focus()
        self.start_load(self.load_settings)

    # -- model loading --------------------------------------------------------------------------

    def start_load(self, settings: LoadSettings) -> None:
        self.state = "loading"
        name = settings.model or "SmolLM2-135M-Instruct"
        self.status.update_info(state="loading", detail=f"loading {name}", model="", tok_s=None)
        self.status.show_progress(0, 100)
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
        self.sidebar.set_busy(False)
        self.model_info = message.info
        if message.info is not None:
            self.load_settings = self.engine.load_settings or self.load_settings
            self.sidebar.show_model(message.info, self.load_settings)
        if message.error:
            self.notify(message.error, title="Model load failed", severity="error", timeout=15)
            await self.add_note(f"Model load failed: {message.error}", role="error")
        if message.info is None:
            self.state = "error"
            self.status.update_info(state="error", detail="no model loaded (fix it in the sidebar, then Apply)")
            return
        info = message.info
        for warning in info.warnings:
            self.notify(warning, severity="warning", timeout=10)
        self.state = "ready"
        self.status.update_info(
            state="ready", detail="", model=info.name, device=info.device, dtype=info.dtype,
            quantization=info.quantization, context_size=info.context_size,
        )
        self.refresh_memory()
        if self.pending_prompts:
            await self.generate_reply()

    def refresh_memory(self) -> None:
        from tui.engine.metrics import cuda_memory, rss_bytes

        cuda = cuda_memory()
        self.status.update_info(rss_bytes=rss_bytes(), cuda_allocated=cuda[0] if cuda else None,
                                cuda_reserved=cuda[1] if cuda else None)

    # -- sending and streaming ------------------------------------------------------------------

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
        user = ChatMessage("user", text)
        self.messages.append(user)
        user.view = await self.chat.add(MessageView("user", text))
        self.chat.anchor()
        if self.state in ("loading", "error") or self.model_info is None:
            self.pending_prompts.append(text)
            if self.state == "loading":
                self.notify("The model is loading: your message will be sent when it is ready.")
            return
        await self.generate_reply()

    def history(self) -> list[dict[str, str]]:
        """What the model sees: the system prompt, then every message but failed replies."""
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt.strip() else []
        messages += [{"role": m.role, "content": m.content} for m in self.messages if m.status != "failed"]
        return messages

    async def generate_reply(self, *, continue_reply: bool = False) -> None:
        """The one streaming path: send, regenerate and continue all come here."""
        self.pending_prompts.clear()
        if continue_reply:
            self._reply = self.messages[-1]
            self._reply_base = self._reply.content
        else:
            self._reply = ChatMessage("assistant", "")
            self._reply_base = ""
            self.messages.append(self._reply)
            self._reply.view = await self.chat.add(MessageView("assistant", ""))
        view = self._reply.view
        view.set_status("ok")
        view.set_stats("")
        view.start_stream()
        self._turn_id += 1
        self._turn = self.engine.generate(self.history(), self.generation)
        self.state = "generating"
        self._live_tokens, self._live_first_at = 0, None
        self.status.update_info(state="generating", detail="", tok_s=None)
        self._ticker = self.set_interval(0.25, self._tick_status)
        self.run_worker(lambda t=self._turn, i=self._turn_id: pump_turn(self, t, i), thread=True,
                        group="reply", exit_on_error=False)

    def _tick_status(self) -> None:
        if self._live_first_at is not None and self._live_tokens > 1:
            elapsed = time.perf_counter() - self._live_first_at
            if elapsed > 0:
                self.status.update_info(tok_s=(self._live_tokens - 1) / elapsed)

    async def on_reply_delta(self, message: ReplyDelta) -> None:
        if message.turn_id != self._turn_id or self._reply is None:
            return
        self._live_tokens, self._live_first_at = message.tokens, message.first_token_at
        await self._reply.view.append(message.text)

    async def on_reply_ended(self, message: ReplyEnded) -> None:
        if message.turn_id != self._turn_id or self._reply is None:
            return
        if self._ticker is not None:
            self._ticker.stop()
        reply, final = self._reply, message.final
        self._turn, self._reply = None, None
        reply.content = self._reply_base + final.text
        metrics = final.metrics.as_dict() if final.metrics else {}
        if isinstance(final, Failed):
            reply.status = "failed"
            self.notify(final.error, title="Generation failed", severity="error", timeout=10)
        else:
            reply.status = {"stopped": "stopped", "length": "length"}.get(final.reason, "ok")
            if final.dropped_messages:
                self.notify(f"{final.dropped_messages} oldest messages were left out to fit the context.",
                            severity="warning")
        reply.stats = metrics
        await reply.view.finish(reply.content, status=reply.status, stats=stats_text(metrics) if metrics.get("new_tokens") else "")
        if isinstance(final, Failed):
            await self.add_note(final.error, role="error")
        self.state = "ready"
        info = {"state": "ready", "detail": ""}
        if metrics.get("new_tokens"):
            info.update(tok_s=metrics["decode_tok_s"], ttft_s=metrics["ttft_s"],
                        context_used=metrics["prompt_tokens"] + metrics["new_tokens"])
        self.status.update_info(**info)
        self.refresh_memory()

    async def add_note(self, text: str, role: str = "note") -> None:
        await self.chat.add(MessageView(role, text))

    # -- actions --------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self._turn is not None:
            self._turn.stop()

    async def action_new_chat(self) -> None:
        self.action_stop()
        self._turn_id += 1  # ignore events of a reply still winding down
        self._turn, self._reply = None, None
        if self._ticker is not None:
            self._ticker.stop()
        self.messages.clear()
        self.pending_prompts.clear()
        await self.chat.clear()
        if self.state == "generating":
            self.state = "ready"
            self.status.update_info(state="ready")
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
        old = self.messages.pop()
        if old.view is not None:
            await old.view.remove()
        await self.generate_reply()

    async def action_continue_reply(self) -> None:
        if self._busy():
            return
        if not self.messages or self.messages[-1].role != "assistant" or self.messages[-1].status == "failed":
            self.notify("There is no reply to continue.", severity="warning")
            return
        await self.generate_reply(continue_reply=True)

    async def action_edit_last(self) -> None:
        if self._busy():
            return
        index = next((i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i].role == "user"), None)
        if index is None:
            self.notify("There is no message to edit.", severity="warning")
            return
        text = self.messages[index].content
        for message in self.messages[index:]:
            if message.view is not None:
                await message.view.remove()
        del self.messages[index:]
        self.prompt_input.load_text(text)
        self.prompt_input.move_cursor(self.prompt_input.document.end)
        self.prompt_input.focus()
        self.notify("Edit the message and press Enter to send it again.")

    def action_copy_last(self) -> None:
        reply = next((m for m in reversed(self.messages) if m.role == "assistant" and m.content), None)
        if reply is None:
            self.notify("There is no reply to copy.", severity="warning")
            return
        self.copy_to_clipboard(reply.content)
        self.notify(f"Copied the last reply ({len(reply.content)} characters).")

    def action_toggle_sidebar(self) -> None:
        self.sidebar.display = not self.sidebar.display

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, str]]:
        rows = [(self.get_key_display(b), b.description) for b in self.active_bindings_list()]
        rows.append(("ctrl+p", "Command palette"))
        return rows

    def active_bindings_list(self) -> list[Binding]:
        keymap = getattr(self, "_keymap", {}) or {}
        bindings = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            key = keymap.get(binding.id, binding.key) if binding.id else binding.key
            bindings.append(binding if key == binding.key else Binding(key, binding.action, binding.description, id=binding.id))
        return bindings

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in ("quit",):
                continue
            yield SystemCommand(binding.description, f"{binding.description} ({binding.key})",
                                lambda a=binding.action: self.run_action(a))
        for name in self.sidebar.preset_names():
            yield SystemCommand(f"Preset: {name}", f"Use the {name} generation preset",
                                lambda n=name: self.sidebar.apply_preset(n))
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
        self.sidebar.show_generation(self.generation)
        return None

    def set_system_prompt(self, text: str) -> None:
        self.system_prompt = text
        self.sidebar.show_system_prompt(text)

    def apply_load_settings(self, settings: LoadSettings) -> None:
        if self.state == "generating":
            self.notify("Stop the reply before reloading the model.", severity="warning")
            return
        self.model_info = None
        self.start_load(settings)

    def save_user_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        try:
            path = save_presets(presets)
        except ConfigError as exc:
            self.notify(str(exc), title="Could not save the preset", severity="error")
            return
        self.notify(f"Preset saved in {path}")

    def save_defaults(self) -> None:
        from tui.store.config import save_defaults

        try:
            path = save_defaults(self.load_settings, self.generation, self.system_prompt, self.theme)
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
        return "\n".join(lines)

    async def on_unmount(self) -> None:
        self.action_stop()
        self.engine.shutdown()


def run_app(options: Any, config: Config | None = None) -> int:
    app = ChatApp(options, config)
    app.run()
    return 0
