"""When a stage that died is started again: exponential backoff, forgiven once the stage has run a while.

A stage that keeps dying (a camera unplugged, a model that cannot load)
must not be restarted in a tight loop, and one that died once after running
for hours must come back at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0
"""A stage that has run this long since its last (re)start starts again from the shortest backoff."""


@dataclass
class Restarts:
    """One stage's restart schedule; the clock is ``time.monotonic()`` (any monotonic seconds in tests)."""

    count: int = 0
    """Restarts so far (in the stats)."""
    backoff_s: float = BACKOFF_MIN_S
    """The wait before the next restart."""
    due: float | None = None
    """When the scheduled restart is due; None when none is."""
    started: float = field(default_factory=time.monotonic)

    def ran_from(self, now: float) -> None:
        """The stage was (re)started at ``now``."""
        self.started = now

    def failed(self, now: float) -> float:
        """The stage died at ``now``: schedule its restart; returns the wait."""
        if now - self.started >= STABLE_S:
            self.backoff_s = BACKOFF_MIN_S
        wait = self.backoff_s
        self.due = now + wait
        self.count += 1
        self.backoff_s = min(2 * self.backoff_s, BACKOFF_MAX_S)
        return wait

    def take_due(self, now: float) -> bool:
        """Whether the scheduled restart is due at ``now`` (then it is no longer scheduled)."""
        if self.due is None or now < self.due:
            return False
        self.due = None
        return True
