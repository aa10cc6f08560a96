"""``import_dlib_models``: convert the two DNNs of ``face_recognition_models`` into the model store.

Writes ``dlib-resnet-embedder`` and ``dlib-mmod-detector``, each FP32 (default) + FP16, with manifests.
The 68-point landmark model in the same package is never touched (its licence is not commercial-friendly).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import warnings
from pathlib import Path

import onnx

from facestream.engines.faces.vectors import CHIP_SIZE, EMBEDDING_SIZE
from facestream.engines.fp16 import convert_to_fp16
from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.store import ModelEntry, ModelStore
from facestream.errors import FacestreamError

from . import detector, embedder
from .reader import read_dlib_net

log = logging.getLogger(__name__)

EMBEDDER_NAME = "dlib-resnet-embedder"
DETECTOR_NAME = "dlib-mmod-detector"
EMBEDDER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DETECTOR_FILE = "mmod_human_face_detector.dat"
LANDMARKS5_FILE = "shape_predictor_5_face_landmarks.dat"
LICENCE = "CC0 1.0, dlib models by Davis King"
PACKAGE = "face_recognition_models"


def model_file(filename: str) -> Path:
    """Path of a model file inside the installed ``face_recognition_models`` package.

    Found through the package's location rather than by importing it: its ``__init__`` needs
    ``pkg_resources``, which recent setuptools no longer ships.
    """
    if "68" in filename:
        raise FacestreamError(
            "the 68-point landmark model is not licensed for commercial use; use the 5-point one"
        )
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FacestreamError(f"package {PACKAGE!r} is not installed: pip install face-recognition-models")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise FacestreamError(f"{path} is missing from the {PACKAGE} package")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _embedder_manifest(src: Path, mean: tuple[float, float, float]) -> Manifest:
    size = CHIP_SIZE
    return Manifest(
        name=EMBEDDER_NAME,
        task="embedder",
        inputs=[TensorSpec(name=embedder.INPUT, shape=["batch", 3, size, size], value_range=(0.0, 255.0))],
        outputs=[TensorSpec(name=embedder.OUTPUT, shape=["batch", EMBEDDING_SIZE])],
        profiles={
            embedder.INPUT: ProfileSpec(
                min=[1, 3, size, size], opt=[16, 3, size, size], max=[64, 3, size, size]
            )
        },
        preprocessing={
            "layout": "NCHW",
            "color": "RGB",
            "dtype": "float32",
            "range": [0, 255],
            "chip": f"dlib get_face_chip: 5-point landmarks, {size}x{size}, padding 0.25 (engines/faces/align.py)",
            "normalisation": f"inside the graph: (x - mean_rgb) / 256, mean_rgb = {list(mean)}",
            "output": "raw 128-d descriptor, not L2-normalised; same person if euclidean distance < 0.6",
        },
        licence=LICENCE,
        source=f"{PACKAGE}/models/{EMBEDDER_FILE} (sha256 {_sha256(src)})",
        extra={"mean_rgb": list(mean), "distance_threshold": 0.6, "lfw_accuracy": 0.9938},
    )


def _detector_manifest(src: Path, net) -> Manifest:
    stride, offset = detector.receptive_mapping(net)
    opts = net.loss_options
    win_w, win_h = opts["detector_windows"][0]
    return Manifest(
        name=DETECTOR_NAME,
        task="detector",
        inputs=[
            TensorSpec(name=detector.INPUT, shape=["batch", 3, "height", "width"], value_range=(0.0, 255.0))
        ],
        outputs=[TensorSpec(name=detector.OUTPUT, shape=["batch", 1, "out_height", "out_width"])],
        # opt: dlib's tiled pyramid of a 640x360 frame is 1353x662; of 1280x720, 2644x1302.
        profiles={
            detector.INPUT: ProfileSpec(min=[1, 3, 32, 32], opt=[1, 3, 1353, 662], max=[4, 3, 2700, 2000])
        },
        preprocessing={
            "layout": "NCHW",
            "color": "RGB",
            "dtype": "float32",
            "range": [0, 255],
            "normalisation": f"inside the graph: (x - mean_rgb) / 256, mean_rgb = {list(net.input_mean_rgb)}",
            "pyramid": "dlib tiled pyramid (engines/faces/pyramid.py): levels x5/6, padding 10, border 11, "
            "background = mean colour",
            "decoding": f"score > threshold at output cell p -> {win_w}x{win_h} box centred on input {stride}*p+{offset}",
        },
        licence=LICENCE,
        source=f"{PACKAGE}/models/{DETECTOR_FILE} (sha256 {_sha256(src)})",
        extra={
            "mean_rgb": list(net.input_mean_rgb),
            "stride": stride,
            "offset": offset,
            "window": [win_w, win_h],
            "pyramid_n": 6,
            "pyramid_padding": net.input_options["pyramid_padding"],
            "pyramid_outer_padding": net.input_options["pyramid_outer_padding"],
            "nms_iou_threshold": opts["nms_iou_threshold"],
            "nms_percent_covered_threshold": opts["nms_percent_covered_threshold"],
        },
    )


def _both_precisions(model: onnx.ModelProto) -> dict[str, bytes]:
    with warnings.catch_warnings():
        # The converter warns for every weight below FP16's range that it rounds; expected and harmless here.
        warnings.simplefilter("ignore", UserWarning)
        fp16 = convert_to_fp16(model)
    return {"fp32": model.SerializeToString(), "fp16": fp16.SerializeToString()}


def import_dlib_models(store: ModelStore | None = None) -> list[ModelEntry]:
    """Convert dlib's embedder and MMOD detector to ONNX (FP32 + FP16) and put them in ``store``."""
    store = store or ModelStore()
    entries = []
    src = model_file(EMBEDDER_FILE)
    net = read_dlib_net(src)
    entries.append(
        store.put(_embedder_manifest(src, net.input_mean_rgb), _both_precisions(embedder.build_embedder(net)))
    )
    log.info("imported %s from %s", EMBEDDER_NAME, src)
    src = model_file(DETECTOR_FILE)
    net = read_dlib_net(src)
    entries.append(store.put(_detector_manifest(src, net), _both_precisions(detector.build_detector(net))))
    log.info("imported %s from %s", DETECTOR_NAME, src)
    return entries
