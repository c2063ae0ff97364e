"""Folding normalisation layers into the convolutions before them.

In eval mode a BatchNorm2d or FrozenBatchNorm2d after a convolution is an
affine map per channel, ``y = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``,
which can be baked into the convolution's weight and bias once, in float32.
That removes a pass over every feature map, and it removes the reason a
plain ``.half()`` of a detector breaks: FrozenBatchNorm2d computes
``rsqrt(running_var + eps)`` at run time, in the module's dtype. Channels
that are dead in a trained network have running variances far below
float16's smallest subnormal (6e-8); in half precision they become 0, and
with ``eps = 0`` (torchvision's FrozenBatchNorm2d before eps was added)
``rsqrt(0)`` is infinite and NaN spreads through the network. With the
current ``eps = 1e-5`` the result stays finite, but those channels' tiny
convolution outputs fall into float16's subnormal range and lose precision.
Folded in float32 first, the scale lands in the convolution's (equally
small) weights, and the outputs come out in float16's normal range.

Folding follows the data flow, not module names: the module is traced with
torch.fx (treating the norm layers as leaves) and a norm is folded only where
it consumes a convolution whose output nothing else uses.
"""

from __future__ import annotations

import logging
from typing import cast

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.ops.misc import FrozenBatchNorm2d

log = logging.getLogger(__name__)

NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d)


class _NormLeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, FrozenBatchNorm2d) or super().is_leaf_module(m, module_qualified_name)


def fold_norms(module: nn.Module) -> tuple[fx.GraphModule, int]:
    """``module`` traced, with each conv -> norm pair folded; and how many pairs were.

    The convolutions are updated in place (they are shared with ``module``),
    so use the returned GraphModule and drop ``module``.
    """
    graph_module = fx.GraphModule(module, _NormLeafTracer().trace(module))
    modules = dict(graph_module.named_modules())
    folded = 0
    for node in list(graph_module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], NORMS):
            continue
        source = node.args[0]
        if not (
            isinstance(source, fx.Node)
            and source.op == "call_module"
            and isinstance(modules[source.target], nn.Conv2d)
            and len(source.users) == 1
        ):
            continue
        conv, norm = modules[source.target], modules[node.target]
        with torch.no_grad():
            conv.weight, conv.bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
            )
        node.replace_all_uses_with(source)
        graph_module.graph.erase_node(node)
        folded += 1
    graph_module.graph.eliminate_dead_code()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module, folded


def fold_detector_norms(model: nn.Module) -> int:
    """Fold the norms of every part of a torchvision detector that torch.fx can trace.

    The backbone (with its FPN) holds nearly all of them; heads with norm
    layers (SSDlite, Faster R-CNN v2) are folded too. Returns the count.
    """
    parts: list[tuple[nn.Module, str]] = [(model, "backbone")]
    rpn = getattr(model, "rpn", None)
    if rpn is not None:
        parts += [(rpn, "head"), (cast(nn.Module, model.roi_heads), "box_head")]
    if hasattr(model, "head"):
        parts.append((model, "head"))
    total = 0
    for owner, name in parts:
        part = getattr(owner, name)
        if not any(isinstance(m, NORMS) for m in part.modules()):
            continue
        try:
            traced, folded = fold_norms(part)
        except Exception as exc:  # a part torch.fx cannot trace keeps its norms
            log.info("not folding %s.%s: %s", type(owner).__name__, name, exc)
            continue
        setattr(owner, name, traced)
        total += folded
    return total
