"""``ssdlite-people`` as the pipeline sees it: BGR uint8 frames in, person detections in frame pixels out.

Around the network (``network.py``) this does what the graph does, in
float32 whatever precision the network runs in:

* the input resize, TensorFlow's legacy ``ResizeBilinear``
  (``align_corners=False``, no half-pixel centres): output pixel *i* samples
  the input at ``i * in / out``, which neither OpenCV's nor PyTorch's
  bilinear resize does (both use half-pixel centres); then ``x * 2/255 - 1``;
* box decoding (TensorFlow's Faster R-CNN box coder with the graph's scale
  factors) and sigmoid scores, background dropped;
* non-maximum suppression per class as ``BatchMultiClassNonMaxSuppression``
  does it: candidates above the graph's score threshold, greedy NMS at its
  IoU threshold keeping at most its per-class maximum, then sorted, clipped
  to the image, zero-area boxes dropped, and the best ``max_total`` kept.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import nms

from detectord.detection.torchvision.pt2e import _quiet_torch_logs as quiet_compiler
from detectord.detection.types import PERSON, Detections, ModelInfo

from .spec import GraphSpec

CATEGORIES = ("__background__", "person")
"""Label 1 is a person (the graph's ``detection_classes`` is its class index plus one), as everywhere in
detectord."""


def legacy_resize_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source indices and the interpolation weight of each output position, computed in
    float32 as TensorFlow's ``compute_interpolation_weights`` with its legacy scaler does."""
    scale = np.float32(size_in) / np.float32(size_out)
    position = np.arange(size_out, dtype=np.float32) * scale
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, size_in - 1)
    return lower, upper, (position - np.floor(position)).astype(np.float32)


class Preprocess(nn.Module):
    """Frames of one size to the network's input: RGB, resized as the graph resizes, scaled to -1..1.

    The sampling runs on channels-last pixels (rows, then columns, gathered whole), which is also the
    memory layout the channels-last schemes want; the others get a contiguous copy.
    """

    rows: Tensor
    cols: Tensor
    y_lerp: Tensor
    x_lerp: Tensor

    def __init__(self, spec: GraphSpec, frame_size: tuple[int, int], channels_last: bool) -> None:
        super().__init__()
        width, height = frame_size
        out_h, out_w = spec.input_size
        top, bottom, y_lerp = legacy_resize_weights(height, out_h)
        left, right, x_lerp = legacy_resize_weights(width, out_w)
        self.register_buffer("rows", torch.from_numpy(np.concatenate([top, bottom])))
        self.register_buffer("cols", torch.from_numpy(np.concatenate([left, right])))
        self.register_buffer("y_lerp", torch.from_numpy(y_lerp).view(-1, 1, 1))
        self.register_buffer("x_lerp", torch.from_numpy(x_lerp).view(-1, 1))
        self.out_h, self.out_w = out_h, out_w
        self.scale, self.shift = spec.scale, spec.shift
        self.channels_last = channels_last

    def forward(self, pixels: Tensor) -> Tensor:
        """``FloatTensor[B, 3, S, S]`` from BGR ``uint8[B, H, W, 3]`` of this module's frame size."""
        rows = pixels[:, self.rows].float()  # [B, 2S, W, 3]: the upper rows, then the lower ones
        sampled = rows[:, :, self.cols]  # [B, 2S, 2S, 3]
        left, right = sampled[:, :, : self.out_w], sampled[:, :, self.out_w :]
        across = left + (right - left) * self.x_lerp
        upper, lower = across[:, : self.out_h], across[:, self.out_h :]
        resized = upper + (lower - upper) * self.y_lerp  # [B, S, S, 3] BGR
        images = (resized.flip(-1) * self.scale - self.shift).permute(0, 3, 1, 2)
        return images if self.channels_last else images.contiguous()


def decode(encodings: Tensor, anchors: Tensor, scales: tuple[float, float, float, float]) -> Tensor:
    """Boxes (ymin, xmin, ymax, xmax, normalised) from box encodings (ty, tx, th, tw) and anchors in centre
    form (y, x, height, width), as TensorFlow's ``FasterRcnnBoxCoder.decode``."""
    ty, tx, th, tw = encodings.unbind(-1)
    ya, xa, ha, wa = anchors.unbind(-1)
    ty, tx, th, tw = ty / scales[0], tx / scales[1], th / scales[2], tw / scales[3]
    width, height = torch.exp(tw) * wa, torch.exp(th) * ha
    y_centre, x_centre = ty * ha + ya, tx * wa + xa
    return torch.stack(
        [y_centre - height / 2.0, x_centre - width / 2.0, y_centre + height / 2.0, x_centre + width / 2.0], dim=-1
    )


