"""The ``recognition`` (per-track recognizer and its embedding scheduler) and ``engines`` (TensorRT) sections.

The recognizer's runtime objects stay the dataclasses of ``facestream.pipeline.recognition``
(:class:`RecognizerConfig`, :class:`SchedulerConfig`); :meth:`RecognitionConfig.runtime` builds them, the
only place that does. The defaults here equal the dataclasses' defaults (a test checks it).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .sections import Section


class SchedulerSection(Section):
    """When a confirmed track's face is embedded again (pipeline/recognition/scheduler.py)."""

    quality_margin: float = Field(default=0.1, ge=0, le=1, title="Re-embed when a face's quality beats the best embedded one by this much")
    drift_threshold: float = Field(default=0.25, ge=0, le=2, title="Cosine distance between a track's last two embeddings that triggers re-checks")
    drift_recheck_frames: int = Field(default=2, ge=0, le=1000, title="Faces embedded after a drift")
    max_interval_s: float = Field(default=2.0, gt=0, le=3600, title="Re-embed a track at least this often")
    uncertain_margin: float = Field(default=0.02, ge=0, le=2, title="Re-embed the next face when a track's match score is within this of the threshold (noisy, e.g. dark, frames)")
    uncertain_frames: int = Field(default=5, ge=0, le=1000, title="Most faces per track embedded for an uncertain score")


class RecognitionConfig(Section):
    """Tracking, matching, unknowns and identity changes (pipeline/recognition/stream_recognizer.py)."""

    n_init: int = Field(default=3, ge=1, le=1000, title="Detections in a row before a track is confirmed (and recognised)")
    max_age: int = Field(default=15, ge=0, le=100000, title="Frames a track survives without a detection")
    iou_min: float = Field(default=0.2, ge=0, le=1, title="Smallest box overlap that continues a track")
    match_threshold: float = Field(default=0.92, ge=0, le=1, title="Cosine similarity to the gallery for a match (calibrated default 0.92)")
    top_k: int = Field(default=3, ge=1, le=1000, title="Best gallery embeddings of a person averaged into the match score")
    unknown_join_threshold: float = Field(default=0.92, ge=0, le=1, title="Cosine similarity for an unknown face to join an existing unknown#N")
    unknown_min_quality: float = Field(default=0.3, ge=0, le=1, title="Best-shot quality an unknown track needs before it gets an unknown#N id")
    change_confirmations: int = Field(default=2, ge=1, le=1000, title="Decisions in a row a new identity needs before identity_changed")
    max_frames: int = Field(default=32, ge=1, le=10000, title="Embeddings per track kept for temporal aggregation")
    reload_interval_s: float = Field(default=1.0, gt=0, le=3600, title="Check the gallery for changes at most this often")
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection, title="Embedding scheduler")

    def runtime(self, crops_for_unknown: bool = True) -> Any:
        """The ``facestream.pipeline.recognition`` ``RecognizerConfig`` these settings describe."""
        from ..recognition.scheduler import SchedulerConfig
        from ..recognition.stream_recognizer import RecognizerConfig

        fields = self.model_dump(exclude={"scheduler", "match_threshold"})
        return RecognizerConfig(**fields, threshold=self.match_threshold, crops_for_unknown=crops_for_unknown,
                                scheduler=SchedulerConfig(**self.scheduler.model_dump()))


class EnginesConfig(Section):
    """Options of the ONNX models the inference stage loads (the CNN detector and the embedder)."""

    engine_dir: str = Field(default="", title="TensorRT engine cache; empty = $FACESTREAM_ENGINES or ~/.cache/facestream/engines")
    cuda_graphs: bool = Field(default=False, title="TensorRT: replay each batch size through a captured CUDA graph")
    max_batch: int = Field(default=0, ge=0, le=4096, title="Largest batch per engine call (larger ones are split); 0 = the model's profile limit")

    def backend_options(self, requested_backend: str) -> dict[str, Any]:
        """Keyword options for ``facestream.engines.runtime.load_model`` when ``inference.backend`` is
        ``requested_backend``.

        The TensorRT-only options are given only when TensorRT is what ``auto`` (or the request) picks.
        """
        opts: dict[str, Any] = {"max_batch": self.max_batch} if self.max_batch else {}
        if self.engine_dir or self.cuda_graphs:
            from facestream.engines.backends.select import select_backend

            if select_backend(requested_backend)[0] == "tensorrt":
                opts.update({"engine_dir": self.engine_dir or None, "cuda_graphs": self.cuda_graphs})
        return opts
