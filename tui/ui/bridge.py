"""The one adapter between the engine's plain Python (futures, callbacks, event queues) and
Textual: model loads, background compiles and streamed replies reach the UI here as messages,
and a backend's small answers (`answer`) as awaitables.

Replies: a Textual thread worker reads a Turn's queue (it never touches torch), batches every
delta that arrived since the last read into one message, and posts it (`post_message` is
thread-safe). Posts are spaced at least a frame apart, so the UI does at most ~30 updates a
second (20 here) however fast tokens come (at CPU decode speeds every token still shows at once).

Each batch carries a `shown` event that the UI sets once the batch is on screen. The next batch
waits for it, then rests as long as that one took: when a frame gets expensive (a long reply is
hundreds of Markdown widgets to lay out) updates slow down instead of the event loop filling up,
so the UI stays idle at least half the time (three quarters while the user types or scrolls)
and a keypress never queues behind a backlog.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

from textual.message import Message
from textual.message_pump import MessagePump

from tui.engine import (
    Failed,
    Finished,
    LoadError,
    LoadSettings,
    ModelInfo,
    Started,
    TokenChoice,
    TokenDelta,
    TokenProbs,
    Turn,
)
from tui.engine.backend import Backend
from tui.engine.compiled import CompileJob
from tui.engine.sources import one_line

log = logging.getLogger(__name__)

T = TypeVar("T")


async def answer(future: Future[T]) -> T:
    """A backend's answer awaited on Textual's event loop (which never blocks on it)."""
    return await asyncio.wrap_future(future)


# -- model loads --------------------------------------------------------------------------------


@dataclass
class LoadProgress(Message):
    done: int
    total: int
    label: str


@dataclass
class LoadDone(Message):
    """The load ended: `info` is the model in use now (the new one, the previous one kept after
    a failure, or None), `error` says why the new one failed."""

    info: ModelInfo | None
    error: str | None


@dataclass
class CompileDone(Message):
    """The engine's torch.compile (`--compile`) has finished, well or not."""

    job: CompileJob


def start_load(target: MessagePump, engine: Backend, settings: LoadSettings) -> None:
    """Load on the engine's thread; progress and the end arrive at `target` as messages."""

    def progress(done: int, total: int, label: str) -> None:
        target.post_message(LoadProgress(done, total, label))

    future = engine.load(settings, progress)

    def ended(f: Future[ModelInfo]) -> None:
        try:
            target.post_message(LoadDone(f.result(), None))
        except LoadError as exc:
            target.post_message(LoadDone(engine.info, str(exc)))
        except Exception as exc:  # never a traceback: a bug still ends as a clear message
            target.post_message(LoadDone(engine.info, f"{type(exc).__name__}: {one_line(exc)}"))

    future.add_done_callback(ended)


def watch_compile(target: MessagePump, job: CompileJob) -> None:
    job.done.add_done_callback(lambda _future: target.post_message(CompileDone(job)))


@dataclass
class ContextCounted(Message):
    """How many tokens the open conversation takes (`request` tells stale answers apart)."""

    tokens: int
    request: int


def count_context(target: MessagePump, engine: Backend, messages: list[dict[str, str]], request: int) -> None:
    def counted(future: Future[int]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:  # the status bar keeps its last figure
            log.warning("counting the context failed: %s", one_line(error))
            return
        target.post_message(ContextCounted(future.result(), request))

    engine.count_tokens(messages).add_done_callback(counted)


# -- replies ------------------------------------------------------------------------------------


@dataclass
class ReplyDelta(Message):
    """New reply text since the last batch."""

    turn_id: int
    text: str
    tokens: int  # reply tokens so far
    first_token_at: float  # perf_counter of the first delta (for live tok/s)
    shown: threading.Event = field(default_factory=threading.Event)  # set by the UI once on screen
    choices: tuple[TokenChoice, ...] = ()  # token probabilities since the last batch (when recorded)


@dataclass
class ReplyStarted(Message):
    """The model started reading the prompt: how many tokens it holds."""

    turn_id: int
    prompt_tokens: int
    streams: bool = True  # False: the reply comes whole at the end (beam search)


@dataclass
class ReplyEnded(Message):
    turn_id: int
    final: Finished | Failed
    choices: tuple[TokenChoice, ...] = ()  # token probabilities not sent with a delta yet


# 20 frames a second reads as smooth text; at 30 the chat pane's layouts took ~10% of the
# decode speed on 2 cores (bench_engine, app bf16: 26.4 -> 29.3 tok/s).
FRAME_S = 1 / 20
MAX_WAIT_S = 0.5  # never hold a batch back longer than this for the previous one to show


def pump_turn(
    target: MessagePump,
    turn: Turn,
    turn_id: int,
    user_is_active: Callable[[], bool] = lambda: False,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Forward a turn's events to `target` until it ends, or until `cancelled()` (run in a thread
    worker). While `user_is_active()` (typing, scrolling), batches rest twice as long: a
    keypress that lands in a frame waits for it, so the UI is left idle three quarters of the
    time instead of half."""
    first_at: float | None = None
    last_post, spacing = 0.0, FRAME_S
    previous: ReplyDelta | None = None
    choices: list[TokenChoice] = []
    for event in turn.events(give_up=cancelled):
        final_event = isinstance(event, (Finished, Failed))
        if previous is not None and not final_event:
            deadline = last_post + MAX_WAIT_S
            while not previous.shown.wait(0.02) and time.perf_counter() < deadline:
                if turn.stop_requested or turn.end_is_waiting():
                    break  # the reply is over: its end must not wait for a frame
            took = time.perf_counter() - last_post  # post to on screen: what a frame costs now
            rest = 4 * took if user_is_active() else 2 * took
            spacing = max(FRAME_S, min(rest, 2 * MAX_WAIT_S))
        wait = last_post + spacing - time.perf_counter()
        if wait > 0 and not final_event and not turn.end_is_waiting():
            time.sleep(wait)  # let more tokens gather while the UI is idle
        last_post = time.perf_counter()
        batch = [event] + turn.drain()
        for started in (e for e in batch if isinstance(e, Started)):
            target.post_message(ReplyStarted(turn_id, started.prompt_tokens, started.streams))
        choices.extend(c for e in batch if isinstance(e, TokenProbs) for c in e.choices)
        deltas = [e for e in batch if isinstance(e, TokenDelta)]
        if deltas:
            if first_at is None:
                first_at = time.perf_counter()
            previous = ReplyDelta(
                turn_id, "".join(e.text for e in deltas), deltas[-1].tokens, first_at, choices=tuple(choices)
            )
            choices = []
            target.post_message(previous)
        final = next((e for e in batch if isinstance(e, (Finished, Failed))), None)
        if final is not None:
            target.post_message(ReplyEnded(turn_id, final, tuple(choices)))
            return
