"""Reading a TensorFlow frozen graph (``GraphDef``) without TensorFlow: protobuf and NumPy only.

The messages are declared here, at run time, as a minimal descriptor of
TensorFlow's ``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
``tensor.proto`` and ``tensor_shape.proto``: the same field numbers and
wire types, only the fields a frozen inference graph uses. Fields we do
not declare (the function library, versions, debug info) are skipped by
protobuf as unknown fields. Why not a package with TensorFlow's compiled
protos: the candidates (tensorboard, tensorflow-metadata) pull in a web
server or their own protobuf pins for five small messages, and their
generated modules change with every TensorFlow release; the wire format
of these five has not changed since TensorFlow 1.0.

Torch-free: the registry's checks read the graph in processes that never
run a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from detectord.detection.errors import WeightsError

MAX_GRAPH_BYTES = 512 * 1024 * 1024
"""Protobuf refuses messages over 2 GiB; a frozen detection graph is megabytes."""

DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
}
"""TensorFlow's ``DataType`` enum (types.proto) for the dtypes a constant of a detection graph has."""

_VALUE_FIELDS = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val", 6: "int_val"}
_VALUE_FIELDS |= {9: "int64_val", 10: "bool_val"}


class GraphError(WeightsError):
    """The file is not the graph we expect; the message is one line naming what is wrong."""


_F = descriptor_pb2.FieldDescriptorProto
_REPEATED = _F.LABEL_REPEATED


def _field(message: Any, name: str, number: int, kind: int, *, repeated: bool = False, of: str = "") -> Any:
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _REPEATED if repeated else _F.LABEL_OPTIONAL
    if of:
        field.type_name = f".detectord.tf.{of}"
    return field


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="detectord_tf_graph.proto", package="detectord.tf", syntax="proto3")
    dim = proto.message_type.add(name="Dim")
    _field(dim, "size", 1, _F.TYPE_INT64)
    _field(dim, "name", 2, _F.TYPE_STRING)
    shape = proto.message_type.add(name="TensorShape")
    _field(shape, "dim", 2, _F.TYPE_MESSAGE, repeated=True, of="Dim")
    _field(shape, "unknown_rank", 3, _F.TYPE_BOOL)
    tensor = proto.message_type.add(name="Tensor")
    _field(tensor, "dtype", 1, _F.TYPE_INT32)
    _field(tensor, "tensor_shape", 2, _F.TYPE_MESSAGE, of="TensorShape")
    _field(tensor, "tensor_content", 4, _F.TYPE_BYTES)
    _field(tensor, "float_val", 5, _F.TYPE_FLOAT, repeated=True)
    _field(tensor, "double_val", 6, _F.TYPE_DOUBLE, repeated=True)
    _field(tensor, "int_val", 7, _F.TYPE_INT32, repeated=True)
    _field(tensor, "string_val", 8, _F.TYPE_BYTES, repeated=True)
    _field(tensor, "int64_val", 10, _F.TYPE_INT64, repeated=True)
    _field(tensor, "bool_val", 11, _F.TYPE_BOOL, repeated=True)
    values = proto.message_type.add(name="ListValue")
    _field(values, "s", 2, _F.TYPE_BYTES, repeated=True)
    _field(values, "i", 3, _F.TYPE_INT64, repeated=True)
    _field(values, "f", 4, _F.TYPE_FLOAT, repeated=True)
    _field(values, "b", 5, _F.TYPE_BOOL, repeated=True)
    _field(values, "type", 6, _F.TYPE_INT32, repeated=True)
    _field(values, "shape", 7, _F.TYPE_MESSAGE, repeated=True, of="TensorShape")
    _field(values, "tensor", 8, _F.TYPE_MESSAGE, repeated=True, of="Tensor")
    attr = proto.message_type.add(name="AttrValue")
    attr.oneof_decl.add(name="value")
    for name, number, kind, of in (
        ("list", 1, _F.TYPE_MESSAGE, "ListValue"),
        ("s", 2, _F.TYPE_BYTES, ""),
        ("i", 3, _F.TYPE_INT64, ""),
        ("f", 4, _F.TYPE_FLOAT, ""),
        ("b", 5, _F.TYPE_BOOL, ""),
        ("type", 6, _F.TYPE_INT32, ""),
        ("shape", 7, _F.TYPE_MESSAGE, "TensorShape"),
        ("tensor", 8, _F.TYPE_MESSAGE, "Tensor"),
        ("placeholder", 9, _F.TYPE_STRING, ""),
    ):
        _field(attr, name, number, kind, of=of).oneof_index = 0
    node = proto.message_type.add(name="Node")
    _field(node, "name", 1, _F.TYPE_STRING)
    _field(node, "op", 2, _F.TYPE_STRING)
    _field(node, "input", 3, _F.TYPE_STRING, repeated=True)
    _field(node, "device", 4, _F.TYPE_STRING)
    entry = node.nested_type.add(name="AttrEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, of="AttrValue")
    _field(node, "attr", 5, _F.TYPE_MESSAGE, repeated=True, of="Node.AttrEntry")
    graph = proto.message_type.add(name="Graph")
    _field(graph, "node", 1, _F.TYPE_MESSAGE, repeated=True, of="Node")
    return proto


@cache
def _graph_message() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("detectord.tf.Graph"))


