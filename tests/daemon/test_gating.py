"""When the model runs on a camera's frame: the gate, fed frames of known motion at known times."""

from __future__ import annotations

import numpy as np

from detectord.daemon.config import DetectConfig
from detectord.daemon.frame_record import FrameMotion
from detectord.daemon.gating import Gate, Reason
from detectord.detection import PERSON, Detections

FPS = 10.0
NOBODY = Detections.empty()
SOMEONE = Detections(np.array([[10, 10, 50, 120]], np.float32), np.array([0.9], np.float32), np.array([PERSON]))


MOVED = np.array([[0, 0, 40, 40]], np.float32)
STILL = np.zeros((0, 4), np.float32)


def play(gate: Gate, seconds: float, moved: bool, found: Detections, start: float = 0.0) -> list[tuple[float, Reason]]:
    """Frames every 1/FPS s for ``seconds``: which ones went downstream, and why."""
    out = []
    for i in range(int(seconds * FPS)):
        now = start + i / FPS
        motion = FrameMotion(True, MOVED if moved else STILL, gate.motion_seq + moved)
        reason = gate.reason(motion, now)
        if reason.model_ran:
            gate.ran(now, found, motion.seq)
            out.append((now, reason))
        elif gate.idle_frame_due(now):
            gate.sent(now)
            out.append((now, reason))
    return out


def test_a_still_empty_scene_runs_the_model_only_as_a_keep_alive_and_stays_live() -> None:
    gate = Gate(DetectConfig(idle_interval_s=10.0, idle_fps=1.0), person_threshold=0.5)
    sent = play(gate, 35.0, moved=False, found=NOBODY)
    runs = [now for now, reason in sent if reason.model_ran]
    assert [reason for _, reason in sent if reason.model_ran] == [Reason.KEEPALIVE] * 4
    assert np.allclose(runs, [0.0, 10.0, 20.0, 30.0])
    idle = [now for now, reason in sent if reason is Reason.IDLE]
    assert len(idle) >= 30 and max(np.diff([now for now, _ in sent])) <= 1.0 + 1e-9, "a frame a second at least"


def test_every_frame_that_moved_goes_to_the_model() -> None:
    gate = Gate(DetectConfig(), person_threshold=0.5)
    sent = play(gate, 3.0, moved=True, found=NOBODY)
    assert [reason for _, reason in sent] == [Reason.MOTION] * 30


def test_a_person_standing_still_is_checked_at_the_interval_so_their_event_goes_on() -> None:
    gate = Gate(DetectConfig(stationary_interval_s=2.0, idle_interval_s=10.0), person_threshold=0.5)
    play(gate, 1.0, moved=True, found=SOMEONE)  # walks in
    still = play(gate, 9.0, moved=False, found=SOMEONE, start=1.0)  # and stands there
    checks = [now for now, reason in still if reason is Reason.TRACKING]
    assert np.allclose(np.diff(checks), 2.0) and len(checks) == 4, checks
    gaps = np.diff([1.0 - 1 / FPS, *checks])
    assert max(gaps) <= 2.0 + 1e-9, "never unseen longer than the interval (events end after 5 s)"


def test_once_the_person_is_gone_the_checks_stop() -> None:
    gate = Gate(DetectConfig(stationary_interval_s=2.0, idle_interval_s=10.0), person_threshold=0.5)
    play(gate, 1.0, moved=True, found=SOMEONE)
    left = play(gate, 9.0, moved=False, found=NOBODY, start=1.0)
    assert [reason for _, reason in left if reason.model_ran] == [Reason.TRACKING], "one look, nobody: idle"


def test_a_person_below_the_threshold_is_not_followed() -> None:
    gate = Gate(DetectConfig(stationary_interval_s=2.0, idle_interval_s=10.0), person_threshold=0.95)
    play(gate, 1.0, moved=True, found=SOMEONE)
    assert not [r for _, r in play(gate, 5.0, moved=False, found=SOMEONE, start=1.0) if r.model_ran]


def test_without_motion_detection_every_frame_is_ungated() -> None:
    gate = Gate(DetectConfig(), person_threshold=0.5)
    assert gate.reason(FrameMotion(False, STILL), now=0.0) is Reason.UNGATED


def test_motion_in_frames_never_looked_at_still_runs_the_model() -> None:
    """Someone steps in while the model is busy and stands still: the frames that moved were dropped, and the
    newest frame, still, says so by its count of frames with motion."""
    gate = Gate(DetectConfig(idle_interval_s=10.0), person_threshold=0.5)
    assert gate.reason(FrameMotion(True, STILL, 0), now=0.0) is Reason.KEEPALIVE
    gate.ran(0.0, NOBODY, 0)
    assert gate.reason(FrameMotion(True, STILL, 0), now=1.0) is Reason.IDLE
    assert gate.reason(FrameMotion(True, STILL, 2), now=2.0) is Reason.MOTION, "two frames moved, unseen"
    gate.ran(2.0, SOMEONE, 2)
    assert gate.reason(FrameMotion(True, STILL, 2), now=2.1) is Reason.IDLE


def test_a_person_just_found_is_looked_at_until_their_event_can_start() -> None:
    """Someone steps in and stands still: the run that found them, then one per frame until ``events.min_frames``
    runs in a row saw them, then the stationary interval."""
    gate = Gate(DetectConfig(stationary_interval_s=2.0, idle_interval_s=10.0), person_threshold=0.5, confirm_runs=3)
    play(gate, 0.1, moved=True, found=SOMEONE)
    still = play(gate, 5.0, moved=False, found=SOMEONE, start=0.1)
    runs = [now for now, reason in still if reason.model_ran]
    assert np.allclose(runs[:2], [0.1, 0.2]), "two more runs at once: three in a row saw them"
    assert len(runs) == 4 and all(2.0 <= gap <= 2.0 + 1 / FPS + 1e-9 for gap in np.diff(runs[1:])), runs
