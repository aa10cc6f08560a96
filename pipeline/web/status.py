"""``/api/status``: what runs, read from outside the stages (the run directory's pid files and metrics URLs, the
stages' own /metrics, the config, the gallery and the events store). The web app never reaches into a stage."""

from __future__ import annotations

import fcntl
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import STAGES, PipelineConfig
from ..run_dir import default_base

PROBE_TIMEOUT_S = 0.5


def _in_use(lock: Path) -> bool:
    """True while some process holds ``lock`` (a StageLock file)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we got
    return False


def find_run_dir(cfg: PipelineConfig) -> Path:
    """The configured run directory, else that of the newest live ``facestream run`` under the default base
    (a supervised run has a directory of its own), else the base itself."""
    if cfg.transport.run_dir:
        return Path(cfg.transport.run_dir)
    base = default_base()
    live = [d for d in base.glob("run-*") if _in_use(d / "run.lock")] if base.is_dir() else []
    return max(live, key=lambda d: d.stat().st_mtime) if live else base


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _scrape(url: str) -> dict[str, Any]:
    """Whether the endpoint answers, the stage's ``facestream_stage_up`` and, for inference, backend per model."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as r:  # noqa: S310 - the run's own endpoint
            text = r.read(4 << 20).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return {"reachable": False, "error": str(getattr(exc, "reason", exc))[:200]}
    out: dict[str, Any] = {"reachable": True, "backends": {}}
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "facestream_stage_up":
                    out["up"] = s.value == 1
                elif s.name == "facestream_engine_backend_info" and s.value == 1:
                    out["backends"][s.labels.get("model", "?")] = {"backend": s.labels.get("backend"),
                                                                  "reason": s.labels.get("reason")}
    except ValueError:
        out["parse_error"] = True
    return out


def _metrics_url(cfg: PipelineConfig, run_dir: Path, stage: str) -> str | None:
    try:
        url = (run_dir / f"metrics-{stage}.url").read_text().strip()
        if url.startswith("http://"):
            return url
    except OSError:
        pass
    port = cfg.metrics.ports.get(stage, 0)
    if cfg.metrics.enabled and port:
        host = "127.0.0.1" if cfg.metrics.host in ("0.0.0.0", "::") else cfg.metrics.host
        return f"http://{host}:{port}/metrics"
    return None


def stages_status(cfg: PipelineConfig, run_dir: Path) -> list[dict[str, Any]]:
    rows = [{"stage": s, "pid": _pid(run_dir / f"{s}.pid"), "metrics_url": _metrics_url(cfg, run_dir, s)}
            for s in STAGES]
    with ThreadPoolExecutor(len(rows)) as pool:
        probes = list(pool.map(lambda r: _scrape(r["metrics_url"]) if r["metrics_url"] else {}, rows))
    for row, probe in zip(rows, probes, strict=True):
        row.update(probe)
        row["running"] = bool(row["pid"]) or bool(probe.get("up"))
    return rows


def sources_status(cfg: PipelineConfig) -> list[dict[str, Any]]:
    from ..sources.uri import mask_uri

    return [{"id": s.id, "kind": s.kind, "uri": mask_uri(str(s.uri)), "policy": s.policy, "max_fps": s.max_fps,
             "loop": s.loop} for s in cfg.sources]


class StatusCache:
    """The stages' probes at most once a second, however many browsers poll."""

    def __init__(self, cfg: PipelineConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir
        self._at, self._stages = 0.0, []

    def stages(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._at > 1.0:
            self._stages = stages_status(self.cfg, self.run_dir)
            self._at = time.monotonic()
        return self._stages
