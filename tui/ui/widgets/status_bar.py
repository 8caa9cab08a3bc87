"""The status bar: state, model, device/dtype/quantization, live tok/s (and its share of the
memory-bandwidth limit), TTFT, context, memory."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from tui.ui.state import AppState

STATE_ICONS = {AppState.LOADING: "◌", AppState.READY: "●", AppState.GENERATING: "▶", AppState.ERROR: "✖"}


def mb(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f} MB"


@dataclass
class StatusInfo:
    state: AppState = AppState.LOADING
    detail: str = ""  # loading label or error text
    model: str = ""
    device: str = ""
    dtype: str = ""
    quantization: str = ""
    compile: str = ""  # `--compile`: compiling / compiled / compile failed
    adapter: str = ""  # the LoRA adapter in use ("none" when adapters are loaded but none is in use)
    tok_s: float | None = None
    tok_s_limit: float | None = None  # the loaded model's decode limit from memory bandwidth
    ttft_s: float | None = None
    context_used: int = 0
    context_size: int = 0
    rss_bytes: int | None = None
    cuda_allocated: int | None = None
    cuda_reserved: int | None = None
    probs: bool = False  # token probabilities are recorded for the next replies

    def render(self) -> str:
        parts = [f"{STATE_ICONS[self.state]} {self.state}"]
        if self.detail:
            parts[0] += f": {self.detail}"
        remote = self.device == "remote"
        if self.model:
            load = "remote" if remote else " · ".join(p for p in (self.device, self.dtype, self.quantization) if p)
            parts.append(f"{self.model} ({load})" if load else self.model)
        if self.adapter:
            parts.append(f"LoRA {self.adapter}")
        if self.compile:
            parts.append(self.compile)
        if self.probs:
            parts.append("token probs")
        if self.tok_s is not None:
            speed = f"{self.tok_s:.1f} tok/s"
            if self.tok_s_limit:
                # At most 100: a faster decode means the bandwidth was measured under load.
                speed += f" · {min(100, 100 * self.tok_s / self.tok_s_limit):.0f} % of bandwidth limit"
            parts.append(speed)
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s:.2f} s")
        if self.context_size:
            parts.append(f"ctx {self.context_used:,}/{self.context_size:,}")
        elif self.context_used:  # a server that does not say its context size
            parts.append(f"ctx {self.context_used:,}")
        if remote:
            parts.append("memory: remote")
        elif self.rss_bytes is not None:
            parts.append(f"RSS {mb(self.rss_bytes)}")
        if self.cuda_allocated is not None:
            parts.append(f"CUDA {mb(self.cuda_allocated)}/{mb(self.cuda_reserved)}")
        return " │ ".join(parts)


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
        &.-error { background: $error 30%; }
        &.-generating #status-text { color: $success; }
        #load-progress { width: 30; height: 1; }
        #load-progress Bar { width: 20; }
        #status-text { width: 1fr; height: 1; padding: 0 1; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.info = StatusInfo()

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, id="load-progress")
        yield Static(self.info.render(), id="status-text", markup=False)

    def update_info(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self.info, key, value)
        self.set_class(self.info.state is AppState.ERROR, "-error")
        self.set_class(self.info.state is AppState.GENERATING, "-generating")
        # a repaint, not a layout: the line's size is fixed, and a layout of the whole screen
        # (every widget, the sidebar's too) four times a second while a reply streams took CPU
        # from the decoder
        # (`query`: during the app's shutdown the line may already be gone while a tick fires)
        for line in self.query("#status-text").results(Static):
            line.update(self.info.render(), layout=False)

    def show_progress(self, done: int, total: int) -> None:
        bar = self.query_one("#load-progress", ProgressBar)
        bar.display = done < total
        bar.update(total=total, progress=done)

    def hide_progress(self) -> None:
        self.query_one("#load-progress", ProgressBar).display = False
