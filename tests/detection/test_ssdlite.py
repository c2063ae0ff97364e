"""ssdlite-people: the graph reader, the port against what TensorFlow output on real frames, its schemes.

The fixture (``data/ssdlite_reference.npz``) was written by ``bench/ssdlite_reference.py`` running the
package's graph in TensorFlow on frames of OpenCV's pedestrian sample; it holds the frame numbers and the
graph's outputs, so these tests need no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.detection import (
    PERSON,
    DetectorOptions,
    ModelOptionError,
    Precision,
    PrecisionError,
    check_options,
    load,
)
from detectord.detection.registry import calibrate
from detectord.detection.ssdlite import INSTALL, NAME, graph_file, package_graph
from detectord.detection.ssdlite.graphdef import GraphError, _graph_message, parse_graph, read_graph
from detectord.detection.ssdlite.spec import read_spec

FIXTURE = Path(__file__).with_name("data") / "ssdlite_reference.npz"
PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SIZE = (427, 240)
CPU_SCHEMES = (
    "fp32", "fp32-fused", "fp32-fused+channels_last", "bf16", "bf16+channels_last", "autocast",
    "fp32-fused+channels_last+compiled",
)  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {name: data[name] for name in data.files}


def read_frames(numbers: list[int]) -> list[np.ndarray]:
    """Frames ``numbers`` of the sample, at 427x240 as the bench read them."""
    capture = cv2.VideoCapture(str(PEDESTRIANS))
    frames, number = [], 0
    while number <= max(numbers):
        ok, frame = capture.read()
        assert ok, f"{PEDESTRIANS} ended at frame {number} (install.sh installs opencv-doc)"
        if number in numbers:
            frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
        number += 1
    return frames


@pytest.fixture(scope="module")
def frames(reference: dict[str, np.ndarray]) -> list[np.ndarray]:
    return read_frames([int(n) for n in reference["frame_numbers"]])


@pytest.fixture(scope="module")
def fp32() -> object:
    return load(DetectorOptions(name=NAME, precision="fp32"), SIZE)


def test_a_truncated_graph_is_one_line_naming_the_file(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.pb"
    truncated.write_bytes(graph_file("default").read_bytes()[:100_000])
    with pytest.raises(GraphError) as error:
        read_graph(truncated)
    assert str(truncated) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ModelOptionError, match="not a TensorFlow graph"):
        check_options(DetectorOptions(name=NAME, weights=str(truncated)))


def test_a_foreign_graph_names_the_node_it_lacks(tmp_path: Path) -> None:
    message = _graph_message()()
    node = message.node.add(name="some_other_model", op="Placeholder")
    node.attr["dtype"].type = 1
    foreign = tmp_path / "other.pb"
    foreign.write_bytes(message.SerializeToString())
    with pytest.raises(GraphError, match="has no node 'image_tensor'"):
        read_spec(read_graph(foreign))
    with pytest.raises(GraphError, match="not a TensorFlow graph"):
        parse_graph(b"PK\x03\x04 a zip file, not a graph", "zip")


def test_the_anchors_are_the_graphs(reference: dict[str, np.ndarray]) -> None:
    spec = read_spec(read_graph(graph_file("default")))
    assert len(spec.anchors) == int(reference["anchor_count"]) == 1917
    np.testing.assert_array_equal(spec.anchors[:3], reference["anchors_first"])
    np.testing.assert_array_equal(spec.anchors[-3:], reference["anchors_last"])


def test_the_port_reproduces_the_graphs_detections_on_real_frames(
    fp32: object, frames: list[np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    """Box for box, in the graph's order, every detection the graph made above 0.05."""
    for i, (boxes, scores, classes) in enumerate(fp32.raw(frames)):  # type: ignore[attr-defined]
        want = reference["detection_scores"][i][: int(reference["num_detections"][i])]
        count = int((want >= 0.05).sum())
        assert count > 0
        np.testing.assert_allclose(scores.numpy()[:count], want[:count], atol=1e-4)
        np.testing.assert_allclose(boxes.numpy()[:count], reference["detection_boxes"][i][:count], atol=1e-4)
        assert (classes.numpy()[:count] + 1 == reference["detection_classes"][i][:count]).all()


def test_two_people_walking_in_the_first_frame_are_found(fp32: object, frames: list[np.ndarray]) -> None:
    (found,) = fp32([frames[0]])  # type: ignore[operator]
    assert (found.scores >= 0.9).sum() == 2
    assert (found.labels == PERSON).all()


@pytest.mark.parametrize("precision", CPU_SCHEMES)
def test_every_cpu_scheme_keeps_the_output_contract(precision: str, frames: list[np.ndarray]) -> None:
    detector = load(DetectorOptions(name=NAME, precision=precision, force_precision=True), SIZE)
    found = detector(frames[:2])
    assert len(found) == 2
    for dets in found:
        assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (len(dets), 4)
        assert dets.scores.dtype == np.float32 and dets.labels.dtype == np.int32
        assert list(dets.scores) == sorted(dets.scores, reverse=True)
        assert (dets.labels == PERSON).all()
        assert (dets.boxes[:, [0, 2]] <= SIZE[0]).all() and (dets.boxes[:, [1, 3]] <= SIZE[1]).all()
        assert (dets.scores >= 0.9).sum() >= 1, f"{precision} lost the people in plain view"
    assert detector.info.precision == precision


@pytest.mark.slow
def test_int8_static_calibrated_on_the_video_keeps_the_contract(tmp_path: Path, frames: list[np.ndarray]) -> None:
    from detectord.detection.torchvision.quantization import save_calibration

    options = DetectorOptions(name=NAME)
    artifact = calibrate(options, frames, SIZE, str(PEDESTRIANS))
    assert artifact["model"] == NAME and artifact["frames"] == len(frames)
    path = tmp_path / "int8.pt"
    save_calibration(artifact, path)
    detector = load(DetectorOptions(name=NAME, precision="int8-static", calibration=path), SIZE)
    (found,) = detector([frames[0]])
    assert found.boxes.dtype == np.float32 and (found.scores >= 0.8).sum() == 2


