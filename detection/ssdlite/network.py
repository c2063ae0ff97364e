"""The SSDLite person graph as a torch module, built from the graph's own nodes and constants.

Nothing of the architecture is typed in: the convolutions, their order, the
residual additions and which tensors feed the box predictors are read off
the graph, and each layer is what the graph computes:

* ``Conv2D`` and ``DepthwiseConv2dNative`` with TensorFlow's ``SAME``
  padding, which is asymmetric where the input does not divide evenly (a
  stride-2 3x3 convolution of an even-sized map pads one row and column, at
  the bottom and right only): the padding is worked out per layer for the
  graph's fixed 300x300 input;
* ``FusedBatchNorm`` (inference mode) as ``nn.BatchNorm2d`` with the graph's
  epsilon, folded into its convolution by ``fold`` (the ``fp32-fused``
  scheme); a ``BiasAdd`` as the convolution's bias; ``Relu6`` as
  ``nn.ReLU6``; ``Add`` as an addition.

``GraphConvNet`` is one such chain of layers between named tensors; the
detector is two of them, the MobileNetV2 feature extractor with its SSD
extra layers (``backbone``: 300x300 image to six feature maps) and the
SSDLite box predictors (``head``: feature maps to box encodings and class
logits, in the graph's anchor order: row, column, anchor).

Tensors are NCHW, where TensorFlow's graph is NHWC: weights are transposed
once at load, and the predictors' outputs are permuted to NHWC before the
reshape that lists anchors, so anchor *k* here is anchor *k* there.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .graphdef import Graph, GraphError, Node

CONVOLUTIONS = ("Conv2D", "DepthwiseConv2dNative")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's ``SAME``: (padding before, padding after, output size) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class ConvUnit(nn.Module):
    """A convolution of the graph and what directly follows it: BatchNorm or a bias, then ReLU6 or nothing."""

    def __init__(self, graph: Graph, conv: Node, norm: Node | None, relu6: bool, size: tuple[int, int]) -> None:
        super().__init__()
        if conv.attr("data_format") != "NHWC" or any(d != 1 for d in conv.attr("dilations")):
            raise GraphError(f"{conv.name}: only NHWC convolutions without dilation are ported")
        weights = graph.constant(conv.inputs[1]).astype(np.float32)
        kh, kw, channels, count = weights.shape
        _, sh, sw, _ = conv.attr("strides")
        if conv.op == "Conv2D":
            kernel, groups, out_channels = weights.transpose(3, 2, 0, 1), 1, count
        else:  # depthwise: output channel c * multiplier + m, as TensorFlow orders them
            kernel, groups, out_channels = (
                weights.reshape(kh, kw, 1, channels * count).transpose(3, 2, 0, 1),
                channels,
                channels * count,
            )
        if conv.attr("padding") == "SAME":
            top, bottom, out_h = same_padding(size[0], kh, sh)
            left, right, out_w = same_padding(size[1], kw, sw)
        elif conv.attr("padding") == "VALID":
            top = bottom = left = right = 0
            out_h, out_w = (size[0] - kh) // sh + 1, (size[1] - kw) // sw + 1
        else:
            raise GraphError(f"{conv.name}: padding {conv.attr('padding')!r} is not ported")
        symmetric = top == bottom and left == right
        self.pad = nn.Identity() if symmetric else nn.ZeroPad2d((left, right, top, bottom))
        self.conv = nn.Conv2d(
            channels, out_channels, (kh, kw), (sh, sw), padding=(top, left) if symmetric else 0, groups=groups,
            bias=norm is not None and norm.op == "BiasAdd",
        )  # fmt: skip
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
        self.norm: nn.Module = nn.Identity()
        if norm is not None and norm.op == "BiasAdd":
            with torch.no_grad():
                assert self.conv.bias is not None
                self.conv.bias.copy_(torch.from_numpy(graph.constant(norm.inputs[1]).astype(np.float32)))
        elif norm is not None:
            if norm.attr("is_training"):
                raise GraphError(f"{norm.name}: a batch norm in training mode is not an inference graph")
            gamma, beta, mean, variance = (graph.constant(name).astype(np.float32) for name in norm.inputs[1:5])
            batch_norm = nn.BatchNorm2d(out_channels, eps=float(norm.attr("epsilon")))
            with torch.no_grad():
                for tensor, value in zip(
                    (batch_norm.weight, batch_norm.bias, batch_norm.running_mean, batch_norm.running_var),
                    (gamma, beta, mean, variance),
                    strict=True,
                ):
                    assert tensor is not None
                    tensor.copy_(torch.from_numpy(value))
            self.norm = batch_norm.eval()
        self.act: nn.Module = nn.ReLU6() if relu6 else nn.Identity()
        self.out_size = (out_h, out_w)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))

    def fold(self) -> bool:
        """The batch norm baked into the convolution's weight and bias (float32); False when there was none."""
        if not isinstance(self.norm, nn.BatchNorm2d):
            return False
        norm = self.norm
        assert norm.running_mean is not None and norm.running_var is not None
        with torch.no_grad():
            self.conv.weight, self.conv.bias = fuse_conv_bn_weights(
                self.conv.weight, self.conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
            )
        self.norm = nn.Identity()
        return True


