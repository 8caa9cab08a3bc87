"""UI cost per token while a 3,000-token reply streams into the real app (headless).

A stand-in engine emits a Markdown reply (paragraphs, lists, code blocks) at a steady rate;
the app's main thread CPU time (time.thread_time, which covers message handling, Markdown
parsing, layout and rendering) is sampled as tokens arrive. Prints the cost per token over the
first and the last 300 tokens and their ratio (goal <= 1.2). Figures only; no pass/fail.

It also counts what the machine's speed does not change: the widgets Textual lays out again per
batch of tokens drawn (children arranged on arrangement-cache misses, each batch being one append
and one layout), in all and inside the reply, first 300 against last 300 tokens. A ratio above 1
there is work that grows with the reply. (Per token it would follow the batch size, which grows
when the machine is busy.)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.cli.main import parse_args  # noqa: E402
from tui.engine import Finished, GenerationSettings, LoadSettings, ModelInfo, TokenDelta, Turn, TurnMetrics  # noqa: E402
from tui.engine.backend import Capabilities, Progress  # noqa: E402
from tui.engine.compiled import CompileJob  # noqa: E402
from tui.engine.jobs import done, failed  # noqa: E402
from tui.engine.prompt import Message  # noqa: E402
from tui.store import AutoSaver, Library  # noqa: E402
from tui.store.config import Config  # noqa: E402
from tui.ui.app import ChatApp  # noqa: E402
from tui.ui.bridge import ReplyDelta  # noqa: E402
from tui.ui.screens.chat import ChatScreen  # noqa: E402

TOKENS = 3000
RATE = 150.0  # tokens per second: faster than this CPU decodes, so the UI is under pressure
WINDOW = 300


def markdown_tokens(count: int) -> list[str]:
    blocks = [
        "Here is a paragraph that explains the next step in some detail, with **bold** and `code`.",
        "- a list item with a few words\n- another item that is a little longer than the first",
        "```python\ndef step(value):\n    return value * 2 + 1\n```",
        "1. first point\n2. second point with *emphasis*",
    ]
    words: list[str] = []
    index = 0
    while len(words) < count:
        block = blocks[index % len(blocks)]
        pieces = block.replace("\n", " \n ").split(" ")
        words += [p if p == "\n" else p + " " for p in pieces] + ["\n\n"]
        index += 1
    return words[:count]


class StreamingEngine:
    """A Backend that streams Markdown at a fixed rate (no model): what the UI alone costs."""

    info = ModelInfo("bench", "bench", "cpu", "float32", "none", "sdpa", 32768, 1, 1, True, 0.0)
    load_settings: LoadSettings | None = None
    compile: CompileJob | None = None  # no background torch.compile
    capabilities = Capabilities()

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        self.load_settings = settings
        return done(self.info)

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        return done(0)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        return done(0)

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        return done(None)

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        return failed(NotImplementedError("no token ids here"))

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        turn = Turn()

        def play() -> None:
            tokens = markdown_tokens(TOKENS)
            start = time.perf_counter()
            for index, token in enumerate(tokens, start=1):
                delay = start + index / RATE - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                turn.emit(TokenDelta(token, index))
            metrics = TurnMetrics(new_tokens=TOKENS, decode_tok_s=RATE)
            turn.emit(Finished("".join(tokens), "length", metrics))

        threading.Thread(target=play, daemon=True).start()
        return turn

    def close(self) -> None:
        pass


class MeasuredScreen(ChatScreen):
    samples: list[tuple[int, float]] = []
    tokens = 0
    arranged: dict[tuple[str, str], int] = {}  # (window, "all" or a widget class) → children laid out

    def on_reply_delta(self, message: ReplyDelta) -> None:  # ChatScreen's own handler runs too (MRO)
        self.samples.append((message.tokens, time.thread_time()))
        MeasuredScreen.tokens = message.tokens


def count_arranged() -> None:
    """Count the children Textual lays out on each arrangement-cache miss, per window."""
    import textual.widget

    arrange = textual.widget.arrange

    def counted(widget: Any, children: Any, *args: Any, **kwargs: Any) -> Any:
        tokens = MeasuredScreen.tokens
        window = "first" if 0 < tokens <= WINDOW else "last" if tokens >= TOKENS - WINDOW else None
        if window:
            for key in ("all", type(widget).__name__):
                MeasuredScreen.arranged[window, key] = MeasuredScreen.arranged.get((window, key), 0) + len(children)
        return arrange(widget, children, *args, **kwargs)

    textual.widget.arrange = counted  # type: ignore[attr-defined]


class MeasuredApp(ChatApp):
    def make_chat_screen(self, session) -> ChatScreen:
        return MeasuredScreen(session, self.engine, self.config, self.keymap, self.activity, self.collector)


def cost_per_token(samples: list[tuple[int, float]], lo: int, hi: int) -> float:
    window = [(n, t) for n, t in samples if lo <= n <= hi]
    (n0, t0), (n1, t1) = window[0], window[-1]
    return (t1 - t0) / max(n1 - n0, 1)


async def main() -> None:
    count_arranged()
    with tempfile.TemporaryDirectory() as tmp:
        app = MeasuredApp(
            parse_args([]),
            Config(path=Path(tmp) / "config.toml"),
            engine=StreamingEngine(),
            saver=AutoSaver(Library(Path(tmp) / "library.sqlite3")),
        )
        async with app.run_test(size=(120, 40)) as pilot:
            while app.chat_screen.state != "ready":
                await pilot.pause(0.05)
            app.chat_screen.prompt_input.load_text("Write a long answer.")
            started = time.perf_counter()
            await pilot.press("enter")
            # Plain sleeps, not pilot.pause: a pause sends a callback to every widget on the screen
            # and forces a screen update, 20 times a second, and the main thread's time would count
            # the harness's polling, which grows with the widgets a long reply keeps on screen.
            while not (
                app.chat_screen.state == "ready"
                and app.chat_screen.messages
                and app.chat_screen.messages[-1].role == "assistant"
            ):
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
    samples = MeasuredScreen.samples
    first = cost_per_token(samples, 1, WINDOW)
    last = cost_per_token(samples, TOKENS - WINDOW, TOKENS)
    print(
        f"ui-render tokens={TOKENS} rate={RATE:.0f}/s batches={len(samples)} first300_ms_per_token={first * 1000:.2f} "
        f"last300_ms_per_token={last * 1000:.2f} ratio={last / first:.2f} (goal <= 1.2) "
        f"wall_s={elapsed:.1f}",
        flush=True,
    )
    # Where the cost grows: per window of the reply. Flat after the first window means a long reply's
    # end costs what its middle does, and the first window is cheaper because the screen is not full.
    windows = [
        f"{lo}-{lo + WINDOW}:{cost_per_token(samples, max(lo, 1), lo + WINDOW) * 1000:.2f}"
        for lo in range(0, TOKENS, WINDOW)
    ]
    middle = cost_per_token(samples, WINDOW, 2 * WINDOW)
    print(f"ui-render ms_per_token by window: {' '.join(windows)} last/second_window={last / middle:.2f}", flush=True)
    arranged = MeasuredScreen.arranged
    batches = {
        "first": sum(1 for n, _ in samples if 0 < n <= WINDOW),
        "last": sum(1 for n, _ in samples if n >= TOKENS - WINDOW),
    }
    for key in ("all", "MessageView", "MessageMarkdown"):
        first_n = arranged.get(("first", key), 0) / max(batches["first"], 1)
        last_n = arranged.get(("last", key), 0) / max(batches["last"], 1)
        print(
            f"ui-render laid-out children per batch ({key}): first300={first_n:.1f} last300={last_n:.1f} "
            f"ratio={last_n / first_n if first_n else float('nan'):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
