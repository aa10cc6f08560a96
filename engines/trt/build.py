"""Build a serialized TensorRT plan from ONNX bytes, with the API TensorRT 10.x and 11.x share.

Strongly typed network (precision comes from the ONNX file: FP32, FP16 casts, or INT8 Q/DQ), explicit
optimisation profiles, a workspace limit, a timing cache per (TensorRT version, compute capability), and
progress lines with elapsed time (builds take minutes to tens of minutes on edge boxes).
``trt`` is passed in so the logic runs against a fake module in tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

from ..manifest import ProfileSpec
from .cache import atomic_write

log = logging.getLogger(__name__)
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
# TensorRT version that introduced each level (the Jetson images ship 10.3, which has only AMPERE_PLUS).
HARDWARE_LEVEL_SINCE = {"ampere_plus": (8, 6), "same_compute_capability": (10, 9)}
HEARTBEAT_SECONDS = 30.0


@dataclass(frozen=True)
class BuildSettings:
    workspace_bytes: int = 1 << 30
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    timing_cache_path: Path | None = None
    heartbeat_seconds: float = HEARTBEAT_SECONDS


class Progress:
    """Phase lines with elapsed time, plus a heartbeat while TensorRT builds silently."""

    def __init__(
        self, label: str, emit: Callable[[str], None] | None = None, heartbeat_seconds: float = 30.0
    ):
        self.label, self.emit = label, emit or log.info
        self.start = time.monotonic()
        self.heartbeat_seconds = heartbeat_seconds
        self._stop = threading.Event()
        self._phase = "starting"

    def phase(self, text: str) -> None:
        self._phase = text
        self.emit(f"[{self.label}] {time.monotonic() - self.start:7.1f}s {text}")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            self.emit(f"[{self.label}] {time.monotonic() - self.start:7.1f}s still {self._phase}")

    def __enter__(self) -> Progress:
        threading.Thread(target=self._beat, daemon=True, name="trt-build-heartbeat").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def _parse(trt: Any, builder: Any, logger: Any, onnx_bytes: bytes) -> Any:
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else "no error recorded"
        raise FacestreamError(f"TensorRT cannot parse the ONNX file ({len(errors)} error(s)); first: {first}")
    return network, parser  # the parser must outlive the network's weights


def _configure(
    trt: Any, builder: Any, network: Any, profiles: dict[str, ProfileSpec], s: BuildSettings
) -> Any:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(s.workspace_bytes))
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    missing = [n for n in names if n not in profiles]
    extra = [n for n in profiles if n not in names]
    if missing or extra:
        raise FacestreamError(
            f"profiles do not match the network inputs {names}: missing {missing}, unknown {extra}"
        )
    profile = builder.create_optimization_profile()
    for name in names:
        p = profiles[name]
        profile.set_shape(name, tuple(p.min), tuple(p.opt), tuple(p.max))
    config.add_optimization_profile(profile)
    if s.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if s.hardware_compatibility != "none":
        if s.hardware_compatibility not in HARDWARE_LEVELS:
            raise FacestreamError(
                f"hardware compatibility {s.hardware_compatibility!r}: use {', '.join(HARDWARE_LEVELS)}"
            )
        config.hardware_compatibility_level = hardware_level(trt, s.hardware_compatibility)
    return config


def trt_version(trt: Any) -> tuple[int, ...]:
    """(major, minor, ...) of the tensorrt module; (0,) when it does not say."""
    parts = []
    for p in str(getattr(trt, "__version__", "0")).split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts) or (0,)


def hardware_level(trt: Any, name: str) -> Any:
    """The HardwareCompatibilityLevel member for ``name``, or a one-line error when this TensorRT lacks it."""
    since = HARDWARE_LEVEL_SINCE.get(name, (0,))
    member = getattr(trt.HardwareCompatibilityLevel, name.upper(), None)
    if member is None or trt_version(trt) < since:
        need = ".".join(map(str, since))
        raise FacestreamError(
            f"hardware compatibility {name!r} needs TensorRT >= {need}; this is TensorRT "
            f"{getattr(trt, '__version__', '?')} (use 'none' or 'ampere_plus')"
        )
    return member


def _attach_timing_cache(config: Any, path: Path | None) -> Any:
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    cache = config.create_timing_cache(data)
    if cache is None and data:  # a stale or foreign cache: start afresh rather than fail the build
        log.warning("timing cache %s is unusable; starting a new one", path)
        cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # TensorRT refuses a cache from another device or version: build with a fresh one rather than none.
        log.warning("TensorRT rejected the timing cache %s; building with a new one", path)
        cache = config.create_timing_cache(b"")
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise FacestreamError("TensorRT rejected a new, empty timing cache; cannot build")
    return cache


def build_plan(
    trt: Any,
    onnx_bytes: bytes,
    profiles: dict[str, ProfileSpec],
    settings: BuildSettings | None = None,
    label: str = "engine",
    emit: Callable[[str], None] | None = None,
) -> bytes:
    """Parse, configure and build; return the serialized plan. Errors are FacestreamErrors with one line."""
    s = settings or BuildSettings()
    logger = trt.Logger(trt.Logger.WARNING)
    with Progress(label, emit, s.heartbeat_seconds) as progress:
        progress.phase(f"parsing ONNX ({len(onnx_bytes)} bytes) into a strongly typed network")
        builder = trt.Builder(logger)
        network, _parser = _parse(trt, builder, logger, onnx_bytes)
        progress.phase(
            f"configuring: workspace {s.workspace_bytes >> 20} MiB, {len(profiles)} profile input(s)"
        )
        config = _configure(trt, builder, network, profiles, s)
        timing = _attach_timing_cache(config, s.timing_cache_path)
        progress.phase("building (TensorRT tunes kernels; this is the long part)")
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise FacestreamError(f"TensorRT failed to build {label}; run with -v for TensorRT's log")
        if s.timing_cache_path is not None:
            s.timing_cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(s.timing_cache_path, bytes(timing.serialize()))
        data = bytes(plan)
        progress.phase(f"built: plan {len(data)} bytes")
    return data