@dataclass(frozen=True)
class Step:
    """One step of a ``GraphConvNet``: ``output`` is unit ``unit`` of ``inputs[0]``, or the sum of ``inputs``."""

    output: str
    inputs: tuple[str, ...]
    unit: str | None = None


def _key(name: str) -> str:
    """A module name for a TensorFlow scope (``nn.ModuleDict`` keys hold no dots)."""
    return name.replace("FeatureExtractor/MobilenetV2/", "").replace("/", "__").replace(".", "_")


class GraphConvNet(nn.Module):
    """The layers of the graph between ``inputs`` (tensor name -> channels, height, width) and ``outputs``.

    ``forward`` takes the input tensors in the order given and returns the
    outputs by position ("0", "1", ...), a dict as torchvision's backbones do.
    """

    def __init__(self, graph: Graph, inputs: dict[str, tuple[int, int, int]], outputs: list[str]) -> None:
        super().__init__()
        self._graph = graph
        self.units = nn.ModuleDict()
        self.steps: list[Step] = []
        self.input_names = [self._origin(name) for name in inputs]
        self._shapes = {self._origin(name): shape for name, shape in inputs.items()}
        self.output_names = [self._build(name) for name in outputs]
        self.output_shapes = [self._shapes[name] for name in self.output_names]
        del self._graph

    def _origin(self, name: str) -> str:
        """The node that computes ``name``, through the ``Identity`` aliases the graph names tensors with."""
        node = self._graph.node(name)
        while node.op == "Identity":
            node = self._graph.node(node.inputs[0])
        return node.name

    def _build(self, name: str) -> str:
        """The steps that compute tensor ``name`` (after those of its inputs); its key in the value table."""
        origin = self._origin(name)
        if origin in self._shapes:
            return origin
        node = self._graph.node(origin)
        if node.op == "Add":
            inputs = tuple(self._build(source) for source in node.inputs)
            if self._shapes[inputs[0]] != self._shapes[inputs[1]]:
                raise GraphError(f"{node.name}: adds tensors of shapes {[self._shapes[i] for i in inputs]}")
            self.steps.append(Step(origin, inputs))
            self._shapes[origin] = self._shapes[inputs[0]]
            return origin
        relu6 = node.op == "Relu6"
        if relu6:
            node = self._graph.node(self._origin(node.inputs[0]))
        norm = node if node.op in ("FusedBatchNorm", "FusedBatchNormV3", "BiasAdd") else None
        conv = self._graph.node(self._origin(node.inputs[0])) if norm is not None else node
        if conv.op not in CONVOLUTIONS:
            raise GraphError(f"{self._graph.source}: {origin} is computed by a {conv.op}, which this port lacks")
        source = self._build(conv.inputs[0])
        channels, height, width = self._shapes[source]
        unit = ConvUnit(self._graph, conv, norm, relu6, (height, width))
        if unit.conv.in_channels != channels:
            raise GraphError(f"{conv.name}: weights for {unit.conv.in_channels} channels, input has {channels}")
        key = _key(conv.name.rsplit("/", 1)[0])
        self.units[key] = unit
        self.steps.append(Step(origin, (source,), key))
        self._shapes[origin] = (unit.out_channels, *unit.out_size)
        return origin

    def forward(self, *inputs: Tensor) -> dict[str, Tensor]:
        values = dict(zip(self.input_names, inputs, strict=True))
        for step in self.steps:
            if step.unit is None:
                values[step.output] = values[step.inputs[0]] + values[step.inputs[1]]
            else:
                values[step.output] = self.units[step.unit](values[step.inputs[0]])
        return OrderedDict((str(i), values[name]) for i, name in enumerate(self.output_names))

    def fold(self) -> int:
        """Every batch norm folded into its convolution; how many were."""
        return sum(unit.fold() for unit in self.units.values() if isinstance(unit, ConvUnit))


