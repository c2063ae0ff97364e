"""Runs the package's frozen graph in TensorFlow: the reference side of ``bench/ssdlite_reference.py``.

Executed by the Python of a separate environment that has ``tensorflow-cpu``
(never detectord's: detectord does not depend on TensorFlow), with only
NumPy and TensorFlow imported. Reads frames (RGB uint8) from an ``.npz``,
writes the graph's outputs for each, its anchors, and the time of each run.

    TF_PYTHON bench/ssdlite_tf.py GRAPH.pb FRAMES.npz OUT.npz [--threads N] [--repeat R]
"""

import argparse
import time

import numpy as np
import tensorflow as tf

OUTPUTS = ("detection_boxes:0", "detection_scores:0", "num_detections:0", "detection_classes:0")
ANCHORS = "Concatenate/concat:0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph")
    parser.add_argument("frames")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=0, help="intra- and inter-op threads; 0: TensorFlow's default")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each frame (the first is a warm-up)")
    args = parser.parse_args()
    graph_def = tf.compat.v1.GraphDef()
    with open(args.graph, "rb") as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads
    )
    frames = np.load(args.frames)["frames"]
    results = {name.split(":")[0]: [] for name in OUTPUTS}
    times = []
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        anchors = session.run(ANCHORS)
        session.run(OUTPUTS, feed_dict={"image_tensor:0": frames[:1]})
        for frame in frames:
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                out = session.run(OUTPUTS, feed_dict={"image_tensor:0": frame[None]})
                best = min(best, time.perf_counter() - start)
            times.append(best)
            for name, value in zip(OUTPUTS, out, strict=True):
                results[name.split(":")[0]].append(value[0])
    np.savez(
        args.out,
        anchors=anchors,
        seconds=np.asarray(times),
        tensorflow=np.asarray(tf.__version__),
        **{name: np.asarray(values) for name, values in results.items()},
    )


if __name__ == "__main__":
    main()
