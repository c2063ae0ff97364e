"""Polygons a user draws (motion masks, zones): whether one encloses an area a point can be in.

A polygon whose edges cross (a "bow-tie") has no single inside: OpenCV's fill
and point test each pick one by their own rule, so the mask masks, and the
zone counts, something other than what was drawn. One whose points lie on a
line encloses nothing: a mask that masks nothing, a zone nobody enters. Both
are configuration mistakes, refused where the configuration is read.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segment ab and segment cd share a point (crossing, touching or overlapping)."""
    d1, d2, d3, d4 = _cross(c, d, a), _cross(c, d, b), _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(a, c, d))
        or (d2 == 0 and _on_segment(b, c, d))
        or (d3 == 0 and _on_segment(c, a, b))
        or (d4 == 0 and _on_segment(d, a, b))
    )


def area(points: Sequence[Point]) -> float:
    """The polygon's area (shoelace formula), whatever its orientation."""
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why ``points`` (three or more [x, y]) is not a simple polygon with an area, in words; None when it is.

    Edges that are not neighbours must not meet; neighbours meet only at their shared corner (a point
    visited twice, or an edge that doubles back on the one before, is a crossing too).
    """
    count = len(points)
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    neighbours = []
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                neighbours.append((i, j))
            elif _segments_meet(*edges[i], *edges[j]):
                return f"crosses itself (edges {i + 1} and {j + 1} meet): draw it without crossing lines"
    if area(points) == 0.0:
        return "has no area (its points lie on one line)"
    for i, j in neighbours:
        (a, b), (c, d) = edges[i], edges[j]
        shared, before, after = (b, a, d) if j == i + 1 else (a, b, c)
        backwards = _on_segment(after, shared, before) or _on_segment(before, shared, after)
        if _cross(shared, before, after) == 0 and backwards:
            return f"doubles back on itself at [{shared[0]:g}, {shared[1]:g}]"
    return None