def suppress(boxes: Tensor, scores: Tensor, spec: GraphSpec, threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """One image's decoded ``boxes`` ``[A, 4]`` and per-class ``scores`` ``[A, K]`` (background dropped) to
    its detections: boxes (normalised ymin, xmin, ymax, xmax), scores and class indices (0 = the first class
    after the background), best first.

    Candidates score above ``threshold``, at least the graph's own. A higher threshold gives exactly the
    graph's detections above it: greedy NMS takes boxes best first, so a weaker box never suppresses a
    stronger one, and leaving the weak ones out only saves their pairwise overlaps (most of the time:
    1,917 anchors score above the graph's 1e-8).
    """
    threshold = max(threshold, spec.score_threshold)
    kept_boxes, kept_scores, kept_classes = [], [], []
    for k in range(scores.shape[1]):
        candidates = torch.nonzero(scores[:, k] > threshold).squeeze(1)
        keep = candidates[nms(boxes[candidates], scores[candidates, k], spec.iou_threshold)][: spec.max_per_class]
        kept_boxes.append(boxes[keep])
        kept_scores.append(scores[keep, k])
        kept_classes.append(torch.full_like(keep, k))
    all_boxes, all_scores = torch.cat(kept_boxes), torch.cat(kept_scores)
    order = torch.argsort(all_scores, descending=True, stable=True)
    clipped = all_boxes[order].clamp(0.0, 1.0)
    nonempty = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) > 0
    order, clipped = order[nonempty][: spec.max_total], clipped[nonempty][: spec.max_total]
    return clipped, all_scores[order], torch.cat(kept_classes)[order]


class SSDLiteDetector:
    """The person graph's port on one device: frames in, ``Detections`` out (``FrameDetector``).

    With ``compiled``, everything from the frames' pixels to decoded boxes and scores (resize, network,
    box decoding) is one function compiled by Inductor, weights frozen into it, for one frame of each frame
    size; a batch runs frame by frame. NMS stays eager.
    """

    categories: tuple[str, ...] = CATEGORIES

    def __init__(
        self,
        model: nn.Module,
        spec: GraphSpec,
        info: ModelInfo,
        device: torch.device,
        score_threshold: float,
        *,
        channels_last: bool = False,
        compiled: bool = False,
    ) -> None:
        self.model = model.eval()
        self.channels_last = channels_last
        self.spec = spec
        self.info = info
        self.device = device
        self.score_threshold = score_threshold
        self.anchors = torch.from_numpy(spec.anchor_centres).to(device)
        self._preprocess: dict[tuple[int, int], Preprocess] = {}
        """One per frame size: cameras of several sizes share the inference stage, a batch per size."""
        self.compiled = compiled
        self._compiled_for: dict[tuple[int, int], Callable[[Tensor], tuple[Tensor, Tensor]]] = {}

    def _pixels(self, frames: Sequence[np.ndarray]) -> tuple[Tensor, Preprocess]:
        height, width = frames[0].shape[:2]
        if (width, height) not in self._preprocess:
            self._preprocess[width, height] = Preprocess(self.spec, (width, height), self.channels_last).to(self.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            pixels = torch.stack([torch.from_numpy(frame) for frame in frames]).to(self.device)
        return pixels, self._preprocess[width, height]

    def preprocess(self, frames: Sequence[np.ndarray]) -> Tensor:
        """The network's input for ``frames`` (BGR uint8 of one size)."""
        pixels, preprocess = self._pixels(frames)
        return preprocess(pixels)

    def _decoded(self, pixels: Tensor, preprocess: Preprocess) -> tuple[Tensor, Tensor]:
        encodings, logits = self.model(preprocess(pixels))
        boxes = decode(encodings.float(), self.anchors, self.spec.decode_scales)
        scores = torch.sigmoid(logits.float() / self.spec.logit_scale)[..., self.spec.background :]
        return boxes, scores

    def raw(self, frames: Sequence[np.ndarray], threshold: float = 0.0) -> list[tuple[Tensor, Tensor, Tensor]]:
        """What the graph outputs for each frame, those scoring above ``threshold``: boxes (normalised ymin,
        xmin, ymax, xmax), scores, class indices, best first (``threshold`` 0: all of the graph's)."""
        with torch.inference_mode():
            pixels, preprocess = self._pixels(frames)
            boxes, scores = self._compiled(pixels, preprocess) if self.compiled else self._decoded(pixels, preprocess)
            return [suppress(b, s, self.spec, threshold) for b, s in zip(boxes, scores, strict=True)]

    def _compiled(self, pixels: Tensor, preprocess: Preprocess) -> tuple[Tensor, Tensor]:
        """One frame at a time through the graph compiled for one frame of this size: a graph for symbolic
        batches ran slower per frame here (6.9 against 6.4 ms at 4 frames), and one shape compiles once.

        Dynamo keeps its guards on the modules (about 0.4 ms a call here): its compiled graphs are cached by
        the code they come from, which every detector shares, so without them a second detector in the
        process (another scheme) silently ran the first one's graph.
        """
        size = (int(pixels.shape[2]), int(pixels.shape[1]))
        if size not in self._compiled_for:
            self._compiled_for[size] = torch.compile(
                functools.partial(self._decoded, preprocess=preprocess), dynamic=False
            )
        torch._inductor.config.freezing = True  # read when a graph compiles, which happens on first use
        torch._inductor.config.compile_threads = 1  # no pool of compiler processes left behind
        with quiet_compiler():
            parts = [self._compiled_for[size](pixels[i : i + 1]) for i in range(pixels.shape[0])]
        return torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not frames:
            return []
        height, width = frames[0].shape[:2]
        scale = torch.tensor([height, width, height, width], dtype=torch.float32, device=self.device)
        found = []
        for boxes, scores, classes in self.raw(frames, self.score_threshold):
            pixels = (boxes * scale)[:, [1, 0, 3, 2]]  # x1, y1, x2, y2
            found.append(
                Detections(
                    boxes=pixels.cpu().numpy().astype(np.float32),
                    scores=scores.cpu().numpy().astype(np.float32),
                    labels=(classes.cpu().numpy() + PERSON).astype(np.int32),
                )
            )
        return found