def test_compiled_is_refused_where_it_was_not_measured() -> None:
    with pytest.raises(PrecisionError, match="compiled already"):
        Precision.parse("int8-static+compiled").check_device("cpu")
    with pytest.raises(PrecisionError, match="CPU only"):
        Precision.parse("bf16+compiled").check_device("cuda")
    with pytest.raises(PrecisionError, match="ssdlite-people's"):
        load(
            DetectorOptions(name="fasterrcnn_mobilenet_v3_large_320_fpn", weights="random", precision="fp32+compiled"),
            SIZE,
        )
    assert Precision.parse("bf16+compiled+channels_last") == Precision.parse("bf16+channels_last+compiled")
    assert Precision.parse("bf16+compiled+channels_last").name == "bf16+channels_last+compiled"


def test_a_compiled_detector_gives_the_same_detections_for_another_frame_size(frames: list[np.ndarray]) -> None:
    """Each frame size has a compiled function of its own: a graph never meets another size's resize."""
    compiled = load(DetectorOptions(name=NAME, precision="fp32-fused+compiled"), SIZE)
    eager = load(DetectorOptions(name=NAME, precision="fp32-fused"), SIZE)
    for frame in (frames[0], cv2.resize(frames[0], (640, 360)), frames[1]):
        (want,), (got,) = eager([frame]), compiled([frame])
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-3)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=0.5)


def test_two_compiled_detectors_in_one_process_each_run_their_own_graph(frames: list[np.ndarray]) -> None:
    """Dynamo caches compiled graphs by the code they come from, which every detector shares: with its module
    guards skipped, a bf16 detector loaded after a float32 one ran the float32 graph (and scored 1.000 against
    fp32 in bench/ssdlite_schemes.py)."""
    runs = {}
    for precision in ("fp32-fused+channels_last+compiled", "bf16+channels_last+compiled", "bf16+channels_last"):
        detector = load(DetectorOptions(name=NAME, precision=precision, force_precision=True), SIZE)
        runs[precision] = detector.raw([frames[1]])[0][1].numpy()[:5]  # type: ignore[attr-defined]
    np.testing.assert_allclose(runs["bf16+channels_last+compiled"], runs["bf16+channels_last"], atol=0.02)
    assert not np.allclose(runs["bf16+channels_last+compiled"], runs["fp32-fused+channels_last+compiled"], atol=1e-4)


def test_int8_dynamic_is_refused_in_one_line() -> None:
    with pytest.raises(PrecisionError, match="all convolutions"):
        load(DetectorOptions(name=NAME, precision="int8-dynamic"), SIZE)


def test_tune_measures_real_fidelity_on_this_model(frames: list[np.ndarray]) -> None:
    from detectord.detection.torchvision.tuning import measure, recommend

    results = measure(
        frames, name=NAME, weights="default", profile="default", device="cpu", frame_size=SIZE, calibration=None,
        main_threshold=0.5, schemes=["fp32", "fp32-fused", "int8-dynamic"],
    )  # fmt: skip
    by_scheme = {r.precision: r for r in results}
    assert by_scheme["fp32-fused"].fidelity_map is not None and by_scheme["fp32-fused"].fidelity_map > 0.99
    assert by_scheme["fp32-fused"].main_person_iou is not None and by_scheme["fp32-fused"].main_person_iou > 0.99
    assert by_scheme["int8-dynamic"].refused
    best, test = recommend(results, trained=True)
    assert "fidelity" in test and best.precision in ("fp32", "fp32-fused")


def test_the_package_missing_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import detectord.detection.ssdlite as backend
    from detectord.detection.registry import weights_unavailable

    assert package_graph() is not None
    monkeypatch.setattr(backend, "package_graph", lambda: None)
    with pytest.raises(ModelOptionError) as error:
        check_options(DetectorOptions(name=NAME))
    assert INSTALL in str(error.value) and "\n" not in str(error.value)
    assert INSTALL in (weights_unavailable(DetectorOptions(name=NAME)) or "")


def test_the_demo_runs_it_where_torchvisions_weights_cannot_be_had(monkeypatch: pytest.MonkeyPatch) -> None:
    import detectord.detection.ssdlite as backend
    from detectord.daemon.cli.demo import without_download
    from detectord.daemon.config import DaemonConfig, SourceConfig

    monkeypatch.setenv("DETECTORD_OFFLINE", "1")
    config = DaemonConfig(source=SourceConfig(uri=str(PEDESTRIANS)))
    assert without_download(config).model.name == NAME
    monkeypatch.setattr(backend, "package_graph", lambda: None)
    assert without_download(config).model.name == "hog-people"


def test_random_weights_and_other_profiles_are_refused() -> None:
    with pytest.raises(ModelOptionError, match="no random version"):
        check_options(DetectorOptions(name=NAME, weights="random"))
    with pytest.raises(ModelOptionError, match="own input size"):
        check_options(DetectorOptions(name=NAME, profile="native"))


def test_analyze_without_the_package_says_how_to_install_it_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import detectord.detection.ssdlite as backend\n"
        "backend.package_graph = lambda: None\n"
        "from detectord.daemon.cli.main import entry_point\n"
        f"sys.argv = ['detectord', 'analyze', {str(PEDESTRIANS)!r}, '--model', 'ssdlite-people', "
        f"'--out', {str(tmp_path / 'out.jsonl')!r}]\n"
        "entry_point()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert INSTALL in line and "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
