"""What the SSDLite graph does around its network, read from its own nodes: input, anchors, decoding, NMS.

Every number here comes out of the graph (constants, op attributes, or the
anchor generator's subgraph evaluated by ``constfold``), so the port follows
the graph it is given rather than a configuration copied by hand; a graph
of another shape fails here with the node it lacked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constfold import evaluate
from .graphdef import Graph, GraphError

INPUT = "image_tensor"
NETWORK_INPUT = "FeatureExtractor/MobilenetV2/MobilenetV2/input"
RESIZE = "Preprocessor/map/while/ResizeImage/resize_images/ResizeBilinear"
RESIZE_SIZE = "Preprocessor/map/while/ResizeImage/stack"
SCALE, SHIFT = "Preprocessor/mul/x", "Preprocessor/sub/y"
ANCHORS = "Concatenate/concat"
DECODE_SCALES = tuple(f"Postprocessor/Decode/truediv{suffix}/y" for suffix in ("", "_1", "_2", "_3"))
LOGIT_SCALE = "Postprocessor/scale_logits/y"
SCORE_CONVERSION = "Postprocessor/convert_scores"
CLASS_SLICE = "Postprocessor/Slice/begin"
NMS_SCOPE = "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/MultiClassNonMaxSuppression"
NMS = f"{NMS_SCOPE}/non_max_suppression/NonMaxSuppressionV3"
PER_CLASS, TOTAL = f"{NMS_SCOPE}/Minimum/x", f"{NMS_SCOPE}/Minimum_1/x"
OUTPUTS = ("detection_boxes", "detection_scores", "num_detections", "detection_classes")


@dataclass(frozen=True)
class GraphSpec:
    """The graph's pre- and post-processing, as numbers."""

    input_size: tuple[int, int]
    """(height, width) every image is resized to (``ResizeBilinear``, legacy sampling)."""
    scale: float
    shift: float
    """Pixels 0..255 become ``x * scale - shift`` (-1..1)."""
    anchors: np.ndarray
    """float32[A, 4]: ymin, xmin, ymax, xmax, normalised, in the order the predictors list them."""
    decode_scales: tuple[float, float, float, float]
    """The box coder's scale factors for ty, tx, th, tw."""
    logit_scale: float
    background: int
    """Classes below this index (the background) are dropped before NMS."""
    iou_threshold: float
    score_threshold: float
    max_per_class: int
    max_total: int
    predictors: list[str]
    """The box predictor scopes, one per feature map."""

    @property
    def anchor_centres(self) -> np.ndarray:
        """float32[A, 4]: y centre, x centre, height, width of each anchor (the box coder's form)."""
        ymin, xmin, ymax, xmax = self.anchors.T
        height, width = ymax - ymin, xmax - xmin
        return np.stack([ymin + height / 2, xmin + width / 2, height, width], axis=1).astype(np.float32)


def _scalar(graph: Graph, name: str) -> float:
    value = graph.constant(name)
    if value.size != 1:
        raise GraphError(f"{graph.source}: {name} holds {value.size} values, not one")
    return float(value.reshape(-1)[0])


def read_spec(graph: Graph) -> GraphSpec:
    """The pre- and post-processing of an SSD graph exported by TensorFlow's Object Detection API."""
    graph.node(INPUT)
    for name in OUTPUTS:
        graph.node(name)
    resize = graph.node(RESIZE)
    if resize.attr("align_corners") or ("half_pixel_centers" in resize.attrs and resize.attr("half_pixel_centers")):
        raise GraphError(f"{graph.source}: the input resize is not TensorFlow's legacy bilinear sampling")
    if graph.node(SCORE_CONVERSION).op != "Sigmoid":
        raise GraphError(f"{graph.source}: scores are converted by {graph.node(SCORE_CONVERSION).op}, not a sigmoid")
    height, width = (int(v) for v in graph.constant(RESIZE_SIZE))
    nms = graph.node(NMS)
    predictors: list[str] = []
    while f"BoxPredictor_{len(predictors)}/BoxEncodingPredictor/BiasAdd" in graph.nodes:
        predictors.append(f"BoxPredictor_{len(predictors)}")
    if not predictors:
        raise GraphError(f"{graph.source} has no SSD box predictors (BoxPredictor_0)")
    anchors = evaluate(graph, ANCHORS).astype(np.float32)
    if anchors.ndim != 2 or anchors.shape[1] != 4:
        raise GraphError(f"{graph.source}: anchors of shape {list(anchors.shape)}")
    begin = graph.constant(CLASS_SLICE)
    return GraphSpec(
        input_size=(height, width),
        scale=_scalar(graph, SCALE),
        shift=_scalar(graph, SHIFT),
        anchors=anchors,
        decode_scales=tuple(_scalar(graph, name) for name in DECODE_SCALES),  # type: ignore[arg-type]
        logit_scale=_scalar(graph, LOGIT_SCALE),
        background=int(begin[-1]),
        iou_threshold=_scalar(graph, nms.inputs[3]),
        score_threshold=_scalar(graph, nms.inputs[4]),
        max_per_class=int(_scalar(graph, PER_CLASS)),
        max_total=int(_scalar(graph, TOTAL)),
        predictors=predictors,
    )
