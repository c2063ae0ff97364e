"""Whether the model runs on a camera's newest frame: where something moves, and only where it must.

Frigate's idea, with what detectd promises kept: a still scene costs capture
and motion only, yet people are never lost. A camera's frame goes to the
model when

* it has motion, or a frame of the camera since the last one looked at had
  motion (``MOTION``): the newest frame is the one looked at, and a person
  who steps in and stands still moves in one or two frames only, which the
  ring may have dropped while the model was busy;
* the last model run on the camera found a person and it was at least
  ``detect.stationary_interval_s`` ago (``TRACKING``): a person standing
  still is re-checked, so they stay followed and their event goes on; a
  person found in fewer than ``events.min_frames`` runs in a row is looked
  at again at once, so that their event starts without waiting for
  intervals (someone who steps in and stands still);
* the model has not run on the camera for ``detect.idle_interval_s``
  (``KEEPALIVE``), so that the state heals whatever happened;
* motion is not computed for the camera (``UNGATED``: gating is off).

Otherwise the frame is ``IDLE``: no model call; once every ``1 /
detect.idle_fps`` seconds such a frame still goes downstream, with the last
model run's detections, marked, so that a viewer stays live. Time is the
frames' capture time.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from detectord.daemon.config import DetectConfig
from detectord.daemon.frame_record import FrameMotion
from detectord.detection import PERSON, Detections


class Reason(enum.IntEnum):
    """Why a frame went downstream; the result record carries it, the detections payload names it."""

    IDLE = 0
    """The model did not run: nothing moved; the detections are the last run's."""
    MOTION = 1
    TRACKING = 2
    KEEPALIVE = 3
    UNGATED = 4

    @property
    def model_ran(self) -> bool:
        return self is not Reason.IDLE

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass
class Gate:
    """One camera's gating state (in the inference process)."""

    detect: DetectConfig
    person_threshold: float
    """A person at least this confident in the last run makes the camera re-checked (``TRACKING``)."""
    confirm_runs: int = 1
    """Runs in a row that must find a person before the re-checks slow to ``stationary_interval_s``."""
    last_run: float = -math.inf
    """Capture time of the last frame the model ran on."""
    last_sent: float = -math.inf
    """Capture time of the last frame sent downstream, the model's or idle."""
    streak: int = 0
    """Model runs in a row, up to the last, that found a person."""
    motion_seq: int = 0
    """The camera's frames with motion up to the last frame looked at (``FrameMotion.seq``)."""

    def reason(self, motion: FrameMotion, now: float) -> Reason:
        """Why the model should run on a frame taken at ``now`` with ``motion``; ``IDLE`` when it should
        not."""
        if not motion.computed:
            return Reason.UNGATED
        moved_since = motion.seq != self.motion_seq  # != rather than >: a restarted capture counts from 0
        self.motion_seq = motion.seq
        if motion.moved or moved_since:
            return Reason.MOTION
        since = now - self.last_run
        if self.streak and (self.streak < self.confirm_runs or since >= self.detect.stationary_interval_s):
            return Reason.TRACKING
        if since >= self.detect.idle_interval_s:
            return Reason.KEEPALIVE
        return Reason.IDLE

    def idle_frame_due(self, now: float) -> bool:
        """Whether an idle frame taken at ``now`` goes downstream (the viewer's ``detect.idle_fps``)."""
        return now - self.last_sent >= 1.0 / self.detect.idle_fps

    def ran(self, now: float, detections: Detections, motion_seq: int) -> None:
        """The model ran on the frame taken at ``now``, whose ``FrameMotion.seq`` is ``motion_seq`` (a
        fresher frame than the one looked at, maybe), and found ``detections``."""
        self.last_run = self.last_sent = now
        self.motion_seq = motion_seq
        persons = (detections.labels == PERSON) & (detections.scores >= self.person_threshold)
        self.streak = self.streak + 1 if persons.any() else 0

    def sent(self, now: float) -> None:
        self.last_sent = now