def tensor_value(tensor: Any, where: str) -> np.ndarray:
    """A ``TensorProto`` as an array: packed ``tensor_content``, or the typed values (one repeated value fills
    the shape, as TensorFlow does)."""
    dtype = DTYPES.get(tensor.dtype)
    if dtype is None:
        raise GraphError(f"{where}: constant of TensorFlow dtype {tensor.dtype}, which detectord does not read")
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if tensor.tensor_content:
        flat = np.frombuffer(tensor.tensor_content, dtype=dtype.newbyteorder("<"))
    else:
        flat = np.asarray(getattr(tensor, _VALUE_FIELDS.get(tensor.dtype, "int_val")), dtype=dtype)
        if flat.size == 1 and count > 1:
            flat = np.full(count, flat[0], dtype)
        elif flat.size == 0 and count:
            flat = np.zeros(count, dtype)
    if flat.size != count:
        raise GraphError(f"{where}: constant of shape {list(shape)} holds {flat.size} values")
    return flat.astype(dtype).reshape(shape)


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    """Data inputs as ``node`` or ``node:k``; control inputs (``^node``) are left out."""
    attrs: Any
    """The node's ``attr`` map of AttrValue messages."""

    def attr(self, key: str) -> Any:
        if key not in self.attrs:
            raise GraphError(f"node {self.name} ({self.op}) has no attribute {key!r}")
        value = self.attrs[key]
        kind = value.WhichOneof("value")
        if kind == "list":
            items = value.list
            return list(items.i) or [s.decode() for s in items.s] or list(items.f) or list(items.type)
        if kind == "s":
            return value.s.decode()
        if kind == "tensor":
            return tensor_value(value.tensor, self.name)
        return getattr(value, kind) if kind else None


class Graph:
    """The nodes of a frozen graph by name, with their constants as arrays."""

    def __init__(self, nodes: dict[str, Node], source: str) -> None:
        self.nodes = nodes
        self.source = source

    def node(self, name: str) -> Node:
        key = name.split(":", maxsplit=1)[0]
        if key not in self.nodes:
            raise GraphError(f"{self.source} has no node {key!r}: not the graph detectord expects")
        return self.nodes[key]

    def constant(self, name: str) -> np.ndarray:
        """The value of a ``Const`` node, looked up through the ``Identity`` nodes (``…/read``) before it."""
        node = self.node(name)
        while node.op == "Identity":
            node = self.node(node.inputs[0])
        if node.op != "Const":
            raise GraphError(f"{self.source}: {name} is a {node.op}, not a constant")
        return np.asarray(node.attr("value"))

    def consumers(self, name: str) -> list[Node]:
        """The nodes that take ``name`` (output 0) as an input."""
        return [node for node in self.nodes.values() if name in node.inputs or f"{name}:0" in node.inputs]


def parse_graph(data: bytes, source: str) -> Graph:
    """The graph a ``GraphDef`` serialises; GraphError when ``data`` is not one."""
    message = _graph_message()()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise GraphError(f"{source} is not a TensorFlow graph (protobuf: {exc})") from None
    nodes = {
        node.name: Node(node.name, node.op, tuple(i for i in node.input if not i.startswith("^")), node.attr)
        for node in message.node
    }
    if not nodes or not all(node.name and node.op for node in nodes.values()):
        raise GraphError(f"{source} is not a TensorFlow graph (no named nodes)")
    return Graph(nodes, source)


def read_graph(path: Path) -> Graph:
    """The frozen graph in ``path``; GraphError (one line) when it cannot be read or is not a graph."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise GraphError(f"{path} is not a regular file")
        if size > MAX_GRAPH_BYTES:
            raise GraphError(f"{path} is {size} bytes, more than a frozen detection graph ({MAX_GRAPH_BYTES} at most)")
        data = path.read_bytes()
    except OSError as exc:
        raise GraphError(f"cannot read {path}: {exc.strerror}") from None
    return parse_graph(data, str(path))
