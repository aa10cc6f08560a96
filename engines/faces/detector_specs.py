"""The face detector choices, one pydantic model per kind, told apart by ``type`` (a discriminated union).

A spec holds a detector's settings and builds it; nothing else branches on the detector's name. To add a
detector: write a ``DetectorSpec`` subclass with ``type: Literal["name"]`` and ``make`` (and ``still_options``
if it searches still photos differently), and add it to ``DetectorConfig`` below (the pipeline config, its
docs and ``FaceAnalyzer`` pick it up from there).

This module imports only pydantic, so the pipeline config can use it without loading OpenCV or dlib.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from facestream.errors import FacestreamError

DEFAULT_DETECTOR = "hog"
# A still photo with a shorter side below this is searched for small faces (HOG: 2x). `facestream identify`
# and enrolment shrink photos to 1600 px first (pipeline/recognition/enrolment.py), so every photo they see
# is: as face_recognition's CLI does (shrink to 1600 px, then HOG upsampled once). At 1000 a phone's 4:3
# photo (1600x1200 once shrunk) was searched as it is, and its 40-80 px faces were missed.
SMALL_STILL_SIDE = 1601
# A photo whose shorter side is at most this, where no face was found, is searched again at 4x (HOG
# upsampled twice: its 80 px window covers 20 px faces): a thumbnail or a crop holding a 20-40 px face.
# Only then: searching every small photo at 4x moved the faces found on LFW's 250 px photos and named
# fewer of them. Enlarged 4x the shorter side stays within 1600 px.
TINY_STILL_SIDE = SMALL_STILL_SIDE // 4


class DetectorSpec(BaseModel):
    """Settings every detector has. ``min_face`` also drops smaller detections in the inference stage."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    type: str
    min_face: int = Field(default=40, ge=8, le=4096, title="Smallest face side in detector pixels; smaller faces are dropped")
    score_threshold: float = Field(default=0.0, title="Detector score threshold")
    low_light: bool = Field(default=True, title="Dark frames (mean luma < 60) are denoised, brightened and CLAHE-equalised for the detector, HOG's threshold lowered by 0.4 there (engines/faces/low_light.py)")

    def options(self) -> dict[str, Any]:
        """Keyword arguments of this kind's detector class, from the spec's fields."""
        raise NotImplementedError

    @staticmethod
    def make(store: Any, backend: str, precision: str | None, backend_opts: dict[str, Any], **options: Any):
        """The detector object (``detect(rgb) -> list[Detection]``) built from detector-class options."""
        raise NotImplementedError

    @classmethod
    def still_options(cls, shorter_side: int) -> dict[str, Any]:
        """Detector-class options (over the class defaults) for a still photo with this shorter side in pixels.

        A class method: enrolment and ``facestream identify`` name the detector by its type, not a full spec.
        """
        return {}

    @classmethod
    def still_retry_options(cls, shorter_side: int) -> dict[str, Any] | None:
        """Options to search a still photo again with when ``still_options`` found no face (None: no retry)."""
        return None


class HogSpec(DetectorSpec):
    """dlib's HOG + linear SVM detector on the CPU."""

    type: Literal["hog"] = Field(default="hog", title="Detector kind")
    min_face: int = Field(default=32, ge=8, le=4096, title="Smallest face side in detector pixels; smaller faces are dropped")
    upsample: int = Field(default=1, ge=0, le=3, title="HOG: times the image is doubled first (finds smaller faces, slower)")
    regions: bool = Field(default=True, title="HOG: search only around followed faces plus a rolling scan of the frame (engines/faces/planner.py); false = the whole frame every frame")
    threads: int = Field(default=2, ge=1, le=64, title="HOG with regions: threads running the detector on a frame's regions")
    track_margin: float = Field(default=0.4, ge=0.0, le=2.0, title="HOG with regions: a followed face is kept at this much under score_threshold while it scored over it within the last 8 frames (hysteresis; a weak box elsewhere never starts a face); 0 = off")
    luma: bool = Field(default=True, title="HOG with regions: search video frames' luma, not their colour (dlib takes the strongest of the three channels' gradients): about 25 % less CPU; on the street video it finds 97 % of the faces colour HOG finds (docs/detection.md)")

    def options(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "score_threshold": self.score_threshold}

    @staticmethod
    def make(store: Any, backend: str, precision: str | None, backend_opts: dict[str, Any], **options: Any):
        from .detector import HogDetector

        return HogDetector(**options)

    @classmethod
    def still_retry_options(cls, shorter_side: int) -> dict[str, Any] | None:
        return {"upsample": 2} if shorter_side <= TINY_STILL_SIDE else None

    @classmethod
    def still_options(cls, shorter_side: int) -> dict[str, Any]:
        # HOG finds faces from ~80 px; photos are searched at 2x so 40-80 px faces are found (and then refused
        # as too small with that reason, rather than as "no face"): about 0.6 s for 1600x1200 on one core.
        return {"upsample": 1 if shorter_side < SMALL_STILL_SIDE else 0}


