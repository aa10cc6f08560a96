"""Video sources for the capture stage: demo clip, video file, image directory, webcam, RTSP and HTTP.

``open_source(cfg)`` picks the implementation from ``cfg.kind``. Options are documented in docs/sources.md.
"""

from __future__ import annotations

from .base import Source, SourceFrame
from .config import SourceConfig
from .demo import DemoSource
from .directory import DirectorySource
from .file import FileSource
from .live import LiveSource

__all__ = ["Source", "SourceFrame", "SourceConfig", "open_source", "DemoSource"]


def open_source(cfg: SourceConfig) -> Source:
    """The Source for ``cfg``; a missing file or directory raises FacestreamError."""
    if cfg.kind == "demo":
        return DemoSource(cfg)
    if cfg.kind == "file":
        return FileSource(cfg)
    if cfg.kind == "directory":
        return DirectorySource(cfg)
    return LiveSource(cfg)
