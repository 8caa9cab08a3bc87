"""Loading the model from the chat screen: progress, the outcome, reloads from the sidebar,
`--compile`'s status, the memory figures. A part of the chat screen (screens/chat.py); the
engine's futures reach it as messages through `tui.ui.bridge`. Which model is loaded is the
backend's to say (`engine.info`, `engine.load_settings`); the load asked for is the session's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.engine import LoadSettings
from tui.engine.metrics import cuda_memory, rss_bytes
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.ui.bridge import CompileDone, LoadDone, LoadProgress, start_load, watch_compile
from tui.ui.state import AppState

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class ModelLoader:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    @property
    def load_settings(self) -> LoadSettings:
        """The loaded model's settings, or the load asked for while none is loaded."""
        return self.screen.session.loaded_model()[1]

    def load(self, settings: LoadSettings) -> None:
        screen = self.screen
        screen.session.load_settings = settings
        screen.adapters.before_reload()
        screen.state = AppState.LOADING
        screen.saved_load = None
        screen.collector.thaw()
        screen.status.update_info(detail=f"loading {settings.model or DEFAULT_MODEL_NAME}", tok_s=None)
        screen.status.show_progress(0, 100)
        start_load(screen, screen.engine, settings)

    def reload(self, settings: LoadSettings) -> None:
        if not self.screen.replies.generating():
            self.load(settings)

    def progress(self, message: LoadProgress) -> None:
        if self.screen.state is AppState.LOADING:
            self.screen.status.show_progress(message.done, message.total)
            self.screen.status.update_info(detail=message.label)

    async def done(self, message: LoadDone) -> None:
        screen = self.screen
        screen.status.hide_progress()
        info = message.info
        if info is not None:
            screen.settings_panel.show_model(info, self.load_settings)
        if message.error:
            screen.notify(message.error, title="Model load failed", severity="error", timeout=15)
            await screen.transcript.add_note(f"Model load failed: {message.error}", role="error")
        if info is None:
            screen.state = AppState.ERROR
            screen.status.update_info(detail="no model loaded (fix it in the sidebar, then Apply)", model="")
            return
        screen.collector.freeze_long_lived()
        for warning in info.warnings:
            screen.notify(warning, severity="warning", timeout=10)
        screen.state = AppState.READY
        screen.status.update_info(
            detail="",
            model=info.name,
            device=info.device,
            dtype=info.dtype,
            quantization=info.quantization,
            context_size=info.context_size,
        )
        self.refresh_memory()
        screen.transcript.show_figures()
        job = screen.engine.compile
        screen.status.update_info(compile="compiling (torch.compile; replies wait for it)" if job else "")
        if job is not None:
            watch_compile(screen, job)
        await screen.adapters.model_loaded()
        if screen.replies.pending_send:
            await screen.replies.start("send")

    def compile_done(self, message: CompileDone) -> None:
        screen, job = self.screen, message.job
        if job is not screen.engine.compile:
            return  # a later load replaced it
        if job.state == "ready":
            screen.status.update_info(compile="compiled")
            screen.notify("torch.compile is done: replies now use the static cache and the compiled model.")
        else:
            screen.status.update_info(compile="compile failed")
            screen.notify(job.error, severity="warning", timeout=15)

    def refresh_memory(self) -> None:
        cuda = cuda_memory()
        self.screen.status.update_info(
            rss_bytes=rss_bytes(), cuda_allocated=cuda[0] if cuda else None, cuda_reserved=cuda[1] if cuda else None
        )
