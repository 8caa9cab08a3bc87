"""Loading the model from the chat screen: progress, the outcome, reloads from the sidebar,
`--compile`'s status, the memory figures. A part of the chat screen (screens/chat.py); the
engine's futures reach it as messages through `tui.ui.bridge`. Which model is loaded is the
backend's to say (`engine.info`, `engine.load_settings`); the load asked for is the session's."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.timer import Timer

from tui.engine import LoadSettings, ModelInfo
from tui.engine.estimates import roofline_tok_s
from tui.engine.machine import Bandwidth, cached_bandwidth, memory_bandwidth
from tui.engine.metrics import cuda_memory, rss_bytes
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.ui.bridge import CompileDone, LoadDone, LoadProgress, start_load, watch_compile
from tui.ui.state import AppState

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


def describe_loaded(info: ModelInfo) -> str:
    if info.remote:
        return f"on {info.source}"
    parts = [info.device, info.dtype if info.quantization == "none" else f"{info.dtype} {info.quantization}"]
    if info.parameters:
        parts.append(
            f"{info.parameters / 1e9:.1f}B parameters"
            if info.parameters >= 1e9
            else f"{info.parameters / 1e6:.0f}M parameters"
        )
    if info.context_size:
        parts.append(f"context {info.context_size:,}")
    parts.append(f"loaded in {info.load_seconds:.1f} s")
    return " · ".join(parts)


class ModelLoader:
    clock = staticmethod(time.monotonic)  # pinned in snapshots

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.started: float | None = None  # when the load in flight began
        self.fraction = 0.0  # of the load in flight, done
        self.label = ""
        self._ticker: Timer | None = None

    @property
    def load_settings(self) -> LoadSettings:
        """The loaded model's settings, or the load asked for while none is loaded."""
        return self.screen.session.loaded_model()[1]

    def load(self, settings: LoadSettings) -> None:
        screen = self.screen
        screen.adapters.before_reload(same_model=same_model(screen.session.load_settings, settings))
        screen.session.load_settings = settings
        screen.state = AppState.LOADING
        screen.saved_load = None
        screen.collector.thaw()
        screen.status.update_info(detail=f"loading {settings.model or DEFAULT_MODEL_NAME}", tok_s=None)
        screen.status.show_progress(0, 100)
        self.started, self.fraction, self.label = self.clock(), 0.0, "starting"
        screen.welcome.show(model=settings.model or DEFAULT_MODEL_NAME, detail="starting", elapsed_s=None, left_s=None)
        if self._ticker is None:
            self._ticker = screen.set_interval(1, self.tick)
        start_load(screen, screen.engine, settings)

    def reload(self, settings: LoadSettings) -> None:
        if not self.screen.replies.generating():
            self.load(settings)

    def progress(self, message: LoadProgress) -> None:
        if self.screen.state is AppState.LOADING:
            self.screen.status.show_progress(message.done, message.total)
            self.screen.status.update_info(detail=message.label)
            self.fraction = message.done / message.total if message.total else 0.0
            # the engine's last step says "ready" a moment before the load is done: not "loading: ready"
            self.label = "finishing" if message.total and message.done >= message.total else message.label
            self.tick()

    def tick(self) -> None:
        """The welcome panel's clock while a load runs: the time so far, and the time left as the
        share done so far says (from 5 % done on)."""
        if self.screen.state is not AppState.LOADING or self.started is None:
            return
        elapsed = self.clock() - self.started
        left = elapsed * (1 - self.fraction) / self.fraction if 0.05 <= self.fraction < 1 else None
        self.screen.welcome.show(detail=self.label, elapsed_s=elapsed, left_s=left)

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
            pick = screen.keymap.key("chat.models")
            screen.welcome.show(detail=f"{message.error} ({pick} picks another model; the sidebar sets its options)")
            return
        screen.collector.freeze_long_lived()
        for warning in info.warnings:
            screen.notify(warning, severity="warning", timeout=10)
        screen.state = AppState.READY
        screen.welcome.show(model=info.name, detail=describe_loaded(info))
        screen.status.update_info(
            detail="",
            model=info.name,
            device=info.device,
            dtype=info.dtype,
            quantization=info.quantization,
            context_size=info.context_size,
        )
        self.refresh_memory()
        self.show_limit(info)
        screen.transcript.show_figures()
        job = screen.engine.compile
        screen.status.update_info(compile="compiling (torch.compile; replies wait for it)" if job else "")
        if job is not None:
            watch_compile(screen, job)
        await screen.adapters.model_loaded()
        screen.attachments.tell_if_images_unseen()
        if screen.replies.pending_send:
            await screen.replies.start("send")

    def show_limit(self, info: ModelInfo) -> None:
        """The loaded model's decode limit from this machine's bandwidth, for the status bar's
        "% of bandwidth limit": the cached figure, or the CPU's measured now on a thread (about a
        second, numpy, once); none for a server's model or a GPU never measured (`--doctor`)."""
        status = self.screen.status
        status.update_info(tok_s_limit=None)
        if info.remote or not info.bytes_per_token:
            return
        device = "cuda" if info.device == "cuda" else "cpu"
        bandwidth = cached_bandwidth(device)
        if bandwidth is not None:
            status.update_info(tok_s_limit=roofline_tok_s(info.bytes_per_token, bandwidth.bytes_per_s))
        elif device == "cpu":
            self.screen.run_worker(lambda: self._measured(info), thread=True, group="bandwidth", exclusive=True)

    def _measured(self, info: ModelInfo) -> None:
        bandwidth: Bandwidth = memory_bandwidth("cpu")
        limit = roofline_tok_s(info.bytes_per_token, bandwidth.bytes_per_s)
        self.screen.app.call_from_thread(self._set_limit, info, limit)

    def _set_limit(self, info: ModelInfo, limit: float) -> None:
        if self.screen.engine.info is info:  # the model it was measured for is still loaded
            self.screen.status.update_info(tok_s_limit=limit)

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


def same_model(before: LoadSettings, after: LoadSettings) -> bool:
    """Whether a reload keeps the model (another dtype, say) rather than opening another one."""
    return (before.model or None, before.endpoint or None) == (after.model or None, after.endpoint or None)
