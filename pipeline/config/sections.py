"""The plain sections of the pipeline config: transport, preprocess, sink, privacy, metrics, supervisor."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STAGES = ("capture", "preprocess", "inference", "sink")


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HopConfig(Section):
    """One hop into a stage: the stage binds ``bind``; its upstream connects to ``connect`` (default: bind)."""

    bind: str = Field(default="", title="Endpoint the receiving stage binds (ipc://PATH or tcp://HOST:PORT); empty = ipc in run_dir")
    connect: str = Field(default="", title="Endpoint the sending stage connects to; empty = same as bind")
    encoding: Literal["auto", "raw", "jpeg", "shm"] = Field(
        default="auto", title="Pixel encoding: auto = shm for ipc://, raw for tcp://; jpeg saves bandwidth across hosts"
    )
    jpeg_quality: int = Field(default=90, ge=10, le=100, title="JPEG quality when encoding is jpeg")
    hwm: int = Field(default=8, ge=1, le=10000, title="ZeroMQ high-water mark (messages queued per hop)")
    server_public_key: str = Field(
        default="", title="CURVE: Z85 public key (or NAME.public file) of the receiving host; empty = transport.curve.server_public_key"
    )


class CurveConfig(Section):
    """ZeroMQ CURVE encryption and authentication for tcp:// hops between hosts."""

    enabled: bool = Field(default=False, title="Encrypt and authenticate every hop with CURVE")
    key_dir: str = Field(default="", title="Folder with this host's keypair written by `facestream keys gen`")
    key_name: str = Field(default="facestream", title="Base name of this host's key files")
    allowed_clients: list[str] = Field(default_factory=list, title="Z85 public keys, NAME.public files or folders of them, allowed to send to this host")
    server_public_key: str = Field(default="", title="Z85 public key (or NAME.public file) of the host this one sends to")


class TransportConfig(Section):
    run_dir: str = Field(default="", title="Folder for ipc sockets and run files; empty = $XDG_RUNTIME_DIR or /tmp, per user")
    preprocess: HopConfig = Field(default_factory=HopConfig, title="Hop capture -> preprocess")
    inference: HopConfig = Field(default_factory=HopConfig, title="Hop preprocess -> inference")
    sink: HopConfig = Field(default_factory=HopConfig, title="Hop inference -> sink")
    heartbeat_s: float = Field(default=1.0, gt=0, le=60, title="Heartbeat interval on every hop")
    peer_timeout_s: float = Field(default=3.5, gt=0, le=600, title="A peer silent this long is reported down")
    max_payload_mb: int = Field(default=256, ge=1, le=4096, title="Largest payload a stage accepts (MiB)")
    allow_plain_tcp: bool = Field(
        default=False, title="Allow unencrypted tcp:// to a non-loopback host (otherwise CURVE is required)"
    )
    curve: CurveConfig = Field(default_factory=CurveConfig, title="CURVE security")
    run_id: str = Field(
        default="", max_length=32, pattern=r"^[A-Za-z0-9_.-]*$",
        title="Id every message of this run carries; a stage takes only messages with its own. `facestream run` "
        "sets a fresh one when empty; stages started one by one check it only when it is set (the same on every host)",
    )


class PreprocessConfig(Section):
    detector_width: int = Field(default=1280, ge=64, le=8192, title="Frames are resized to fit this width for the detector")
    detector_height: int = Field(default=720, ge=64, le=8192, title="... and this height (aspect ratio kept)")
    max_upscale: float = Field(
        default=2.0, ge=1.0, le=4.0,
        title="Smaller frames are enlarged towards that size, at most this many times, so that faces from about "
        "20 source pixels reach the detector's 40 px (HOG upsample 1); 1 = never enlarge")
    batch_size: int = Field(default=4, ge=1, le=256, title="Frames batched across streams per message to inference")
    batch_timeout_ms: float = Field(default=15.0, ge=0, le=10000, title="Longest wait to fill a batch")
    live_batch: int = Field(
        default=1, ge=1, le=256,
        title="Live frames in flight to inference at once (and per message): the newest of the stream that "
        "waited longest. Each live frame more in flight waits one frame's processing more before its result; the "
        "detector runs one message's frames together, but on a CPU-bound box that gains little (2 cameras, 2 cores: "
        "2 gave +2-3 % results/s at twice the p50 latency); lossless frames go batch_size at a time")


class SinkConfig(Section):
    out_dir: str = Field(default="out", title="Folder for results.jsonl, events, summary, video and crops")
    jsonl: bool = Field(default=True, title="Write one JSON line per frame result to out_dir/results.jsonl")
    stdout: bool = Field(default=False, title="Also print each result line to stdout (`facestream run --stdout json`)")
    progress_interval_s: float = Field(
        default=2.0, ge=0, title="Seconds between a stream's progress lines on stderr (live sources: 5x); 0 = none"
    )
    pub: str = Field(default="", title="ZeroMQ PUB endpoint publishing each result (topic = stream id); empty = off")
    pub_allowed_clients: list[str] = Field(
        default_factory=list,
        title="CURVE on sink.pub: subscriber public keys (z85, NAME.public files or folders); set = the PUB is a "
        "CURVE server with this host's key (transport.curve.key_dir/key_name). Needed for tcp:// off this host "
        "unless transport.allow_plain_tcp",
    )
    video: bool = Field(default=False, title="Write an annotated MP4 per stream to out_dir")
    video_fps: float = Field(default=25.0, gt=0, le=240, title="Frame rate of the annotated MP4")
    crops: bool = Field(default=True, title="Save best-shot face crops of identified tracks to out_dir/crops")


class PrivacyConfig(Section):
    blur_unknown: bool = Field(default=False, title="Blur every face not in the gallery in video, live-view and image outputs")
    retention_days: float = Field(
        default=0, ge=0, title="Delete what is older than this: crops, event frames, event files, stored events "
        "(events.db), videos, results.jsonl lines, and the gallery's sightings and unknown clusters; 0 = keep")


class MetricsConfig(Section):
    enabled: bool = Field(default=True, title="Serve Prometheus /metrics from every stage")
    host: str = Field(default="127.0.0.1", title="Address the metrics endpoints bind to (0.0.0.0 only on purpose)")
    ports: dict[str, int] = Field(
        default_factory=lambda: {"capture": 9101, "preprocess": 9102, "inference": 9103, "sink": 9104},
        title="Port per stage; 0 = any free port (written to run_dir/metrics-STAGE.url)",
    )

    @model_validator(mode="after")
    def _known_stages(self) -> MetricsConfig:
        for k, v in self.ports.items():
            if k not in STAGES:
                raise ValueError(f"unknown stage {k!r} (stages: {', '.join(STAGES)})")
            if not 0 <= v <= 65535:
                raise ValueError(f"port {v} for {k} is out of 0..65535")
        return self


class SupervisorConfig(Section):
    restart_backoff_min_s: float = Field(default=0.5, gt=0, le=60, title="First restart delay of a crashed stage")
    restart_backoff_max_s: float = Field(default=10.0, gt=0, le=600, title="Longest restart delay")
    stable_after_s: float = Field(default=30.0, gt=0, title="A stage up this long has its backoff reset")
    stop_timeout_s: float = Field(default=4.0, gt=0, le=60, title="Grace period for stages to drain on SIGTERM")
    eos_linger_s: float = Field(default=3.0, ge=0, le=600, title="After end of stream, keep re-sending it this long before exiting")
