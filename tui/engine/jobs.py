"""A backend's one work thread, seen from its callers: submit a job, or, once the backend is
closed, get a future that is already done. Every backend method that returns a Future or a Turn
goes through here, so "the backend was closed" is answered the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from tui.engine.events import Failed, Finished
from tui.engine.metrics import TurnMetrics
from tui.engine.turn import Turn

T = TypeVar("T")


def done(value: T) -> Future[T]:
    """A future that already holds `value`."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


def failed(error: BaseException) -> Future[Any]:
    """A future that already holds `error`."""
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


def submit(executor: Executor, job: Callable[..., T], *args: Any, when_closed: T | BaseException) -> Future[T]:
    """`job(*args)` on the executor's thread; once the executor is shut down, a finished future
    holding `when_closed` (a value, or an exception to raise)."""
    try:
        return executor.submit(job, *args)
    except RuntimeError:  # shut down
        return failed(when_closed) if isinstance(when_closed, BaseException) else done(when_closed)


def start_turn(executor: Executor, job: Callable[..., None], *args: Any, closed: str) -> Turn:
    """A Turn whose events `job(turn, *args)` writes on the executor's thread. The turn always ends:
    with Failed(`closed`) when the executor is shut down, with a stopped Finished when the job is
    cancelled before it starts (a shutdown cancels queued jobs)."""
    turn = Turn()
    try:
        future = executor.submit(job, turn, *args)
    except RuntimeError:
        turn.emit(Failed(closed, ""))
        return turn

    def ended(f: Future[None]) -> None:
        if f.cancelled():
            turn.emit(Finished("", "stopped", TurnMetrics()))

    future.add_done_callback(ended)
    return turn
