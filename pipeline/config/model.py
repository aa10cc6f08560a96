"""The whole config tree, and the settings a stage derives from other sections (built here, in one place).

A stage reads its own section and its view (:meth:`PipelineConfig.inference_view`), never another stage's
section: which frames go to the sink, where crops go and how big a batch is are decided here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..sources.config import SourceConfig
from .inference import InferenceConfig
from .outputs import IntegrationsConfig, WebConfig
from .recognition import EnginesConfig, RecognitionConfig
from .sections import (
    STAGES,
    HopConfig,
    MetricsConfig,
    PreprocessConfig,
    PrivacyConfig,
    Section,
    SinkConfig,
    SupervisorConfig,
    TransportConfig,
)
from .shards import SHARDED_STAGES, ShardConfig, assign

__all__ = ["STAGES", "InferenceView", "PipelineConfig"]


class InferenceView(Section):
    """What the inference stage needs from the other sections (derived; not settable)."""

    batch_size: int = Field(default=4, title="Frames per message from preprocess (= preprocess.batch_size)")
    forward_frames: bool = Field(default=False, title="Send each frame on to the sink, for its video (= sink.video)")
    crop_dir: str = Field(default="", title="Folder for best-shot crops (= sink.out_dir/crops when sink.crops; else empty: none)")
    crops_for_unknown: bool = Field(default=True, title="Also keep crops of unknown faces (= not privacy.blur_unknown)")
    retention_days: float = Field(default=0, title="Prune gallery sightings and unknown clusters older than this (= privacy.retention_days)")
    preview_fps: float = Field(default=0, title="Frames per second per stream sent on to the sink for the live view (= web.preview_fps when the web app is on)")


class PipelineConfig(Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(id="demo", uri="demo")], title="Video sources, one stream id each"
    )
    transport: TransportConfig = Field(default_factory=TransportConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig)
    engines: EnginesConfig = Field(default_factory=EnginesConfig)
    sink: SinkConfig = Field(default_factory=SinkConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    integrations: IntegrationsConfig = Field(default_factory=IntegrationsConfig)
    shard: ShardConfig = Field(default_factory=ShardConfig, title="Sharded cameras over several inference hosts")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", title="Log level of every stage")

    @model_validator(mode="before")
    @classmethod
    def _old_match_threshold(cls, data: Any) -> Any:
        """``inference.match_threshold`` (0 = default) is the old name of ``recognition.match_threshold``."""
        if not isinstance(data, dict) or not isinstance(data.get("inference"), dict):
            return data
        if "match_threshold" not in data["inference"]:
            return data
        data = {**data, "inference": dict(data["inference"])}
        value = data["inference"].pop("match_threshold")
        rec = data.get("recognition")
        if isinstance(rec, dict) and "match_threshold" in rec:
            raise ValueError("inference.match_threshold is the old name of recognition.match_threshold; set only the new one")
        if value not in (0, 0.0, None):
            data["recognition"] = {**(rec if isinstance(rec, dict) else {}), "match_threshold": value}
        return data

    @model_validator(mode="after")
    def _unique_streams(self) -> PipelineConfig:
        ids = [s.id for s in self.sources]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate stream id(s): {', '.join(sorted(dup))}")
        if not ids:
            raise ValueError("at least one source is needed")
        pinned = {s.id: s.shard for s in self.sources if s.shard is not None}
        if pinned and not self.shard.shards:
            raise ValueError(f"source(s) {', '.join(pinned)} name a shard but shard.shards is empty")
        bad = {sid: sh for sid, sh in pinned.items() if sh not in self.shard.shards}
        if bad:
            raise ValueError(f"source shard(s) not in shard.shards {self.shard.shards}: {bad}")
        return self

    # --- derived values ---

    def is_demo(self) -> bool:
        """The run is the embedded demo: every source is the demo clip."""
        return all(s.kind == "demo" for s in self.sources)

    def shard_assignment(self) -> dict[str, str]:
        """stream id -> shard id (empty when no shards are configured)."""
        if not self.shard.shards:
            return {}
        return assign(((s.id, s.shard) for s in self.sources), self.shard.shards)

    def for_stage(self, stage: str) -> PipelineConfig:
        """The config a stage runs with: capture, preprocess and inference of a shard see only its streams;
        the sink (and an unsharded host) sees every stream."""
        if not self.shard.id or stage not in SHARDED_STAGES:
            return self
        mine = self.shard_assignment()
        return self.model_copy(update={"sources": [s for s in self.sources if mine[s.id] == self.shard.id]})

    def inference_view(self) -> InferenceView:
        return InferenceView(
            batch_size=self.preprocess.batch_size,
            forward_frames=self.sink.video,
            crop_dir=str(Path(self.sink.out_dir) / "crops") if self.sink.crops else "",
            crops_for_unknown=not self.privacy.blur_unknown,
            retention_days=self.privacy.retention_days,
            preview_fps=self.preview_fps(),
        )

    def live_credit(self, downstream: str) -> int:
        """Live frames a stage may have in flight towards ``downstream`` (sent, not yet taken): for inference
        ``preprocess.live_batch``; for preprocess one batch of its own, so it always has its next one ready."""
        return self.preprocess.live_batch if downstream == "inference" else max(2, self.preprocess.batch_size)

    def preview_fps(self) -> float:
        """Live-view frames per stream: on when the web app runs with the pipeline or its feed is configured."""
        return self.web.preview_fps if (self.web.enabled or self.web.preview_pub) else 0.0

    def preview_endpoint(self) -> str:
        return self.web.preview_pub or f"ipc://{self.run_dir() / 'preview.ipc'}"

    def events_db(self) -> Path:
        """The sink's events store (SQLite), read by the web app and `facestream events query`."""
        return Path(self.sink.out_dir) / "events.db"

    def run_dir(self) -> Path:
        if self.transport.run_dir:
            return Path(self.transport.run_dir)
        from ..run_dir import default_base

        return default_base()

    def hop(self, stage: str) -> HopConfig:
        return getattr(self.transport, stage)

    def bind_endpoint(self, stage: str) -> str:
        return self.hop(stage).bind or f"ipc://{self.run_dir() / (stage + '.ipc')}"

    def connect_endpoint(self, stage: str) -> str:
        hop = self.hop(stage)
        return hop.connect or hop.bind or f"ipc://{self.run_dir() / (stage + '.ipc')}"

    def hop_encoding(self, stage: str) -> str:
        hop = self.hop(stage)
        if hop.encoding != "auto":
            return hop.encoding
        return "shm" if self.connect_endpoint(stage).startswith("ipc://") else "raw"
