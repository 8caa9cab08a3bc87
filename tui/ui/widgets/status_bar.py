"""The status bar: state, model, device/dtype/quantization, live tok/s (and its share of the
memory-bandwidth limit), TTFT, context, memory."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from tui.ui.state import AppState

SEPARATOR = " │ "
STATE_ICONS = {AppState.LOADING: "◌", AppState.READY: "●", AppState.GENERATING: "▶", AppState.ERROR: "✖"}


def mb(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f} MB"


ADAPTER_SHOWN = 24  # characters of the adapter's name the status bar shows


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

    def items(self) -> list[tuple[int, str]]:
        """(rank, text) of each item in the order shown; rank 0 matters most. An item that starts
        with a space belongs to the one before it (the model's load settings after its name)."""
        state = f"{STATE_ICONS[self.state]} {self.state}" + (f": {self.detail}" if self.detail else "")
        items = [(0, state)]
        remote = self.device == "remote"
        if self.model:
            items.append((1, self.model))
            load = "remote" if remote else " · ".join(p for p in (self.device, self.dtype, self.quantization) if p)
            if load:
                items.append((9, f" ({load})"))
        if self.adapter:  # a long name (or mix) cut to its start: the item stays on a narrow bar
            name = self.adapter if len(self.adapter) <= ADAPTER_SHOWN else self.adapter[: ADAPTER_SHOWN - 1] + "…"
            items.append((3, f"LoRA {name}"))
        if self.compile:
            items.append((5, self.compile))
        if self.probs:
            items.append((6, "token probs"))
        if self.tok_s is not None:
            items.append((2, f"{self.tok_s:.1f} tok/s"))
            if self.tok_s_limit:
                # At most 100: a faster decode means the bandwidth was measured under load.
                share = min(100, 100 * self.tok_s / self.tok_s_limit)
                items.append((5, f" · {share:.0f} % of bandwidth limit"))
        if self.ttft_s is not None:
            items.append((7, f"TTFT {self.ttft_s:.2f} s"))
        if self.context_size:
            items.append((3, f"ctx {self.context_used:,}/{self.context_size:,}"))
        elif self.context_used:  # a server that does not say its context size
            items.append((3, f"ctx {self.context_used:,}"))
        if remote:
            items.append((4, "memory: remote"))
        elif self.rss_bytes is not None:
            items.append((4, f"RSS {mb(self.rss_bytes)}"))
        if self.cuda_allocated is not None:
            items.append((8, f"CUDA {mb(self.cuda_allocated)}/{mb(self.cuda_reserved)}"))
        return items

    def render(self, width: int | None = None) -> str:
        """The items that fit in `width` cells (all when None), each whole: the least important
        are left out first; the state alone is shortened at a word when even it does not fit."""
        items = self.items()
        cost = [
            cell_len(text) + (0 if index == 0 or text.startswith(" ") else len(SEPARATOR))
            for index, (_, text) in enumerate(items)
        ]
        kept = set(range(len(items)))
        if width is not None:
            kept, used = set(), 0
            for index in sorted(range(len(items)), key=lambda i: items[i][0]):
                attached = items[index][1].startswith(" ")
                if attached and index - 1 not in kept:
                    continue
                if used + cost[index] > width:
                    break  # the rest matter less: none of them jumps ahead of this one
                kept.add(index)
                used += cost[index]
        line = ""
        for index, (_, text) in enumerate(items):
            if index in kept:
                line += text if index == 0 or text.startswith(" ") else SEPARATOR + text
        if width is not None and not kept:
            line = shortened(items[0][1], width)
        return line


def shortened(text: str, width: int) -> str:
    """`text` cut at the last word that fits in `width` cells with an ellipsis."""
    words = text.split(" ")
    while len(words) > 1 and cell_len(" ".join(words) + "…") > width:
        words.pop()
    return " ".join(words) + "…"


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
            line.update(self.info.render(line.content_size.width or None), layout=False)

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self.update_info)

    def show_progress(self, done: int, total: int) -> None:
        bar = self.query_one("#load-progress", ProgressBar)
        if bar.display != (done < total):
            self.call_after_refresh(self.update_info)  # the line's width changed
        bar.display = done < total
        bar.update(total=total, progress=done)

    def hide_progress(self) -> None:
        self.query_one("#load-progress", ProgressBar).display = False
        self.call_after_refresh(self.update_info)  # the line is wider now
