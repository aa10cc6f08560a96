"""The ``inference`` section, with the face detector as a discriminated union on ``type``.

Old forms still load, mapped onto the new one (docs/config.md lists the mapping):
``detector: hog`` is ``detector: {type: hog}``; ``inference.hog_upsample`` is ``inference.detector.upsample``
(ignored by detectors other than hog, as before); ``inference.min_face`` and ``inference.score_threshold``
move into ``inference.detector``. A mapping with no ``type`` is the default detector (hog).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from facestream.engines.faces.detector_specs import (
    DEFAULT_DETECTOR,
    SPEC_BY_TYPE,
    DetectorConfig,
    DetectorSpec,
    HogSpec,
)

from .sections import Section

# old key in inference -> key in inference.detector
LEGACY_DETECTOR_KEYS = {"hog_upsample": "upsample", "min_face": "min_face", "score_threshold": "score_threshold"}


def detector_from_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (an inference mapping) with the old detector forms rewritten to ``detector: {type: ...}``."""
    data = dict(data)
    det = data.get("detector", {})
    if isinstance(det, str):
        det = {"type": det}
    elif isinstance(det, dict):
        det = {"type": DEFAULT_DETECTOR, **det}
    elif not isinstance(det, DetectorSpec):
        return data  # not a detector at all: validation says so
    for old, new in LEGACY_DETECTOR_KEYS.items():
        if old not in data:
            continue
        value = data.pop(old)
        if isinstance(det, DetectorSpec):
            det = det.model_dump()
        if new in det:
            raise ValueError(f"inference.{old} is the old name of inference.detector.{new}; set only the new one")
        if new not in SPEC_BY_TYPE.get(det.get("type"), DetectorSpec).model_fields:
            continue  # an old key of a setting this detector does not have (hog_upsample never applied to cnn)
        det[new] = value
    data["detector"] = det
    return data


class InferenceConfig(Section):
    detector: DetectorConfig = Field(
        default_factory=HogSpec,
        title="Face detector: {type: hog, upsample, min_face, score_threshold} (dlib HOG, CPU) or "
        "{type: cnn, min_face, score_threshold} (dlib's MMOD CNN as ONNX/TensorRT) or "
        "{type: mtcnn, min_face, thresholds, regions, threads} (MTCNN as ONNX)",
    )
    backend: Literal["auto", "onnxruntime", "tensorrt"] = Field(default="auto", title="Inference backend for ONNX models")
    embed: bool = Field(default=True, title="Compute face embeddings (needed for recognition)")
    recognizer: Literal["gallery", "classifier", "none"] = Field(
        default="gallery", title="gallery = open-set matching; classifier = a trained closed-set model"
    )
    aggregator: Literal["mean", "quality", "gru", "attention"] = Field(
        default="quality", title="How a track's embeddings are combined: mean, quality-weighted mean, or the learned GRU / attention heads"
    )
    classifier_model: str = Field(default="", title="Store name of the classifier when recognizer = classifier")
    gallery: str = Field(default="", title="Gallery: a SQLite file or a postgresql:// URL (shared by hosts); empty = $FACESTREAM_GALLERY or ~/.local/share/facestream/gallery.db")
    models_dir: str = Field(default="", title="Model store; empty = $FACESTREAM_MODELS or ~/.cache/facestream/models")
    detect_ahead: bool = Field(default=False, title="With two or more streams, detect the next queued frames while the current ones are recognised (the region planner: HOG, MTCNN): always about one frame's processing more latency (p50 +50-180 ms); on 2 cores more results/s in some back-to-back runs and fewer in others, so off by default; docs/detection.md")
    throttle_ms: float = Field(default=0.0, ge=0, le=60000, title="Artificial delay per batch (for fault tests only)")

    @model_validator(mode="before")
    @classmethod
    def _old_detector_forms(cls, data: Any) -> Any:
        return detector_from_legacy(data) if isinstance(data, dict) else data
