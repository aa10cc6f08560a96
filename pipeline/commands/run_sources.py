"""``facestream run SOURCE ...``: sources named on the command line, each its own stream.

A positional argument is a video file, an image folder, ``rtsp://``/``rtsps://``, ``http(s)://``, ``webcam:N``
or ``demo``; one ending in ``.yaml``/``.yml`` is the config file instead. Stream ids come from the names (a
file's stem, a folder's name, a URL's host and last path part, ``webcam-N``), made unique with ``-2``, ``-3``.
A file or folder that does not exist is a one-line error before anything starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from facestream.errors import FacestreamError

from ..sources.config import LIVE_KINDS, detect_kind, webcam_index

CONFIG_SUFFIXES = (".yaml", ".yml")
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def split_inputs(inputs: list[str]) -> tuple[str | None, list[str]]:
    """(the config file among ``inputs`` or None, the sources); more than one config file is an error."""
    configs = [i for i in inputs if i.lower().endswith(CONFIG_SUFFIXES)]
    if len(configs) > 1:
        raise FacestreamError(f"two config files given ({configs[0]} and {configs[1]}); pass one")
    return (configs[0] if configs else None), [i for i in inputs if i not in configs]


def stream_id_for(uri: str, kind: str) -> str:
    """A readable stream id from a source's name (never its credentials)."""
    if kind == "webcam":
        base = f"webcam-{webcam_index(uri)}"
    elif kind in LIVE_KINDS:
        parts = urlsplit(uri)
        tail = [p for p in parts.path.split("/") if p][-1:]
        base = "-".join([parts.hostname or kind, *tail])
    elif kind == "demo":
        base = "demo"
    else:
        path = Path(uri).expanduser()
        base = path.stem if kind == "file" else path.resolve().name
    return _ID_CHARS.sub("_", base).strip("_.-")[:60] or kind


def source_entries(uris: list[str]) -> list[dict[str, Any]]:
    """``sources:`` entries for the config, one per uri; FacestreamError for a missing file or folder."""
    entries, used = [], set()
    for uri in uris:
        kind = detect_kind(uri)
        if kind == "webcam":
            try:
                webcam_index(uri)
            except ValueError as exc:
                raise FacestreamError(str(exc)) from None
        if kind == "file" and not Path(uri).expanduser().is_file():
            raise FacestreamError(f"source {uri}: no such file or folder (or use rtsp://, http(s)://, webcam:N)")
        base = stream_id_for(uri, kind)
        sid, n = base, 1
        while sid in used:
            n += 1
            sid = f"{base}-{n}"
        used.add(sid)
        entries.append({"id": sid, "uri": uri})
    return entries