class CnnSpec(DetectorSpec):
    """dlib's MMOD CNN as ONNX on ONNX Runtime or TensorRT; `min_face` also sets its search scale."""

    type: Literal["cnn"] = Field(default="cnn", title="Detector kind")

    def options(self) -> dict[str, Any]:
        return {"min_face": self.min_face, "score_threshold": self.score_threshold}

    @staticmethod
    def make(store: Any, backend: str, precision: str | None, backend_opts: dict[str, Any], **options: Any):
        from .detector import FaceDetector

        return FaceDetector(store=store, backend=backend, precision=precision, **options, **backend_opts)


class MtcnnSpec(DetectorSpec):
    """MTCNN (P-Net, R-Net, O-Net from the facenet-pytorch 2.6.0 wheel, MIT) as ONNX: engines/faces/mtcnn.py."""

    type: Literal["mtcnn"] = Field(default="mtcnn", title="Detector kind")
    # 24, not facenet-pytorch's 20: the same recall on dlib's training.xml photos shrunk to 0.5-1x (faces from
    # 18 px), with P-Net's finest level 0.69x the pixels.
    min_face: int = Field(default=24, ge=12, le=4096, title="Smallest face side in detector pixels: the first pyramid level is 12 / min_face, and smaller faces are dropped")
    thresholds: tuple[float, float, float] = Field(default=(0.6, 0.7, 0.7), title="MTCNN: P-Net, R-Net, O-Net face probability thresholds")
    factor: float = Field(default=0.709, gt=0.1, lt=0.95, title="MTCNN: scale step between pyramid levels")
    regions: bool = Field(default=True, title="MTCNN: search only around followed faces plus a rolling scan of the frame (engines/faces/planner.py); false = the whole frame every frame")
    threads: int = Field(default=2, ge=1, le=64, title="MTCNN: threads (regions: crops in parallel, one ONNX Runtime thread each; whole frame: ONNX Runtime threads)")

    def options(self) -> dict[str, Any]:
        return {"min_face": self.min_face, "thresholds": self.thresholds, "factor": self.factor,
                "score_threshold": self.score_threshold, "threads": 1 if self.regions else self.threads}

    @staticmethod
    def make(store: Any, backend: str, precision: str | None, backend_opts: dict[str, Any], **options: Any):
        from .mtcnn import MtcnnDetector

        return MtcnnDetector(store=store, backend=backend, precision=precision, **options, **backend_opts)


DetectorConfig = Annotated[HogSpec | CnnSpec | MtcnnSpec, Field(discriminator="type")]

_ADAPTER: TypeAdapter[DetectorSpec] = TypeAdapter(DetectorConfig)
SPEC_BY_TYPE: dict[str, type[DetectorSpec]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(DetectorConfig)[0])
}
DETECTOR_TYPES = tuple(SPEC_BY_TYPE)


def spec_class(name: str) -> type[DetectorSpec]:
    """The spec class of a detector type name; FacestreamError naming the choices otherwise."""
    try:
        return SPEC_BY_TYPE[name]
    except (KeyError, TypeError):
        raise FacestreamError(f"unknown face detector {name!r} (choose {' or '.join(DETECTOR_TYPES)})") from None


def parse_detector(value: str | dict[str, Any] | DetectorSpec) -> DetectorSpec:
    """A spec from ``"hog"``, ``{"type": "cnn", "min_face": 60}`` or a spec; one-line FacestreamError."""
    if isinstance(value, DetectorSpec):
        return value
    if isinstance(value, str):
        value = {"type": value}
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        e = exc.errors()[0]
        key = ".".join(str(p) for p in e["loc"][1:]) or "type"
        raise FacestreamError(f"detector.{key}: {e['msg']}") from None
