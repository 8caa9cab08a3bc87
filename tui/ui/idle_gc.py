"""When Python's cyclic garbage collector may stop the UI: never mid-reply, only when idle.

A full (generation 2) collection walks every tracked object. With torch, transformers and a
chat of Markdown widgets that is hundreds of thousands of objects: 0.2-0.3 s with the event
loop stopped, and while a long reply streams (Markdown blocks are replaced token after token,
so widgets die by the thousand) it ran every second or so: a keypress waited for it.

So: long-lived objects (imports, the model) are frozen out of the collector's sight after each
model load, and thawed before the next so that the old model can be freed; full collections are
switched off while a reply streams and stay off until the garbage of the reply has been collected,
once the user has been idle for a moment (or after `MAX_DEFER_S` at the latest). Switching them
back on at the end of the reply instead fired one at once (the count of younger collections was
long past the threshold): 0.4-0.7 s stopped just as the reply's end was drawn and the user typed.
Young-generation collections, a few ms each, run as usual.
"""

from __future__ import annotations

import gc
import time

from tui.ui.activity import UserActivity

IDLE_S = 1.5  # no reply streaming and no input for this long: collect
MAX_DEFER_S = 30.0  # never put a full collection off for longer than this
NO_FULL_COLLECTIONS = 10**9  # a generation-2 threshold that is never reached


class IdleCollector:
    def __init__(self, activity: UserActivity | None = None) -> None:
        self.default_thresholds = gc.get_threshold()
        self.pending_since: float | None = None  # a full collection is owed since then
        self.activity = activity or UserActivity()
        self._reply_event_at = time.monotonic()  # a reply started or ended then
        self.streaming = False

    def freeze_long_lived(self) -> None:
        """After a model load: what exists now (modules, the model) lives until the next load.

        The previous model's reference cycles are garbage by now but not yet collected unless a
        full collection happened to run during the load; frozen with the rest they would be kept
        for good. So collect first (one full pass, while the load's end is drawn), then freeze."""
        gc.collect()
        gc.freeze()

    def thaw(self) -> None:
        """Before a (re)load: the model about to be freed must be collectable again (frozen, its
        reference cycles kept it, and its memory, alive for good)."""
        gc.unfreeze()

    def reply_started(self) -> None:
        self.streaming = True
        self._reply_event_at = time.monotonic()
        gen0, gen1, _ = self.default_thresholds
        gc.set_threshold(gen0, gen1, NO_FULL_COLLECTIONS)
        if self.pending_since is None:
            self.pending_since = time.monotonic()

    def reply_ended(self) -> None:
        """Full collections stay off: the one owed runs at the next idle moment (`tick`)."""
        self.streaming = False
        self._reply_event_at = time.monotonic()

    def restore(self) -> None:
        """The interpreter's usual thresholds (the app is closing)."""
        gc.set_threshold(*self.default_thresholds)

    def tick(self) -> bool:
        """Call a few times a second; collects (and returns True) when the time has come."""
        if self.pending_since is None:
            return False
        now = time.monotonic()
        last = max(self.activity.last_at, self._reply_event_at)
        idle = not self.streaming and now - last >= IDLE_S
        if not idle and now - self.pending_since < MAX_DEFER_S:
            return False
        gc.collect()
        self.pending_since = time.monotonic() if self.streaming else None
        if not self.streaming:
            self.restore()
        return True
