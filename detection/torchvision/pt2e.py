"""Backbone + FPN in int8 through PyTorch 2 export quantisation (torchao's PT2E flow, x86 Inductor).

The float backbone is folded (norms into convolutions), exported with
``torch.export`` (batch, height and width symbolic), annotated by
``X86InductorQuantizer`` (int8 activations per tensor, int8 weights per
channel, convolutions fused with their ReLU and residual add), observed on
calibration frames and converted to a graph of quantise/dequantise pairs.
``torch.compile`` with Inductor's freezing then lowers each pair around a
convolution to one oneDNN int8 convolution with prepacked weights: VNNI
dot products where the CPU has them, AMX tiles where it has AMX-INT8.

Why the compiled graph is run one frame at a time and for fixed shapes:
measured on this project's backbone (2-vCPU AVX-512 machine), Inductor's
kernels for symbolic shapes took 100-240 ms a frame against 44 ms for a
graph compiled for one input shape; a batch of frames of one size is
therefore split into frames, and each new frame size compiles once more.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, cast

import torch
from torch import Tensor, fx, nn

from detectord.detection.errors import PrecisionError

from .fusion import fold_norms

log = logging.getLogger(__name__)

SIZE_STEP = 32
"""torchvision's transform pads every batch to multiples of 32 pixels (``size_divisible``)."""


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """torchao's import and Inductor's first compile log notes meant for PyTorch's developers."""
    names = ("torch.utils._pytree", "torch.utils.cpp_extension", "torch._inductor", "torch._dynamo")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _exportable(backbone: nn.Module) -> fx.GraphModule:
    """The backbone, norms folded, each ReLU call its own node with no module behind it.

    torchvision's Bottleneck calls one ReLU module three times. The
    quantizer groups nodes by the module they came from, so the three calls
    would form one partition with three outputs, which it refuses.
    """
    folded, _ = fold_norms(backbone)
    for node in folded.graph.nodes:
        if node.op == "call_module" and isinstance(folded.get_submodule(node.target), nn.ReLU):
            node.op, node.target, node.meta = "call_function", torch.relu, {}
    folded.delete_all_unused_submodules()
    folded.recompile()
    return folded


def example_input(model: nn.Module) -> Tensor:
    """A batch of two zero images of the size the model's transform makes (padded to 32)."""
    transform: Any = model.transform
    height = -(-int(transform.min_size[-1]) // SIZE_STEP) * SIZE_STEP
    width = -(-int(transform.max_size) // SIZE_STEP) * SIZE_STEP
    return torch.zeros(2, 3, height, width)


def prepare(model: nn.Module, reduce_range: bool) -> fx.GraphModule:
    """``model``'s backbone exported and annotated, with an observer on every quantised tensor."""
    from torch.export import Dim

    with _quiet_torch_logs():
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    steps = {2: SIZE_STEP * Dim("height_steps", min=1, max=256), 3: SIZE_STEP * Dim("width_steps", min=1, max=256)}
    shapes = ({0: Dim("batch", min=1, max=1024), **steps},)
    graph = _exportable(cast(nn.Module, model.backbone))
    exported = torch.export.export(graph, (example_input(model),), dynamic_shapes=shapes)
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    with warnings.catch_warnings():  # the stem's max-pool follows a float ReLU and stays float: by design
        warnings.filterwarnings("ignore", message=r"The input of maxpool2d is not quantized")
        return prepare_pt2e(exported.module(), quantizer)


def observer_state(prepared: fx.GraphModule) -> dict[str, Tensor]:
    """What calibration learnt: the observers' statistics (the float weights stay the user's)."""
    return {k: v for k, v in prepared.state_dict().items() if k.startswith("activation_post_process_")}


def convert(prepared: fx.GraphModule) -> fx.GraphModule:
    """Quantise/dequantise pairs in place of the observers; the float weights it replaced are dropped."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    converted = convert_pt2e(prepared)
    allow_exported_model_train_eval(converted)  # the detector is put in eval mode as a whole
    used = {node.target for node in converted.graph.nodes if node.op == "get_attr"}
    for name, _ in list(converted.named_parameters()) + list(converted.named_buffers()):
        if name not in used:
            owner, _, attribute = name.rpartition(".")
            delattr(converted.get_submodule(owner), attribute)
    converted.delete_all_unused_submodules()
    return converted


def _cannot_compile(exc: Exception) -> PrecisionError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    return PrecisionError(
        f"int8-static: Inductor could not compile the int8 backbone ({type(exc).__name__}: {reason}); it needs a "
        "C++ compiler (g++) and Python's headers (python3-dev); use bf16 or fp32-fused without them"
    )


def check_compiler() -> None:
    """Inductor finds its C++ compiler, asked before the backbone is converted and compiled: without one the
    compile would fail only after those (ten seconds and more on a small CPU)."""
    from torch._inductor import cpp_builder

    try:
        cpp_builder.get_cpp_compiler()
    except Exception as exc:
        raise _cannot_compile(exc) from None


class Int8Backbone(nn.Module):
    """The converted backbone compiled by Inductor, one frame at a time, float32 features out."""

    def __init__(self, converted: fx.GraphModule) -> None:
        super().__init__()
        self.graph_module = converted
        self._compiled = torch.compile(converted.forward, dynamic=False)  # a function: not a second copy in the state
        self._sizes: set[tuple[int, int]] = set()

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        size = (int(images.shape[-2]), int(images.shape[-1]))
        if size not in self._sizes:
            self._compile(images[:1])
        parts = [self._compiled(images[i : i + 1]) for i in range(images.shape[0])]
        return OrderedDict((name, torch.cat([part[name] for part in parts])) for name in parts[0])

    def _compile(self, image: Tensor) -> None:
        """The first frame of a size: Inductor compiles the graph for it (freezing folds the weights)."""
        started = time.monotonic()
        log.info("compiling the int8 backbone for %dx%d input (once per frame size)", image.shape[-1], image.shape[-2])
        torch._inductor.config.freezing = True  # read at compile time, and compiles happen lazily
        torch._inductor.config.compile_threads = 1  # no pool of compiler processes left behind
        try:
            with _quiet_torch_logs(), torch.inference_mode():
                self._compiled(image)
        except Exception as exc:
            raise _cannot_compile(exc) from None
        self._sizes.add((int(image.shape[-2]), int(image.shape[-1])))
        log.info("int8 backbone compiled in %.1f s", time.monotonic() - started)
