"""The camera's full frame beside the small one: fitted into its ring's slots, read back whole, pinned by name,
and the live frame chosen by ``publish.frame_size``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from detectord.daemon.native import NATIVE_FIELDS, NativeRing, fit, live_picture, pixels_of, put


@pytest.fixture
def ring() -> Iterator[NativeRing]:
    created = NativeRing.create(
        f"t{uuid.uuid4().hex[:8]}", shape=(1080, 1920, 3), slots=4, readers=2, extra=NATIVE_FIELDS
    )
    try:
        yield created
    finally:
        created.close()


def test_sizes_are_fitted_down_with_their_aspect_and_never_up() -> None:
    assert fit((3840, 2160), (1920, 1080)) == (1920, 1080)
    assert fit((768, 576), (1920, 1080)) == (768, 576)
    assert fit((1280, 720), (640, 640)) == (640, 360)
    assert fit((1080, 1920), (1920, 1080)) == (608, 1080), "a portrait camera"


def test_a_frame_smaller_than_the_slot_reads_back_whole_and_contiguous(ring: NativeRing) -> None:
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    writer, reader = ring.writer(), ring.reader(0)
    named = put(writer, image, frame_id=7, captured=1.0, pts=0.28)
    pinned = reader.pin(named["native_slot"], named["native_seq"])
    assert pinned is not None and pinned.frame_id == 7
    pixels = pixels_of(pinned)
    assert pixels.shape == (720, 1280, 3) and pixels.flags.c_contiguous
    assert np.array_equal(pixels, image)
    pinned.release()


def test_a_frame_larger_than_the_slot_is_scaled_to_fit(ring: NativeRing) -> None:
    image = np.zeros((2160, 3840, 3), np.uint8)
    image[:, 1920:] = 255
    named = put(ring.writer(), image, frame_id=0, captured=0.0, pts=0.0)
    pinned = ring.reader(0).pin(named["native_slot"], named["native_seq"])
    assert pinned is not None
    pixels = pixels_of(pinned)
    assert pixels.shape == (1080, 1920, 3)
    assert pixels[:, :950].max() == 0 and pixels[:, 970:].min() == 255
    pinned.release()


def test_every_slot_pinned_leaves_the_frame_without_a_full_picture(ring: NativeRing) -> None:
    writer, reader = ring.writer(), ring.reader(0)
    image = np.zeros((240, 320, 3), np.uint8)
    held = []
    for frame_id in range(8):
        named = put(writer, image, frame_id, 0.0, 0.0)
        if named["native_slot"] < 0:
            break
        pinned = reader.pin(named["native_slot"], named["native_seq"])
        assert pinned is not None
        held.append(pinned)
    assert put(writer, image, 9, 0.0, 0.0) == {"native_slot": -1, "native_seq": -1}
    assert len(held) == 4
    for pinned in held:
        pinned.release()


def test_the_live_frame_is_the_detection_frame_the_full_one_or_the_full_one_fitted() -> None:
    small, full = np.zeros((240, 427, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8)
    assert live_picture(small, full, None) is small
    assert live_picture(small, None, (0, 0)) is small, "no full frame: the small one"
    assert live_picture(small, full, (0, 0)) is full
    assert live_picture(small, full, (640, 640)).shape == (360, 640, 3)
    assert live_picture(small, full, (1920, 1080)) is full, "never enlarged"
