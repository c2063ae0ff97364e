"""Scripted scenes with known people: the detections a detector would give, with the difficulties trackers
meet, and who is really who.

Each scene is people walking across a 427x240 picture along known paths;
a frame's detections are their boxes (score 0.9), and a scene's
difficulty changes some of them: frames where the detector misses a
person, frames where it is unsure (score 0.3), two people passing each
other, a pause, two people boxed as one for a moment, a pillar hiding a
person, one person overtaking another. ``frames(scene, fps)`` samples it at a processed frame rate; every
box carries the true person it belongs to (or several, for a group box),
so ``bench/events.py`` and the tests can count events per true person and
identity switches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from detectord.detection import PERSON, Detections

SIZE = (427, 240)
CONFIDENT = 0.9
UNSURE = 0.3
PERSON_W, PERSON_H = 36.0, 100.0


@dataclass(frozen=True)
class Walker:
    """One true person: at ``x0`` at ``start_s``, at ``x1`` at ``end_s``, standing still during ``pause``."""

    person: int
    start_s: float
    end_s: float
    x0: float
    x1: float
    y: float = 120.0
    pause: tuple[float, float] | None = None
    height: float = PERSON_H

    def box(self, t: float) -> tuple[float, float, float, float] | None:
        if not self.start_s <= t <= self.end_s:
            return None
        moving = self.end_s - self.start_s
        walked = t - self.start_s
        if self.pause is not None:
            paused = self.pause[1] - self.pause[0]
            moving -= paused
            walked -= min(max(t - self.pause[0], 0.0), paused)
        x = self.x0 + (self.x1 - self.x0) * walked / moving
        width = self.height * PERSON_W / PERSON_H
        return (x, self.y, x + width, self.y + self.height)


@dataclass(frozen=True)
class Frame:
    time: float
    detections: Detections
    truth: list[tuple[int, ...]]
    """The true people of each box (two or more for a group box)."""


@dataclass(frozen=True)
class Scene:
    name: str
    walkers: tuple[Walker, ...]
    duration_s: float
    spoil: Callable[[float, list[tuple[tuple[float, float, float, float], float, tuple[int, ...]]]], None] = field(
        default=lambda t, boxes: None
    )
    """Changes a frame's boxes in place (box, score, true people): the scene's difficulty."""

    @property
    def people(self) -> int:
        return len({walker.person for walker in self.walkers})


def _missed(t: float, boxes: list) -> None:
    """The detector misses everyone for a third of a second, twice."""
    if 3.0 <= t < 3.34 or 6.0 <= t < 6.34:
        boxes.clear()


def _unsure(t: float, boxes: list) -> None:
    """For a second the detector is unsure of everyone (score 0.3, below every events threshold)."""
    if 3.0 <= t < 4.0:
        boxes[:] = [(box, UNSURE, who) for box, _, who in boxes]


def _grouped(t: float, boxes: list) -> None:
    """While two people walk side by side, the detector boxes them as one for half a second."""
    if 3.0 <= t < 3.5 and len(boxes) == 2:
        (a, _, who_a), (b, _, who_b) = boxes
        union = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        boxes[:] = [(union, CONFIDENT, who_a + who_b)]


def _pillar(t: float, boxes: list) -> None:
    """A pillar between x 200 and 240 hides whoever is behind it."""
    boxes[:] = [item for item in boxes if not (item[0][0] > 190 and item[0][2] < 250)]


SCENES = (
    Scene("crossing", (Walker(1, 0.0, 8.0, 20.0, 370.0), Walker(2, 0.0, 8.0, 370.0, 20.0)), 9.0),
    Scene("overtaking", (Walker(1, 0.0, 9.0, 20.0, 300.0), Walker(2, 1.0, 7.0, 20.0, 380.0, y=124.0)), 10.0),
    Scene("pausing", (Walker(1, 0.0, 10.0, 20.0, 370.0, pause=(3.0, 7.0)),), 11.0),
    Scene(
        "missed frames", (Walker(1, 0.0, 9.0, 20.0, 370.0), Walker(2, 1.0, 9.0, 370.0, 60.0, y=100.0)), 10.0, _missed
    ),
    Scene("low-score frames", (Walker(1, 0.0, 9.0, 20.0, 370.0),), 10.0, _unsure),
    Scene("group box", (Walker(1, 0.0, 8.0, 20.0, 340.0), Walker(2, 0.0, 8.0, 60.0, 380.0, y=125.0)), 9.0, _grouped),
    Scene("occluded", (Walker(1, 0.0, 9.0, 20.0, 390.0, height=90.0),), 10.0, _pillar),
)
"""One scene per difficulty; each is played at several processed frame rates."""


def frames(scene: Scene, fps: float) -> list[Frame]:
    """``scene`` as a detector running at ``fps`` processed frames a second would see it."""
    out = []
    for i in range(int(scene.duration_s * fps) + 1):
        t = i / fps
        boxes = [(box, CONFIDENT, (w.person,)) for w in scene.walkers if (box := w.box(t)) is not None]
        scene.spoil(t, boxes)
        detections = (
            Detections(
                np.array([box for box, _, _ in boxes], np.float32),
                np.array([score for _, score, _ in boxes], np.float32),
                np.full(len(boxes), PERSON, np.int32),
            )
            if boxes
            else Detections.empty()
        )
        out.append(Frame(t, detections, [who for _, _, who in boxes]))
    return out
