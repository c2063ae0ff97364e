"""Occupancy with hysteresis: on after a few sightings, off after a quiet while."""

from __future__ import annotations

from collections import deque

from .config import OccupancyConfig


class Occupancy:
    """Feed it, per processed frame, whether a person was seen; it says when the state changes."""

    def __init__(self, config: OccupancyConfig) -> None:
        self.config = config
        self.on = False
        self._recent: deque[bool] = deque(maxlen=config.window)
        self._last_seen = float("-inf")

    def observe(self, seen: bool, now: float) -> bool | None:
        """The new state if it changed with this frame (taken at ``now``, seconds), else None."""
        self._recent.append(seen)
        if seen:
            self._last_seen = now
        if not self.on and sum(self._recent) >= self.config.min_frames:
            self.on = True
            return True
        return self.tick(now)

    def clear(self) -> bool | None:
        """Nobody is watched any more (the daemon stops): ``False`` if it was on, else None."""
        self._recent.clear()
        if self.on:
            self.on = False
            return False
        return None

    def tick(self, now: float) -> bool | None:
        """``False`` if it has just turned off at ``now`` (no frame needed), else None."""
        if self.on and now - self._last_seen >= self.config.off_after_s:
            self.on = False
            self._recent.clear()
            return False
        return None
