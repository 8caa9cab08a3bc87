"""Loading the model from the chat screen: progress, the outcome, reloads from the sidebar,
`--compile`'s status. A mixin of ChatScreen (screens/chat.py); the engine's futures reach it as
messages through `tui.bridge`."""

from __future__ import annotations

from tui.bridge import CompileDone, LoadDone, LoadProgress, start_load, watch_compile
from tui.engine import LoadSettings
from tui.engine.metrics import cuda_memory, rss_bytes
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.widgets.settings_panel import SettingsPanel
from tui.widgets.status_bar import AppState

class ModelLoading:
    """Part of ChatScreen, which provides what these methods use (session, engine, state, views,
    the widgets)."""

    def load_model(self, settings: LoadSettings) -> None:
        self.state = AppState.LOADING
        self.saved_load = None
        self.collector.thaw()
        self.status.update_info(detail=f"loading {settings.model or DEFAULT_MODEL_NAME}", tok_s=None)
        self.status.show_progress(0, 100)
        start_load(self, self.engine, settings)

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.state is AppState.LOADING:
            self.status.show_progress(message.done, message.total)
            self.status.update_info(detail=message.label)

    async def on_load_done(self, message: LoadDone) -> None:
        self.status.hide_progress()
        info = self.model_info = message.info
        if info is not None:
            self.load_settings = self.engine.load_settings or self.load_settings
            self.session.model_loaded(info.name, self.load_settings)
            self.settings_panel.show_model(info, self.load_settings)
        if message.error:
            self.notify(message.error, title="Model load failed", severity="error", timeout=15)
            await self.add_note(f"Model load failed: {message.error}", role="error")
        if info is None:
            self.state = AppState.ERROR
            self.status.update_info(detail="no model loaded (fix it in the sidebar, then Apply)", model="")
            return
        self.collector.freeze_long_lived()
        for warning in info.warnings:
            self.notify(warning, severity="warning", timeout=10)
        self.state = AppState.READY
        self.status.update_info(detail="", model=info.name, device=info.device, dtype=info.dtype,
                                quantization=info.quantization, context_size=info.context_size)
        self.refresh_memory()
        self.show_chat_figures()
        job = self.engine.compile
        self.status.update_info(compile="compiling (torch.compile; replies wait for it)" if job else "")
        if job is not None:
            watch_compile(self, job)
        if self.pending_send:
            await self.generate_reply("send")

    def on_compile_done(self, message: CompileDone) -> None:
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
        cuda = cuda_memory()
        self.status.update_info(rss_bytes=rss_bytes(), cuda_allocated=cuda[0] if cuda else None,
                                cuda_reserved=cuda[1] if cuda else None)

    def on_settings_panel_reload_requested(self, message: SettingsPanel.ReloadRequested) -> None:
        self.reload(message.settings)

    def reload(self, settings: LoadSettings) -> None:
        if self.generating():
            return
        self.model_info = None
        self.load_model(settings)
