"""Lossless sources lose nothing under CPU stress (#13): stills of mixed sizes (300-4000 px) and a short clip,
run through real processes (ipc + shared-memory hops, the default deployment on one host) while `stress-ng`
keeps both CPUs busy. Every frame must come out: results == frames, dropped_total == 0, lost == 0. Once
with the default HOG detector, once with the CNN detector (the case that lost 81 of 275 frames before the
ring gave credit back).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import cv2
import pytest
import yaml

from .helpers import (
    astronaut_bgr,
    cli,
    kill_tree,
    make_config,
    read_results,
    read_summary,
    start,
    write_video,
)

pytestmark = pytest.mark.slow

# Long sides 300..4000 px, landscape and portrait, in an order that alternates small and large frames.
SIZES = [(300, 400), (4000, 3000), (640, 480), (2400, 3200), (1024, 768), (3000, 4000), (800, 300), (3840, 2160),
         (480, 640), (1600, 1200), (2000, 2000), (300, 300), (3264, 2448), (720, 1280), (4000, 1000), (1920, 1080),
         (500, 700), (2592, 1944), (1200, 1600), (3500, 2500)]


def _stills(folder, sizes) -> int:
    folder.mkdir()
    photo = astronaut_bgr()
    for i, (w, h) in enumerate(sizes):
        img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        cv2.putText(img, str(i), (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return len(sizes)


def _stress(seconds: int) -> subprocess.Popen:
    """Two busy CPU workers: stress-ng (tests/run.sh installs it), or two spinning Pythons where it is missing."""
    if shutil.which("stress-ng"):
        args = ["stress-ng", "--cpu", "2", "--timeout", f"{seconds}s", "--quiet"]
    else:
        spin = f"import multiprocessing as mp, time\ndef f():\n    t = time.time() + {seconds}\n    while time.time() < t: pass\n" \
               "if __name__ == '__main__':\n    ps = [mp.Process(target=f) for _ in range(2)]\n    [p.start() for p in ps]\n" \
               "    [p.join() for p in ps]\n"
        args = [sys.executable, "-c", spin]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # stress-ng and its workers: the group this test started
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.mark.parametrize(("detector", "stills", "clip_frames", "preprocess"), [
    (None, SIZES, 40, {}),  # the default detector
    ({"type": "cnn", "min_face": 40}, SIZES[:10], 24, {"detector_width": 640, "detector_height": 360}),
], ids=["default", "cnn"])
def test_lossless_sources_lose_nothing_under_cpu_stress(tmp_path, detector, stills, clip_frames, preprocess):
    n_stills = _stills(tmp_path / "stills", stills)
    clip = write_video(tmp_path / "clip.mp4", frames=clip_frames, size=(640, 360))
    sources = [{"id": "stills", "uri": str(tmp_path / "stills")}, {"id": "clip", "uri": str(clip)}]
    cfg = make_config(tmp_path, sources, preprocess=preprocess)
    data = yaml.safe_load(cfg.read_text())
    data["inference"] = {"embed": False, "recognizer": "none", **({"detector": detector} if detector else {})}
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    stress = _stress(120)
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        code = proc.wait(85)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        kill_tree(proc)
        _end(stress)
    log = (tmp_path / "log.txt").read_text()
    assert code == 0, f"run did not finish in time (exit {code}): {log[-3000:]}"
    streams = read_summary(out)["streams"]
    for sid, frames in (("stills", n_stills), ("clip", clip_frames)):
        s = streams[sid]
        assert s["frames_total"] == frames and s["results"] == frames, (sid, s)
        assert s["dropped_total"] == 0 and s["lost"] == 0, (sid, s)
    per_stream = {sid: sorted(r["seq"] for r in read_results(out) if r["stream"] == sid) for sid in streams}
    assert per_stream == {"stills": list(range(n_stills)), "clip": list(range(clip_frames))}
