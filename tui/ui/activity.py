"""When the user last pressed a key, clicked or scrolled: the one record of it, read from any
thread. The streaming reply draws fresh input first (`InputFirstStream`), the bridge spaces its
updates further apart while the user is active (`pump_turn`), and the garbage collector waits
for a pause (`IdleCollector`); all three read this."""

from __future__ import annotations

import time

ACTIVE_S = 0.5  # input this recent: the user is typing or scrolling


class UserActivity:
    def __init__(self) -> None:
        self.last_at = time.monotonic()

    def mark(self) -> None:
        self.last_at = time.monotonic()

    def seconds_since(self) -> float:
        return time.monotonic() - self.last_at

    def is_active(self) -> bool:
        return self.seconds_since() < ACTIVE_S
