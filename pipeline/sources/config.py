"""SourceConfig: everything one video source needs, validated by pydantic. Documented in docs/sources.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SourceKind = Literal["demo", "file", "directory", "webcam", "rtsp", "http"]
LIVE_KINDS: frozenset[str] = frozenset({"webcam", "rtsp", "http"})
_WEBCAM_URI = re.compile(r"^(?:webcam:)?(\d+)$")


class ResizeConfig(BaseModel):
    """Output size; with only one side given the other follows the source's aspect ratio."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(default=None, gt=0, le=16384, title="output width in pixels")
    height: int | None = Field(default=None, gt=0, le=16384, title="output height in pixels")

    @model_validator(mode="after")
    def _one_side_at_least(self) -> ResizeConfig:
        if self.width is None and self.height is None:
            raise ValueError("resize needs width, height or both")
        return self


def detect_kind(uri: str) -> SourceKind:
    """Kind of source a uri names: demo, webcam index, rtsp/http URL, directory, else a file."""
    lowered = uri.lower()
    if lowered == "demo":
        return "demo"
    if _WEBCAM_URI.match(lowered):
        return "webcam"
    if lowered.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if lowered.startswith(("http://", "https://")):
        return "http"
    if Path(uri).is_dir():
        return "directory"
    return "file"


def webcam_index(uri: str) -> int:
    """The device index in ``webcam:N`` or ``N``."""
    match = _WEBCAM_URI.match(uri.lower())
    if not match:
        raise ValueError(f"not a webcam uri: {uri!r} (use webcam:N or an integer index)")
    return int(match.group(1))


class SourceConfig(BaseModel):
    """One video source. ``kind`` and ``policy`` are filled in from ``uri`` when omitted."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(
        default="demo", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
        title="stream id carried with every frame and used as the metrics label",
    )
    uri: str = Field(
        default="demo",
        title='"demo", a video file, a directory of images, "webcam:N" or N, rtsp://..., http(s)://...',
    )
    kind: SourceKind | None = Field(default=None, title="source kind; detected from uri when omitted")
    policy: Literal["latest", "lossless"] | None = Field(
        default=None,
        title="latest: keep the newest frames, drop and count older ones; lossless: every frame, capture "
        "waits. Default lossless for demo/file/directory, latest for webcam/rtsp/http",
    )
    queue_size: int = Field(default=4, ge=1, le=1024, title="frames buffered between the reader and consumer")
    max_fps: float | None = Field(
        default=None, gt=0, title="cap on frame rate; files are paced to it, live sources skip frames"
    )
    loop: bool = Field(default=False, title="file/directory/demo: start again at the end instead of stopping")
    rtsp_transport: Literal["tcp", "udp"] = Field(default="tcp", title="RTSP transport (tcp passes NAT/firewalls)")
    decoder: Literal["auto", "pyav", "opencv"] = Field(
        default="auto",
        title="library that reads rtsp/http: pyav shows mid-stream resolution changes (opencv silently rescales "
        "to the first size); auto = pyav when installed, else opencv. Files and webcams always use opencv",
    )
    ffmpeg_options: dict[str, str] = Field(
        default_factory=dict,
        title="extra FFmpeg demuxer options for rtsp/http, e.g. {analyzeduration: '500000'} to open faster",
    )
    open_timeout_s: float = Field(default=10.0, gt=0, le=300, title="give up opening a live source after this")
    read_timeout_s: float = Field(
        default=5.0, gt=0, le=300, title="no frame for this long from a live source = stall: reconnect"
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, le=3600, title="first reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600, title="reconnect delay ceiling")
    reconnect_jitter: float = Field(
        default=0.2, ge=0, le=1, title="reconnect delays vary by +- this fraction so cameras do not retry in step"
    )
    stills: bool | None = Field(
        default=None,
        title="each image is a photo of its own: every face identified on its own, no tracking across images. "
        "Default true for directory, false otherwise",
    )
    max_frames: int | None = Field(default=None, ge=1, title="stop after this many frames")
    resize: ResizeConfig | None = Field(default=None, title="resize every frame (width and/or height)")
    shard: str | None = Field(
        default=None, title="the inference shard (shard.shards) that runs this stream; default: by consistent hash"
    )

    @model_validator(mode="before")
    @classmethod
    def _uri_as_text(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("uri"), int) and not isinstance(data["uri"], bool):
            data = {**data, "uri": f"webcam:{data['uri']}"}
        return data

    @field_validator("ffmpeg_options")
    @classmethod
    def _no_separators(cls, options: dict[str, str]) -> dict[str, str]:
        for key, value in options.items():
            if not key or any(c in f"{key}{value}" for c in ";|"):
                raise ValueError(f"ffmpeg_options {key!r}: keys and values may not be empty or contain ';' or '|'")
        return options

    @model_validator(mode="after")
    def _fill_defaults(self) -> SourceConfig:
        if self.kind is None:
            self.kind = detect_kind(self.uri)
        if self.kind == "webcam":
            webcam_index(self.uri)
        if self.policy is None:
            self.policy = "latest" if self.kind in LIVE_KINDS else "lossless"
        if self.stills is None:
            self.stills = self.kind == "directory"
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s}) must be >= reconnect_min_s ({self.reconnect_min_s})"
            )
        return self

    @property
    def live(self) -> bool:
        return self.kind in LIVE_KINDS