class BoxPredictors(nn.Module):
    """The SSDLite box predictors: each feature map to box encodings and class logits, anchors in the graph's
    order (feature map, then row, column, anchor)."""

    def __init__(self, graph: Graph, features: list[tuple[str, tuple[int, int, int]]], predictors: list[str]) -> None:
        super().__init__()
        outputs = [f"{p}/{part}/BiasAdd" for p in predictors for part in ("BoxEncodingPredictor", "ClassPredictor")]
        self.net = GraphConvNet(graph, dict(features), outputs)
        box_channels = [shape[0] for shape in self.net.output_shapes[0::2]]
        class_channels = [shape[0] for shape in self.net.output_shapes[1::2]]
        self.anchors_per_cell = [channels // 4 for channels in box_channels]
        self.num_classes = class_channels[0] // self.anchors_per_cell[0]
        if any(c != a * self.num_classes for c, a in zip(class_channels, self.anchors_per_cell, strict=True)):
            raise GraphError(f"{graph.source}: class predictors disagree on the number of classes")

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        outputs = list(self.net(*features.values()).values())
        batch = outputs[0].shape[0]
        boxes = [o.permute(0, 2, 3, 1).reshape(batch, -1, 4) for o in outputs[0::2]]
        logits = [o.permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes) for o in outputs[1::2]]
        return torch.cat(boxes, 1), torch.cat(logits, 1)

    def anchor_count(self) -> int:
        return sum(
            a * shape[1] * shape[2]
            for a, shape in zip(self.anchors_per_cell, self.net.output_shapes[0::2], strict=True)
        )


class SSDLiteNet(nn.Module):
    """MobileNetV2 + SSD extras (``backbone``) and the SSDLite predictors (``head``).

    ``forward(images)``: images ``FloatTensor[B, 3, S, S]`` RGB, already
    resized to the graph's input size S and scaled to -1..1; returns box
    encodings ``[B, A, 4]`` (ty, tx, th, tw) and class logits ``[B, A, C]``
    (C includes the background class 0), for the A anchors in graph order.
    """

    def __init__(self, backbone: GraphConvNet, head: BoxPredictors, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.input_size = input_size

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.backbone(images))

    def fold(self) -> int:
        return self.backbone.fold() + self.head.net.fold()


def build_network(graph: Graph, input_name: str, input_size: tuple[int, int], predictors: list[str]) -> SSDLiteNet:
    """The network of ``graph`` from tensor ``input_name`` (the normalised image, 3 x ``input_size``) to the box
    ``predictors`` (scopes such as ``BoxPredictor_0``), in eval mode, float32, on the CPU."""
    feature_names = [graph.node(f"{p}/BoxEncodingPredictor_depthwise/depthwise").inputs[0] for p in predictors]
    backbone = GraphConvNet(graph, {input_name: (3, *input_size)}, feature_names)
    features = list(zip(feature_names, backbone.output_shapes, strict=True))
    head = BoxPredictors(graph, features, predictors)
    return SSDLiteNet(backbone, head, input_size).eval()
