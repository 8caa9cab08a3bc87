"""A reply being generated: a queue of plain events and a stop flag. Every backend hands one out.

Two sides: the consumer iterates the events and may `stop()`; the producer (a backend's job)
`emit()`s events, ending with Finished or Failed, and checks `stop_requested` or
`wait_for_stop()`."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from tui.engine.events import Event, Failed, Finished


class Turn:
    """One reply being generated. Iterate it for events; `stop()` ends it within one token."""

    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._stop = threading.Event()
        self.final: Finished | Failed | None = None

    def stop(self) -> None:
        self._stop.set()

    # -- the producer's side ----------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_for_stop(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for `stop()`; True once it was called."""
        return self._stop.wait(timeout_s)

    def emit(self, event: Event) -> None:
        """Queue an event for the consumer; the last one a producer emits is Finished or Failed."""
        self._events.put(event)

    # -- the consumer's side ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        while self.final is None:
            event = self._events.get()
            if isinstance(event, (Finished, Failed)):
                self.final = event
            yield event

    def events(self, give_up: Callable[[], bool], poll_s: float = 0.2) -> Iterator[Event]:
        """Like iterating the turn, but ends early once `give_up()` (asked every `poll_s` while no
        event comes): for a consumer that may be told to stop listening."""
        while self.final is None:
            try:
                event = self._events.get(timeout=poll_s)
            except queue.Empty:
                if give_up():
                    return
                continue
            if isinstance(event, (Finished, Failed)):
                self.final = event
            yield event

    def end_is_waiting(self) -> bool:
        """Whether the final event is already queued (a consumer can stop pacing itself)."""
        with self._events.mutex:
            return any(isinstance(e, (Finished, Failed)) for e in self._events.queue)

    def drain(self) -> list[Event]:
        """Every event waiting now, without blocking (for consumers that batch per frame)."""
        events: list[Event] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if isinstance(event, (Finished, Failed)):
                self.final = event
            events.append(event)

    def wait(self) -> Finished | Failed:
        """Block until the reply ends and return the final event."""
        for _ in self:
            pass
        assert self.final is not None
        return self.final
