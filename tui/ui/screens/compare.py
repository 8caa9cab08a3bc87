"""Compare settings: the last prompt answered again under 2-4 named settings, side by side in
columns, each with its tokens, tok/s and perplexity (from the model's own probability of each
token written); a digit keeps that column's reply as a new version of the last reply.

The replies are written one after another on the engine's torch thread (one model, one thread);
every column uses the same seed, so when sampling the differences come from the settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from textual import work
from textual.app import ComposeResult
from textual.containers import HorizontalScroll, Vertical, VerticalScroll
from textual.widgets import Static

from tui.engine import Failed, Finished, GenerationSettings
from tui.engine.backend import AdapterControl
from tui.engine.settings import format_value
from tui.text import inert
from tui.ui.actions import Keymap, bindings
from tui.ui.bridge import ReplyDelta, ReplyEnded, pump_turn
from tui.ui.screens.modal import Modal

MAX_COLUMNS = 4
MIN_COLUMN_WIDTH = 34  # narrower, settings and stats would wrap mid-word: the columns scroll sideways


@dataclass
class Column:
    name: str
    settings: GenerationSettings
    text: str = ""
    logprobs: list[float] = field(default_factory=list)  # the model's own, of each token written
    final: Finished | Failed | None = None
    adapters: dict[str, float] | None = None  # the LoRA adapters in use for this column ({}: none); None: as they are

    def stats(self) -> str:
        if self.final is None:
            return "writing…" if self.text else "waiting"
        if isinstance(self.final, Failed):
            return f"failed: {self.final.error}"
        metrics = self.final.metrics
        parts = [f"{metrics.new_tokens} tokens", f"{metrics.decode_tok_s:.1f} tok/s"]
        if self.logprobs:
            mean = sum(self.logprobs) / len(self.logprobs)
            parts += [f"mean logprob {mean:.2f}", f"perplexity {math.exp(-mean):.2f}"]
        elif self.settings.prompt_lookup_num_tokens:
            parts.append("no perplexity with prompt lookup")
        return " · ".join(parts)


def describe(column: Column) -> str:
    changed = column.settings.changed()
    text = " ".join(f"{key}={format_value(value)}" for key, value in changed.items()) or "chatui's defaults"
    if column.adapters is not None:
        mix = "+".join(name if weight == 1.0 else f"{name}×{weight:g}" for name, weight in column.adapters.items())
        text = f"adapter {mix or 'none'} · {text}"
    return text


class CompareScreen(Modal["Column | None"]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap): it names the user's keys."""

    BINDINGS = bindings("compare")

    def __init__(self, engine, messages: list[dict[str, str]], columns: list[Column]) -> None:
        super().__init__()
        self.engine = engine
        self.messages = messages
        self.columns = columns[:MAX_COLUMNS]
        self._turn = None
        self.done = False

    def compose_dialog(self) -> ComposeResult:
        with Vertical(id="compare-dialog"):
            yield Static("Compare settings: the last prompt, answered under each", classes="section-title")
            with HorizontalScroll(id="compare-columns"):  # columns too wide for the terminal scroll sideways
                for index, column in enumerate(self.columns):
                    with Vertical(classes="compare-column"):
                        yield Static(f"{index + 1}. {column.name}", classes="section-title", markup=False)
                        yield Static(describe(column), classes="muted", markup=False)
                        with VerticalScroll():
                            yield Static(id=f"compare-text-{index}", markup=False)
                        yield Static(column.stats(), id=f"compare-stats-{index}", classes="muted", markup=False)
            keymap = Keymap.of(self.app)
            keep = keymap.span(f"compare.keep_{n}" for n in range(1, MAX_COLUMNS + 1))
            yield Static(
                f"{keep}: keep that reply (a new version of the last reply) · {keymap.key('compare.close')}: close",
                classes="muted",
                markup=False,
                id="compare-keys",
            )
            yield Static(
                "more columns to the right: ←/→ scroll, ctrl+pgdn/ctrl+pgup a page",
                classes="muted",
                markup=False,
                id="compare-scroll-keys",
            )

    def on_mount(self) -> None:
        self.size_columns()
        self.run_columns()

    def on_resize(self) -> None:
        self.size_columns()

    def size_columns(self) -> None:
        """Columns share the width, each at least MIN_COLUMN_WIDTH (then they scroll sideways)."""
        room = self.size.width - 4  # the dialog's border and padding
        width = max(MIN_COLUMN_WIDTH, room // len(self.columns)) if self.columns else MIN_COLUMN_WIDTH
        for column in self.query(".compare-column"):
            column.styles.width = width
        self.query_one("#compare-scroll-keys").display = width * len(self.columns) > room  # only when they scroll

    @work(thread=True, exclusive=True)
    def run_columns(self) -> None:
        """Each column's reply in turn, read through the bridge (the worker only reads the
        engine's event queue; the column index is the turn id). An adapter column switches the
        adapters first (queued on the same thread, so its reply is written with them); the
        adapters in use before come back at the end."""
        adapters = self.engine.adapters if any(c.adapters is not None for c in self.columns) else None
        before = dict(adapters.state.active) if adapters is not None else {}
        try:
            self._run_columns(adapters)
        finally:
            if adapters is not None:
                adapters.use(before)

    def _run_columns(self, adapters: AdapterControl | None) -> None:
        for index, column in enumerate(self.columns):
            if self.done:
                return
            if adapters is not None and column.adapters is not None:
                adapters.use(column.adapters)
            # The model's probability of each token (for perplexity), except where recording would
            # change how the reply is decoded: prompt lookup checks several tokens a step.
            record = 0 if column.settings.prompt_lookup_num_tokens else 1
            self._turn = turn = self.engine.generate(self.messages, column.settings, record)
            if self.done:  # closed while this reply was being asked for
                turn.stop()
            pump_turn(self, turn, index, cancelled=lambda: self.done)
        self._turn = None

    def on_reply_delta(self, message: ReplyDelta) -> None:
        message.stop()
        column = self.columns[message.turn_id]
        column.text += message.text
        column.logprobs.extend(choice.raw_logprob for choice in message.choices)
        self.show(message.turn_id)
        message.shown.set()

    def on_reply_ended(self, message: ReplyEnded) -> None:
        message.stop()
        column = self.columns[message.turn_id]
        column.logprobs.extend(choice.raw_logprob for choice in message.choices)
        column.final = message.final
        if message.final.text and not column.text:
            column.text = message.final.text  # beam search: the reply comes whole at the end
        self.show(message.turn_id)

    def show(self, index: int) -> None:
        column = self.columns[index]
        self.query_one(f"#compare-text-{index}", Static).update(inert(column.text))
        self.query_one(f"#compare-stats-{index}", Static).update(column.stats())

    def action_keep(self, index: int) -> None:
        if index >= len(self.columns):
            return
        column = self.columns[index]
        if not isinstance(column.final, Finished):
            self.notify("That reply is not finished yet.", severity="warning")
            return
        self.action_close(column)

    def action_close(self, kept: Column | None = None) -> None:
        self.done = True
        if self._turn is not None:
            self._turn.stop()  # the worker ends with it
        self.dismiss(kept)
