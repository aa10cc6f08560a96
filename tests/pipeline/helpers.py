"""Helpers for the multi-process pipeline tests: configs, test videos, processes, metrics scraping."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]


def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def write_video(path: Path, frames: int = 120, size: tuple[int, int] = (320, 240), fps: float = 25.0) -> Path:
    """A clip of the astronaut photo sliding sideways, with the frame index drawn in (frames differ)."""
    photo = astronaut_bgr()
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "cv2.VideoWriter could not open mp4v"
    for i in range(frames):
        x0 = 90 + (i % 60)
        crop = photo[0:300, x0 : x0 + 300]
        frame = cv2.resize(crop, size)
        cv2.putText(frame, str(i), (5, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()
    return path


def make_config(tmp: Path, sources: list[dict[str, Any]], **sections: dict[str, Any]) -> Path:
    """A YAML config whose sockets, outputs and metrics stay inside ``tmp`` (metrics on free ports)."""
    run_dir = tmp / "run"
    cfg: dict[str, Any] = {
        "sources": sources,
        "transport": {"run_dir": str(run_dir), "heartbeat_s": 0.5, "peer_timeout_s": 2.0},
        "sink": {"out_dir": str(tmp / "out")},
        "metrics": {"ports": {"capture": 0, "preprocess": 0, "inference": 0, "sink": 0}},
        "inference": {"hog_upsample": 0, "min_face": 20, "embed": False, "recognizer": "none"},
        # The suite's small clips at their own size (cheap); enlarging small frames, the default, is tested in
        # tests/pipeline/stages/test_preprocess.py and bench/bench_small_video.py.
        "preprocess": {"max_upscale": 1.0},
        "supervisor": {"eos_linger_s": 1.0, "restart_backoff_min_s": 0.2},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "facestream.pipeline.cli", *args]


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    e = dict(os.environ)
    e["PYTHONUNBUFFERED"] = "1"
    e.update(env or {})
    return subprocess.Popen(args, cwd=REPO, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=e,  # noqa: SIM115
                            start_new_session=True)


def read_results(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def wait_for(cond, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def metrics_url(run_dir: Path, stage: str) -> str | None:
    p = run_dir / f"metrics-{stage}.url"
    return p.read_text().strip() if p.exists() else None


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric_sum(samples: dict, name: str, **labels: str) -> float:
    total = 0.0
    for (n, lab), v in samples.items():
        d = dict(lab)
        if n == name and all(d.get(k) == val for k, val in labels.items()):
            total += v
    return total


def stage_pid(run_dir: Path, stage: str) -> int | None:
    p = run_dir / f"{stage}.pid"
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(5)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM the run, wait for it, make sure nothing is left; returns its exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    finally:
        kill_tree(proc)


def tcp_hops() -> dict[str, dict[str, str]]:
    """Transport config putting every hop on its own free loopback port."""
    hops = {}
    for stage in ("preprocess", "inference", "sink"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            hops[stage] = {"bind": f"tcp://127.0.0.1:{s.getsockname()[1]}"}
    return hops


UPSTREAM = {"preprocess": ("capture", "frame"), "inference": ("preprocess", "batch"), "sink": ("inference", "result")}


def run_id(run_dir: Path) -> str:
    """The transport.run_id of the `facestream run` on ``run_dir`` (its supervisor writes RUN_DIR/run.id)."""
    return (run_dir / "run.id").read_text().strip()


def good_message(stage: str, seq: int, run: str = "") -> list:
    """A good message for ``stage``: a frame for preprocess, a scaled batch for inference, a result for the sink;
    ``run`` is the run id it carries (a stage of a `facestream run` takes only its own run's messages)."""
    from facestream.pipeline.records import ItemMeta
    from facestream.pipeline.wire import Item, Message, encode, raw_payload

    sender, mtype = UPSTREAM[stage]
    now = time.time_ns()
    if stage == "preprocess":
        it = Item("cam", seq, now, time.monotonic_ns(), meta=ItemMeta("lossless"), data=cv2.resize(astronaut_bgr(),
                                                                                                    (320, 240)))
    elif stage == "inference":
        rgb = cv2.cvtColor(cv2.resize(astronaut_bgr(), (128, 128)), cv2.COLOR_BGR2RGB)
        it = Item("cam", seq, now, time.monotonic_ns(), meta=ItemMeta("lossless", None, 0.25, (512, 512)), data=rgb)
    else:
        it = Item("cam", seq, now, time.monotonic_ns(), meta=ItemMeta("lossless", None, 1.0, faces=[]))
    if it.data is not None:
        it.payload = raw_payload(it.data)
    return encode(Message(mtype, [it], sender, now, run=run))


def lfw_split(lfw: Path) -> list[tuple[str, Path, list[Path]]]:
    """Per LFW person: (name, the first photo that passes the enrolment gate, every other photo)."""
    from facestream.errors import FacestreamError
    from facestream.pipeline.recognition.enrolment import PhotoEnroller

    enroller, split = PhotoEnroller(), []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        for k, photo in enumerate(photos):
            try:
                enroller.enrol_item(photo)
            except FacestreamError:
                continue
            split.append((person.name, photo, photos[:k] + photos[k + 1 :]))
            break
    return split
