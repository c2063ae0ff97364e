"""Where in a frame the model looks: regions planned from motion and the last look, and put back together."""

from __future__ import annotations

import numpy as np

from detectord.detection import PERSON, Detections
from detectord.detection.regions import MAX_REGIONS, MIN_SIDE, combine, plan

FRAME = (427, 240)
NOTHING = np.zeros((0, 4), np.float32)


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


def inside(box: np.ndarray | tuple[float, ...], region: tuple[int, int, int, int]) -> bool:
    return region[0] <= box[0] and region[1] <= box[1] and box[2] <= region[2] and box[3] <= region[3]


def test_a_frame_without_motion_boxes_is_looked_at_whole() -> None:
    assert plan(FRAME, NOTHING, NOTHING) is None


def test_a_small_mover_gets_one_region_around_it_with_room_for_a_detector_window() -> None:
    mover = boxes((200, 100, 220, 150))
    regions = plan(FRAME, mover, NOTHING)
    assert regions is not None and len(regions) == 1
    (region,) = regions
    assert inside(mover[0], region)
    assert region[0] <= 200 - 10 and region[2] >= 220 + 10, "half the box's width each side"
    assert min(region[2] - region[0], region[3] - region[1]) >= MIN_SIDE * 240 - 1
    assert min(region[:2]) >= 0 and region[2] <= 427 and region[3] <= 240


def test_a_mover_at_the_border_keeps_its_full_region_inside_the_frame() -> None:
    (region,) = plan(FRAME, boxes((0, 200, 10, 240)), NOTHING) or []
    assert region[0] == 0 and region[3] == 240
    assert region[2] - region[0] >= MIN_SIDE * 240 - 1 and region[3] - region[1] >= MIN_SIDE * 240 - 1


def test_two_movers_far_apart_get_two_regions_and_two_close_ones_one() -> None:
    apart = plan(FRAME, boxes((10, 60, 40, 140), (380, 60, 410, 140)), NOTHING)
    assert apart is not None and len(apart) == 2
    close = plan(FRAME, boxes((100, 60, 130, 140), (135, 60, 165, 140)), NOTHING)
    assert close is not None and len(close) == 1


def test_motion_all_over_the_picture_is_looked_at_whole() -> None:
    assert plan(FRAME, boxes((0, 0, 300, 200)), NOTHING) is None
    spread = boxes(*[(x, y, x + 8, y + 8) for x in (10, 120, 230, 340) for y in (10, 180)])
    assert len(spread) > MAX_REGIONS and plan(FRAME, spread, NOTHING) is None


def test_a_known_person_the_motion_touches_is_taken_whole_into_the_region() -> None:
    person = (150, 40, 200, 200)
    regions = plan(FRAME, boxes((190, 180, 210, 200)), boxes(person))
    assert regions is not None and len(regions) == 1 and inside(person, regions[0])


def test_the_frame_is_what_the_regions_found_and_the_last_look_outside_them() -> None:
    regions = [(100, 50, 200, 150)]
    found = [Detections(boxes((10, 20, 40, 90)), np.array([0.6], np.float32), np.array([PERSON], np.int32))]
    last = Detections(
        boxes((300, 10, 340, 100), (110, 60, 140, 130)),
        np.array([0.9, 0.8], np.float32),
        np.array([3, PERSON], np.int32),
    )
    frame = combine(found, regions, last)
    assert frame.boxes.tolist() == [[300, 10, 340, 100], [110, 70, 140, 140]], "moved to frame pixels, best first"
    assert frame.labels.tolist() == [3, PERSON] and np.allclose(frame.scores, [0.9, 0.6])
    assert len(combine([Detections.empty()], regions, None)) == 0
