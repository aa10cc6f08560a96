"""Pipeline configuration: one YAML file, one pydantic model per concern, every field titled and defaulted.

Environment variables override keys: ``FACESTREAM__SINK__OUT_DIR=/data/out`` sets ``sink.out_dir``
(values are parsed as YAML, so ``FACESTREAM__INFERENCE__EMBED=false`` is a boolean). docs/config.md lists
every key with its default (generated from these models by ``python -m facestream.pipeline.config --markdown``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from facestream.errors import FacestreamError

from .sources.config import SourceConfig

STAGES = ("capture", "preprocess", "inference", "sink")
ENV_PREFIX = "FACESTREAM__"


class Section(BaseModel):
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


class PreprocessConfig(Section):
    detector_width: int = Field(default=1280, ge=64, le=8192, title="Frames are resized to fit this width for the detector")
    detector_height: int = Field(default=720, ge=64, le=8192, title="... and this height (aspect ratio kept)")
    batch_size: int = Field(default=4, ge=1, le=256, title="Frames batched across streams per message to inference")
    batch_timeout_ms: float = Field(default=15.0, ge=0, le=10000, title="Longest wait to fill a batch")


class InferenceConfig(Section):
    detector: Literal["hog", "cnn"] = Field(default="hog", title="Face detector: dlib HOG (CPU) or dlib's MMOD CNN as ONNX/TensorRT")
    hog_upsample: int = Field(default=1, ge=0, le=3, title="HOG detector upsampling (finds smaller faces, slower)")
    min_face: int = Field(default=32, ge=8, le=4096, title="Smallest face side in detector pixels")
    regions: bool = Field(default=True, title="HOG: search only around followed faces plus a rolling scan of the frame (engines/faces/planner.py); false = the whole frame every frame")
    detect_threads: int = Field(default=2, ge=1, le=64, title="Threads running HOG on a frame's regions")
    score_threshold: float = Field(default=0.0, title="Detector score threshold")
    backend: Literal["auto", "onnxruntime", "tensorrt"] = Field(default="auto", title="Inference backend for ONNX models")
    embed: bool = Field(default=True, title="Compute face embeddings (needed for recognition)")
    recognizer: Literal["gallery", "classifier", "none"] = Field(
        default="gallery", title="gallery = open-set matching; classifier = a trained closed-set model"
    )
    aggregator: Literal["mean", "quality", "gru", "attention"] = Field(
        default="quality", title="How a track's embeddings are combined: mean, quality-weighted mean, or the learned GRU / attention heads"
    )
    classifier_model: str = Field(default="", title="Store name of the classifier when recognizer = classifier")
    gallery: str = Field(default="", title="Gallery database; empty = $FACESTREAM_GALLERY or ~/.local/share/facestream/gallery.db")
    match_threshold: float = Field(default=0.0, ge=0, le=1, title="Cosine similarity for a match; 0 = the matcher's calibrated default")
    models_dir: str = Field(default="", title="Model store; empty = $FACESTREAM_MODELS or ~/.cache/facestream/models")
    throttle_ms: float = Field(default=0.0, ge=0, le=60000, title="Artificial delay per batch (for fault tests only)")


class SinkConfig(Section):
    out_dir: str = Field(default="out", title="Folder for results.jsonl, events, summary, video and crops")
    jsonl: bool = Field(default=True, title="Write one JSON line per frame result to out_dir/results.jsonl")
    stdout: bool = Field(default=False, title="Also print each result line to stdout")
    pub: str = Field(default="", title="ZeroMQ PUB endpoint publishing each result (topic = stream id); empty = off")
    video: bool = Field(default=False, title="Write an annotated MP4 per stream to out_dir")
    video_fps: float = Field(default=25.0, gt=0, le=240, title="Frame rate of the annotated MP4")
    crops: bool = Field(default=True, title="Save best-shot face crops of identified tracks to out_dir/crops")


class PrivacyConfig(Section):
    blur_unknown: bool = Field(default=False, title="Blur every face not in the gallery in video and image outputs")
    retention_days: float = Field(default=0, ge=0, title="Delete stored crops and events older than this; 0 = keep")


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


class PipelineConfig(Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(id="demo", uri="demo")], title="Video sources, one stream id each"
    )
    transport: TransportConfig = Field(default_factory=TransportConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    sink: SinkConfig = Field(default_factory=SinkConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", title="Log level of every stage")

    @model_validator(mode="after")
    def _unique_streams(self) -> PipelineConfig:
        ids = [s.id for s in self.sources]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate stream id(s): {', '.join(sorted(dup))}")
        if not ids:
            raise ValueError("at least one source is needed")
        return self

    # --- derived values ---

    def run_dir(self) -> Path:
        if self.transport.run_dir:
            return Path(self.transport.run_dir)
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
        return Path(base) / f"facestream-{os.getuid()}"

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


# --- loading -----------------------------------------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text.replace("_", "").isalnum():
                text = repr(text)
            out += ("." if out else "") + text
    return out or "(top level)"


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """One line naming the key and what is allowed (the first problem; the count of others)."""
    errs = exc.errors()
    e = errs[0]
    loc = [p for p in e["loc"] if p not in ("function-after", "function-before")]
    key = _loc(tuple(loc))
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = e["msg"]
        if "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict | list):
            msg += f" (got {e['input']!r})"
    more = f" (+{len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"config error in {origin}: {key}: {msg}{more}".replace("\n", "\\n")


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        node = data
        for p in path[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        try:
            node[path[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read YAML (or the embedded default when path is None), apply env and overrides, validate.

    Raises FacestreamError with one line on any problem.
    """
    environ = dict(os.environ) if environ is None else environ
    origin = str(path) if path else "the embedded default"
    data: Any = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FacestreamError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise FacestreamError(f"config error in {origin}: invalid YAML{where}: {problem}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FacestreamError(f"cannot read config file {p}: {exc}") from None
        if not isinstance(data, dict):
            raise FacestreamError(f"config error in {origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    data = _apply_env(data, environ)
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise FacestreamError(format_validation_error(exc, origin)) from None


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def config_markdown() -> str:
    """Every key with its type, default and title, as Markdown tables (docs/config.md)."""
    lines = ["# Configuration reference", "", "Generated by `python -m facestream.pipeline.config --markdown`. "
             "Any key can be overridden by an environment variable: `FACESTREAM__SECTION__KEY=value`.", ""]

    def walk(model: type[BaseModel], prefix: str) -> None:
        rows = []
        nested = []
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                nested.append((f"{prefix}{name}", ann))
                continue
            default = f.get_default(call_default_factory=True)
            if isinstance(default, list) and default and isinstance(default[0], BaseModel):
                default = [d.model_dump(exclude_defaults=True) for d in default]
            tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
            rows.append(f"| `{prefix}{name}` | {tname} | `{default!r}` | {f.title or ''} |")
        if rows:
            lines.extend([f"## `{prefix.rstrip('.') or 'top level'}`", "", "| key | type | default | meaning |",
                          "|---|---|---|---|", *rows, ""])
        for p, m in nested:
            walk(m, p + ".")

    walk(PipelineConfig, "")
    lines.extend(["## `sources[]`", "", "Each entry of `sources`:", ""])
    walk_rows = []
    for name, f in SourceConfig.model_fields.items():
        default = f.get_default(call_default_factory=True)
        walk_rows.append(f"| `{name}` | `{default!r}` | {f.title or ''} |")
    lines.extend(["| key | default | meaning |", "|---|---|---|", *walk_rows, ""])
    return "\n".join(lines)


if __name__ == "__main__":
    if "--markdown" in sys.argv:
        print(config_markdown())
