"""A reply being generated, as the consumer sees it: a queue of plain events and a stop flag.
The in-process engine and the remote backend both hand one out."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

from tui.engine.events import Event, Failed, Finished


class Turn:
    """One reply being generated. Iterate it for events; `stop()` ends it within one token."""

    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._stop = threading.Event()
        self.final: Finished | Failed | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _emit(self, event: Event) -> None:
        self._events.put(event)

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
