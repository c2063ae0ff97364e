"""Slot layouts: what one ring slot holds, defined once and imported on both sides.

A layout is a list of named, fixed-shape fields. It becomes a numpy structured
dtype whose array fields start on 64-byte boundaries, so a pixel field is a
well-aligned, zero-copy ``ndarray`` view of shared memory, and whose item size
is a multiple of 64 so that two slots never share a cache line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

ALIGN = 64


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Field:
    """One named field of a slot: a scalar when ``shape`` is empty, else an array."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()

    def describe(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        return f"{self.name} {dims} {np.dtype(self.dtype).name}"


@dataclass(frozen=True)
class SlotLayout:
    """The fields of one slot of a ring of a given ``kind`` ("frames", "results")."""

    kind: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate field names in {self.kind} layout: {names}")
        for f in self.fields:
            if any(d <= 0 for d in f.shape):
                raise ValueError(f"field {f.name!r} has a non-positive dimension: {f.shape}")

    @cached_property
    def dtype(self) -> np.dtype:
        """Structured dtype: scalars packed first, then each array on a 64-byte boundary."""
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        offset = 0
        ordered = sorted(self.fields, key=lambda f: bool(f.shape))
        for f in ordered:
            base = np.dtype(f.dtype)
            offset = round_up(offset, ALIGN if f.shape else base.alignment)
            names.append(f.name)
            formats.append((base, f.shape) if f.shape else base)
            offsets.append(offset)
            offset += base.itemsize * int(np.prod(f.shape, dtype=np.int64))
        return np.dtype(
            {
                "names": names,
                "formats": formats,
                "offsets": offsets,
                "itemsize": round_up(max(offset, 1), ALIGN),
            }
        )

    def describe(self) -> str:
        """Human-readable geometry, used in mismatch errors."""
        arrays = [f.describe() for f in self.fields if f.shape] or [f.describe() for f in self.fields]
        return f"{self.kind}: " + ", ".join(arrays)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fields": [[f.name, np.dtype(f.dtype).str, list(f.shape)] for f in self.fields],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SlotLayout:
        return cls(
            kind=str(data["kind"]),
            fields=tuple(Field(str(n), str(d), tuple(int(x) for x in s)) for n, d, s in data["fields"]),
        )


def frame_layout(shape: tuple[int, int, int], extra: tuple[Field, ...] = ()) -> SlotLayout:
    """One decoded frame, HxWxC uint8 (BGR as OpenCV delivers it), with its provenance.

    ``frame_id`` is the frame's index in its source, ``capture_ts`` the epoch
    seconds at which it was read, ``pts`` its position in the source in seconds.
    ``extra``: fields the pipeline adds to each frame (what its producer found
    in it), which this package knows nothing about.
    """
    height, width, channels = shape
    return SlotLayout(
        kind="frames",
        fields=(
            Field("frame_id", "<i8"),
            Field("capture_ts", "<f8"),
            Field("pts", "<f8"),
            *extra,
            Field("pixels", "|u1", (height, width, channels)),
        ),
    )
