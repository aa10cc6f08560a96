"""The TensorRT engine cache: one plan file per exact key, a JSON sidecar holding that key, built once.

Key = sha256 of the ONNX bytes + TensorRT version + GPU name + compute capability + precision + every profile's
min/opt/max + compatibility flags. Files are ``<model>.<precision>.<digest16>.plan`` and ``.json``.

Rules: load only when the sidecar's key equals the wanted key and the plan's sha256 equals the sidecar's;
otherwise build. A plan that fails to deserialise is rebuilt. Builds happen under an fcntl lock per key, and
writes are temp file + fsync + rename, so two processes asking for the same engine build it once and a
reader never sees half a plan. Nothing is rebuilt when nothing changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from facestream import fsutil
from facestream.errors import FacestreamError

from ..paths import cache_dir

log = logging.getLogger(__name__)
SIDECAR_FORMAT = 1
T = TypeVar("T")


def default_engine_dir() -> Path:
    return cache_dir("FACESTREAM_ENGINES", "engines")


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT plan depends on. ``model`` names the files but is not part of the identity."""

    model: str
    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: tuple = field(default=())  # profiles_for_key() output, as nested tuples/lists
    version_compatible: bool = False
    hardware_compatibility: str = "none"

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model")
        d["profiles"] = json.loads(json.dumps(d["profiles"]))  # tuples -> lists, so it round-trips via JSON
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def stem(self) -> str:
        return f"{self.model}.{self.precision}.{self.digest()[:16]}"


@dataclass(frozen=True)
class Decision:
    action: str  # "load" | "build"
    reason: str


@dataclass(frozen=True)
class Outcome:
    built: bool
    reason: str
    plan_path: Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decide(key: EngineKey, sidecar: dict[str, Any] | None, plan: bytes | None) -> Decision:
    """Pure rebuild rule: what to do given the wanted key, the sidecar found (or None) and the plan bytes."""
    if plan is None:
        return Decision("build", "no engine for this key")
    if sidecar is None:
        return Decision("build", "sidecar missing or unreadable")
    if sidecar.get("format") != SIDECAR_FORMAT:
        return Decision("build", f"sidecar format {sidecar.get('format')!r} is not {SIDECAR_FORMAT}")
    have, want = sidecar.get("key") or {}, key.identity()
    changed = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if changed:
        return Decision("build", f"key differs in {', '.join(changed)}")
    if sidecar.get("plan_sha256") != sha256_bytes(plan):
        return Decision("build", "plan file does not match its sidecar (corrupt or truncated)")
    return Decision("load", "exact key match")


def atomic_write(path: Path, data: bytes) -> None:
    fsutil.atomic_write(path, data, fsync=True)  # an engine plan must survive a power cut whole


@dataclass(frozen=True)
class CacheEntry:
    stem: str
    plan_path: Path
    plan_bytes: int
    sidecar: dict[str, Any] | None


class EngineCache:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root else default_engine_dir()

    def plan_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.plan"

    def sidecar_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.json"

    def timing_cache_path(self, trt_version: str, compute_capability: str) -> Path:
        """One timing cache per (TensorRT version, compute capability): TensorRT checks it against the device."""
        return self.root / "timing" / f"trt-{trt_version}.sm-{compute_capability.replace('.', '')}.cache"

    @contextmanager
    def locked(self, key: EngineKey) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / f".{key.stem()}.lock"
        with open(lock_path, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def read_sidecar(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _read(self, key: EngineKey) -> tuple[dict[str, Any] | None, bytes | None]:
        plan_path = self.plan_path(key)
        plan = plan_path.read_bytes() if plan_path.is_file() else None
        return self.read_sidecar(self.sidecar_path(key)), plan

    def decide(self, key: EngineKey) -> Decision:
        return decide(key, *self._read(key))

    def write(self, key: EngineKey, plan: bytes, build_seconds: float) -> None:
        """Plan first, sidecar last: a sidecar whose plan_sha256 matches marks a complete entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.plan_path(key), plan)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "model": key.model,
            "key": key.identity(),
            "digest": key.digest(),
            "plan_sha256": sha256_bytes(plan),
            "plan_bytes": len(plan),
            "build_seconds": round(build_seconds, 3),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "built_on": socket.gethostname(),
        }
        atomic_write(self.sidecar_path(key), json.dumps(sidecar, indent=2, sort_keys=True).encode())

    def get_or_build(
        self,
        key: EngineKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], T | None],
    ) -> tuple[T, Outcome]:
        """Load the engine for ``key`` or build, store and load it. Holds the key's lock throughout."""
        with self.locked(key):
            sidecar, plan = self._read(key)
            decision = decide(key, sidecar, plan)
            reason = decision.reason
            if decision.action == "load" and plan is not None:
                engine = deserialize(plan)
                if engine is not None:
                    log.info("engine %s: loaded from cache (%s)", key.stem(), reason)
                    return engine, Outcome(False, reason, self.plan_path(key))
                reason = "cached plan failed to deserialise"
            log.info("engine %s: building (%s)", key.stem(), reason)
            start = time.monotonic()
            plan = build()
            elapsed = time.monotonic() - start
            engine = deserialize(plan)
            if engine is None:
                raise FacestreamError(f"engine {key.stem()}: a freshly built plan does not deserialise")
            self.write(key, plan, elapsed)
            log.info("engine %s: built in %.1f s and cached at %s", key.stem(), elapsed, self.plan_path(key))
            return engine, Outcome(True, reason, self.plan_path(key))

    def entries(self) -> list[CacheEntry]:
        if not self.root.is_dir():
            return []
        out = []
        for plan in sorted(self.root.glob("*.plan")):
            sidecar = self.read_sidecar(plan.with_suffix(".json"))
            out.append(CacheEntry(plan.stem, plan, plan.stat().st_size, sidecar))
        return out

    def remove(self, model: str | None = None) -> list[Path]:
        """Delete plans and sidecars (of one model, or all); timing caches stay. Returns the removed paths."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in sorted(self.root.iterdir()):
            if path.suffix not in (".plan", ".json", ".lock") or not path.is_file():
                continue
            name = path.name.lstrip(".")
            # <model>.<precision>.<digest>.<ext>: exactly two dots after the model name, so "a" never matches "a.b".
            if model is not None and not (
                name.startswith(f"{model}.") and name[len(model) + 1 :].count(".") == 2
            ):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
        return removed
