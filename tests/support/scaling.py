"""The scaled topology of docs/scaling.md as real processes on loopback, shared by
tests/pipeline/test_scaling_e2e.py and bench/bench_scaling.py.

Two inference shards ("a", "b"), each its own ``facestream stage capture|preprocess|inference`` processes with
tcp hops, one ``facestream stage sink`` taking every stream, the gallery on a PostgreSQL URL and the sink's
events on a NATS JetStream server. Cameras are pinned to shards with the per-source ``shard:`` field.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.pipeline.helpers import (
    REPO,
    cli,
    kill_tree,
    make_config,
    metric_sum,
    metrics_url,
    scrape,
    stage_pid,
    start,
    wait_for,
)

SHARDS = ("a", "b")
STAGES = ("inference", "preprocess", "capture")  # start order: the receiver binds before its sender


def tcp_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def demo_cameras(per_shard: int = 2, max_fps: float = 10) -> list[dict[str, Any]]:
    """The looped demo clip as live cameras, ``per_shard`` pinned to each shard (cam0.. on a, then b)."""
    return [{"id": f"cam{i}", "uri": "demo", "loop": True, "policy": "latest", "max_fps": max_fps,
             "shard": SHARDS[i // per_shard]} for i in range(per_shard * len(SHARDS))]


class ResultsTail:
    """Reads results.jsonl incrementally and keeps, per stream, (wall time the sink emitted it, record) pairs
    (compare with ``time.time()``)."""

    def __init__(self, out: Path):
        self.path, self.offset = out / "results.jsonl", 0
        self.by_stream: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def poll(self) -> ResultsTail:
        if not self.path.exists():
            return self
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self.offset += end
        now = time.time()
        for line in chunk[:end].splitlines():
            if line.strip():
                rec = json.loads(line)
                sink = rec.get("stages", {}).get("sink")
                t = sink[1] / 1e9 if sink and sink[1] else now
                self.by_stream.setdefault(rec["stream"], []).append((t, rec))
        return self

    def count(self, stream: str) -> int:
        return len(self.by_stream.get(stream, []))

    def identities(self, stream: str, since: float = 0.0) -> list[str]:
        return [f["identity"] for t, r in self.by_stream.get(stream, []) if t >= since
                for f in r["faces"] if f.get("identity")]

    def first_named(self, stream: str, name: str, since: float) -> float | None:
        for t, r in self.by_stream.get(stream, []):
            if t >= since and any(f.get("identity") == name for f in r["faces"]):
                return t
        return None


class Topology:
    """Builds the configs under ``root`` and starts/stops the processes."""

    def __init__(self, root: Path, sources: list[dict[str, Any]], gallery_url: str, nats_url: str,
                 models_dir: str, inference: dict[str, Any] | None = None):
        self.root, self.sources = root, sources
        self.env = {"FACESTREAM_MODELS": models_dir}
        sink_hop = {"bind": tcp_port()}
        shards = {"shards": list(SHARDS)}
        infer = {"embed": True, "recognizer": "gallery", "gallery": gallery_url, "models_dir": models_dir,
                 **(inference or {})}
        nats = {"nats": {"enabled": True, "url": nats_url, "ack_timeout_s": 1.0}}
        self.dirs = {k: root / k for k in ("sink", *SHARDS)}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.cfgs = {"sink": make_config(self.dirs["sink"], sources, transport={"sink": sink_hop}, shard=shards,
                                         inference=infer, integrations=nats)}
        for k in SHARDS:
            hops = {"preprocess": {"bind": tcp_port()}, "inference": {"bind": tcp_port()}, "sink": sink_hop}
            self.cfgs[k] = make_config(self.dirs[k], sources, transport=hops, shard={**shards, "id": k},
                                       inference=infer)
        self.mine = {k: [s["id"] for s in sources if s["shard"] == k] for k in SHARDS}
        self.procs: dict[str, subprocess.Popen] = {}
        self.out = self.dirs["sink"] / "out"
        self.tail = ResultsTail(self.out)

    def launch(self, key: str, stage: str) -> None:
        self.procs[f"{key}-{stage}"] = start(cli("stage", stage, "--config", str(self.cfgs[key])),
                                             self.dirs[key] / f"{stage}.log", env=self.env)

    def start_all(self) -> None:
        self.launch("sink", "sink")
        for k in SHARDS:
            for stage in STAGES:
                self.launch(k, stage)

    def kill_stage(self, key: str, stage: str) -> None:
        """SIGKILL one stage process (by its pid file, as an operator or the OOM killer would)."""
        pid = stage_pid(self.dirs[key] / "run", stage)
        assert pid is not None, f"no pid file for {key}/{stage}"
        os.kill(pid, signal.SIGKILL)
        self.procs[f"{key}-{stage}"].wait(10)

    def metric(self, key: str, process: str, name: str, **labels: str) -> float:
        """A metric summed over ``labels`` from the /metrics of one stage process of shard (or sink) ``key``."""
        url = metrics_url(self.dirs[key] / "run", process)
        return metric_sum(scrape(url), name, **labels) if url else float("nan")

    def logs(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {p.parent.name}/{p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted(self.root.glob("*/*.log")))

    def events(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.out / "events").glob("*.jsonl")):
            text = p.read_text()
            out += [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]
        return out

    def wait(self, cond: Callable[[], Any], timeout: float, what: str) -> Any:
        try:
            return wait_for(lambda: cond(), timeout, what, interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def stop_shards(self) -> None:
        for key, p in self.procs.items():
            if not key.startswith("sink"):
                kill_tree(p)

    def stop(self) -> None:
        for p in self.procs.values():
            kill_tree(p)


def gallery_cli(gallery_url: str, env: dict[str, str], *args: str) -> float:
    """``facestream gallery ARGS --gallery URL`` as its own process ("another host"); returns the wall time it
    exited (successfully)."""
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "gallery", *args, "--gallery", gallery_url],
                       cwd=REPO, capture_output=True, text=True, timeout=180, env={**os.environ, **env})
    done = time.time()
    assert r.returncode == 0, r.stdout + r.stderr
    return done


def enrol(gallery_url: str, name: str, photo: Path, env: dict[str, str]) -> float:
    """``facestream gallery add NAME PHOTO`` against the shared gallery; the wall time the CLI exited."""
    return gallery_cli(gallery_url, env, "add", name, str(photo))


def write_enrolment_photo(path: Path) -> Path:
    """The demo's enrolment view of the astronaut (another photo of the person the looped clip shows)."""
    import cv2

    from facestream.pipeline.demo_gallery import enrolment_view

    cv2.imwrite(str(path), cv2.cvtColor(enrolment_view(), cv2.COLOR_RGB2BGR))
    return path
