"""Main-person selection on hand-made detection sequences."""

from __future__ import annotations

import itertools

import numpy as np

from detectord.detection import PERSON, Detections, MainPersonConfig, MainPersonTracker

CAR = 3


CLOCK = itertools.count(0.0, 0.1)
"""Frame times: 10 frames a second."""


def frame(
    *objects: tuple[tuple[float, float, float, float], float] | tuple[tuple[float, ...], float, int],
) -> Detections:
    """Detections from (box, score[, label]) tuples; label defaults to person."""
    boxes = np.array([o[0] for o in objects], np.float32).reshape(-1, 4)
    scores = np.array([o[1] for o in objects], np.float32)
    labels = np.array([o[2] if len(o) > 2 else PERSON for o in objects], np.int32)
    return Detections(boxes, scores, labels)


SMALL = (10.0, 10.0, 40.0, 100.0)  # 30 x 90
BIG = (200.0, 20.0, 300.0, 220.0)  # 100 x 200, more than 1.5x SMALL


def shifted(box: tuple[float, ...], dx: float) -> tuple[float, ...]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_frames_without_a_confident_person_have_no_main_person() -> None:
    tracker = MainPersonTracker()
    assert tracker.update(Detections.empty(), next(CLOCK)) is None
    assert tracker.update(frame((BIG, 0.89)), next(CLOCK)) is None, "below the 0.9 threshold"
    assert tracker.update(frame((BIG, 0.99, CAR)), next(CLOCK)) is None, "not a person"


def test_the_largest_confident_person_is_chosen_first() -> None:
    main = MainPersonTracker().update(frame((SMALL, 0.99), (BIG, 0.95), (BIG, 0.5)), next(CLOCK))
    assert main is not None
    assert main.index == 1 and main.box == BIG and main.score == np.float32(0.95)


def test_the_followed_person_keeps_its_track_id_while_moving() -> None:
    tracker = MainPersonTracker()
    ids = {tracker.update(frame((shifted(BIG, 5 * i), 0.99)), next(CLOCK)).track_id for i in range(20)}  # type: ignore[union-attr]
    assert len(ids) == 1


def test_a_bigger_person_takes_over_only_after_several_frames() -> None:
    cfg = MainPersonConfig(switch_frames=5)
    tracker = MainPersonTracker(cfg)
    first = tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    assert first is not None
    mains = [tracker.update(frame((SMALL, 0.99), (BIG, 0.99)), next(CLOCK)) for _ in range(6)]
    assert [m.index for m in mains] == [0, 0, 0, 0, 1, 1]  # type: ignore[union-attr]
    assert mains[-1].track_id != first.track_id  # type: ignore[union-attr]


def test_a_passer_by_that_is_big_for_a_few_frames_does_not_take_over() -> None:
    tracker = MainPersonTracker(MainPersonConfig(switch_frames=5))
    followed = tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    for _ in range(3):
        tracker.update(frame((SMALL, 0.99), (BIG, 0.99)), next(CLOCK))
    tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    for _ in range(3):
        main = tracker.update(frame((SMALL, 0.99), (BIG, 0.99)), next(CLOCK))
    assert main is not None and followed is not None
    assert main.track_id == followed.track_id, "the streak restarted after the passer-by left"


def test_a_slightly_bigger_person_never_takes_over() -> None:
    tracker = MainPersonTracker(MainPersonConfig(switch_ratio=1.5))
    followed = tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    slightly = (100.0, 10.0, 135.0, 100.0)  # 35 x 90: 1.17x
    for _ in range(50):
        main = tracker.update(frame((SMALL, 0.99), (slightly, 0.99)), next(CLOCK))
    assert main is not None and followed is not None and main.track_id == followed.track_id


def test_occlusion_gap_resumes_the_same_person() -> None:
    tracker = MainPersonTracker(MainPersonConfig(max_gap=10))
    followed = tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    for _ in range(4):
        assert tracker.update(Detections.empty(), next(CLOCK)) is None
    back = tracker.update(frame((shifted(SMALL, 3), 0.99)), next(CLOCK))
    assert back is not None and followed is not None and back.track_id == followed.track_id


def test_while_the_followed_person_is_hidden_the_largest_visible_one_is_main() -> None:
    tracker = MainPersonTracker(MainPersonConfig(max_gap=10))
    followed = tracker.update(frame((BIG, 0.99)), next(CLOCK))
    other = tracker.update(frame((SMALL, 0.99)), next(CLOCK))  # BIG hidden for a frame
    back = tracker.update(frame((SMALL, 0.99), (BIG, 0.99)), next(CLOCK))
    assert followed is not None and other is not None and back is not None
    assert other.track_id != followed.track_id
    assert back.track_id == followed.track_id and back.index == 1


def test_after_a_long_gap_the_followed_person_is_forgotten() -> None:
    tracker = MainPersonTracker(MainPersonConfig(max_gap=3))
    followed = tracker.update(frame((BIG, 0.99)), next(CLOCK))
    for _ in range(5):
        tracker.update(frame((SMALL, 0.99)), next(CLOCK))
    main = tracker.update(frame((SMALL, 0.99), (BIG, 0.99)), next(CLOCK))
    assert main is not None and followed is not None
    assert main.index == 0, "SMALL has been followed since BIG was forgotten"
    assert main.track_id != followed.track_id


def test_two_people_keep_distinct_track_ids_across_frames() -> None:
    tracker = MainPersonTracker()
    seen = []
    for i in range(5):
        main = tracker.update(frame((shifted(SMALL, i), 0.99), (shifted(BIG, i), 0.99)), next(CLOCK))
        seen.append(main.track_id)  # type: ignore[union-attr]
    assert len(set(seen)) == 1
