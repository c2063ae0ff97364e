"""Evaluating the parts of a frozen graph that depend on no input, in NumPy.

The SSD graph computes its anchors from constants (the grid of each feature
map, the scales and aspect ratios of ``MultipleGridAnchorGenerator``) with a
few hundred small ops. Evaluating exactly those ops gives the anchors the
graph uses, with nothing typed in from its configuration; an op outside the
table below means the graph is not the one this port was written for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graphdef import DTYPES, Graph, GraphError, Node


def _strided_slice(node: Node, data: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray) -> Any:
    if node.attr("ellipsis_mask") or node.attr("new_axis_mask"):
        raise GraphError(f"{node.name}: StridedSlice with ellipsis or new axes is not evaluated")
    begin_mask, end_mask, shrink = node.attr("begin_mask"), node.attr("end_mask"), node.attr("shrink_axis_mask")
    index: list[Any] = []
    for axis, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)):
        if shrink >> axis & 1:
            index.append(b)
            continue
        index.append(slice(None if begin_mask >> axis & 1 else b, None if end_mask >> axis & 1 else e, s))
    return data[tuple(index)]


def _slice(data: np.ndarray, begin: np.ndarray, size: np.ndarray) -> np.ndarray:
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin.tolist(), size.tolist(), strict=True))
    return data[index]


def _cast(node: Node, value: np.ndarray) -> np.ndarray:
    target = DTYPES.get(node.attr("DstT"))
    if target is None:
        raise GraphError(f"{node.name}: Cast to TensorFlow dtype {node.attr('DstT')} is not evaluated")
    return np.asarray(value).astype(target)


def _float_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(np.true_divide(x, y), dtype=np.result_type(x, y))


OPS: dict[str, Callable[..., Any]] = {
    "Identity": lambda node, x: x,
    "Cast": _cast,
    "Add": lambda node, x, y: np.add(x, y),
    "Sub": lambda node, x, y: np.subtract(x, y),
    "Mul": lambda node, x, y: np.multiply(x, y),
    "RealDiv": lambda node, x, y: _float_div(x, y),
    "Minimum": lambda node, x, y: np.minimum(x, y),
    "Maximum": lambda node, x, y: np.maximum(x, y),
    "Sqrt": lambda node, x: np.sqrt(x),
    "Range": lambda node, start, limit, delta: np.arange(start, limit, delta, dtype=np.result_type(start, limit)),
    "Reshape": lambda node, x, shape: np.reshape(x, shape.tolist()),
    "ExpandDims": lambda node, x, axis: np.expand_dims(x, int(axis)),
    "Fill": lambda node, dims, value: np.full(dims.tolist(), value, dtype=np.asarray(value).dtype),
    "Tile": lambda node, x, multiples: np.tile(x, multiples.tolist()),
    "Pack": lambda node, *xs: np.stack(xs, axis=node.attr("axis")),
    "ConcatV2": lambda node, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])),
    "Slice": lambda node, x, begin, size: _slice(x, begin, size),
    "StridedSlice": _strided_slice,
}
"""The ops of a constant subgraph this evaluator knows (enough for the SSD anchor generator)."""


def evaluate(graph: Graph, name: str) -> np.ndarray:
    """The value of tensor ``name`` (``node`` or ``node:k`` with k = 0), when it depends on constants only."""
    values: dict[str, np.ndarray] = {}
    pending = [name.split(":", maxsplit=1)[0]]
    while pending:
        current = pending[-1]
        if current in values:
            pending.pop()
            continue
        node = graph.node(current)
        if node.op == "Const":
            values[current] = np.asarray(node.attr("value"))
            pending.pop()
            continue
        if node.op not in OPS:
            raise GraphError(f"{graph.source}: {name} depends on {node.name}, a {node.op} (not a constant)")
        sources = [source.split(":") for source in node.inputs]
        if any(len(parts) > 1 and parts[1] != "0" for parts in sources):
            raise GraphError(f"{graph.source}: {node.name} reads a second output, which is not evaluated")
        missing = [parts[0] for parts in sources if parts[0] not in values]
        if missing:
            pending.extend(missing)
            continue
        values[current] = np.asarray(OPS[node.op](node, *(values[parts[0]] for parts in sources)))
        pending.pop()
    return values[name.split(":", maxsplit=1)[0]]
