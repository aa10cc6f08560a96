"""Where facestream keeps its caches: an environment variable wins, else $XDG_CACHE_HOME (or ~/.cache)/facestream."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(env_var: str, name: str) -> Path:
    """``$env_var`` if set, else ``$XDG_CACHE_HOME/facestream/name`` (``~/.cache`` without XDG)."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facestream" / name
