"""The sink side of #14 through a running pipeline: the live-view feed on a real ZeroMQ SUB (annotated, named,
blurred when the face is unknown and privacy asks), the events store with each identification's crop and
frame, and `facestream events query` on what the run stored."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from facestream.pipeline.preview import PreviewFrame, decode_preview
from facestream.pipeline.sources.demo import DemoSource

from .helpers import REPO, cli, kill_tree, make_config, start

pytestmark = pytest.mark.slow
PERSON = "Eileen Collins"


def _run_demo(tmp: Path, **sections) -> tuple[Path, list[PreviewFrame]]:
    """The 150-frame demo with the live view on; every preview frame a SUB got while it ran."""
    tmp.mkdir(parents=True, exist_ok=True)
    endpoint = f"ipc://{tmp / 'preview.ipc'}"
    inference = {"embed": True, "recognizer": "gallery", "models_dir": str(tmp.parent / "models"),
                 **sections.pop("inference", {})}
    cfg = make_config(tmp, [{"id": "demo", "uri": "demo"}], inference=inference,
                      web={"preview_pub": endpoint, "preview_fps": 10}, **sections)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)  # before the sink binds: ZeroMQ connects when it appears
    proc = start(cli("run", str(cfg)), tmp / "log.txt")
    frames: list[PreviewFrame] = []
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if sub.poll(200):
                frame = decode_preview(sub.recv_multipart())
                assert frame is not None, "a malformed live-view message"
                frames.append(frame)
        assert proc.wait(10) == 0, (tmp / "log.txt").read_text()[-3000:]
    finally:
        sub.close(0)
        kill_tree(proc)
    return cfg, frames


def _picture(frame: PreviewFrame) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (frame.header["height"], frame.header["width"])
    return img


def _detail_ratio(frame: PreviewFrame, face: dict) -> float:
    """Detail (Laplacian variance) inside the face box of the preview over the same region of the clip frame."""
    img = _picture(frame)
    source = cv2.resize(DemoSource.render(frame.header["seq"]), (img.shape[1], img.shape[0]))
    x1, y1, x2, y2 = face["box"]
    dx, dy = (x2 - x1) // 5, (y2 - y1) // 5
    inner = (slice(y1 + dy, y2 - dy), slice(x1 + dx, x2 - dx))

    def detail(bgr: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(bgr[inner], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    return detail(img) / detail(source)


def _query(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli("events", "query", "--config", str(cfg), *args), cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_live_view_events_store_and_query_of_a_demo_run(tmp_path):
    cfg, frames = _run_demo(tmp_path / "named")
    demo = [f for f in frames if f.stream == "demo"]
    assert len(demo) >= 3, f"{len(demo)} live-view frames"
    for f in demo:
        _picture(f)
        assert {"seq", "ts_ns", "latency_ms", "fps", "dropped", "faces", "width", "height"} <= set(f.header)
        assert f.header["width"] == 640
    named = [(f, face) for f in demo for face in f.header["faces"] if face["identity"] == PERSON]
    assert len(named) >= 3, [f.header["faces"] for f in demo]
    assert any(f.header["fps"] > 0 for f in demo)
    sharp = min(_detail_ratio(f, face) for f, face in named[-3:])
    assert sharp > 0.4, f"a known face is drawn, not blurred (detail ratio {sharp:.2f})"

    out = tmp_path / "named" / "out"
    r = _query(cfg, "--person", PERSON, "--since", "1h", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    identified = [e for e in rows if e["kind"] == "identified"]
    assert identified and all(e["camera"] == "demo" and e["person"] == PERSON for e in rows)
    for e in identified:
        assert e["best_shot_path"] and Path(e["best_shot_path"]).is_file(), e
        assert e["frame"] and cv2.imread(str(out / e["frame"])) is not None, e

    r = _query(cfg, "--kind", "identified")
    assert r.returncode == 0, r.stderr
    table = list(csv.reader(io.StringIO(r.stdout)))
    assert table[0] == ["time", "camera", "kind", "identity", "person", "unknown_id", "score", "track_ref",
                        "event_id", "crop", "frame"]
    assert len(table) - 1 == len(identified) and {row[4] for row in table[1:]} == {PERSON}

    r = _query(cfg, "--since", "last tuesday")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run(cli("events", "query", "--db", str(tmp_path / "none.db")), cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unknown_face_is_blurred_in_the_live_view(tmp_path):
    """An empty gallery: the astronaut is a stranger, and with privacy.blur_unknown the feed never shows her."""
    _, frames = _run_demo(tmp_path / "blurred", inference={"gallery": str(tmp_path / "empty.db")},
                          privacy={"blur_unknown": True})
    unknown = [(f, face) for f in frames for face in f.header["faces"]
               if str(face["identity"]).startswith("unknown") and face["box"][2] - face["box"][0] >= 40]
    assert len(unknown) >= 3, [f.header["faces"] for f in frames]
    assert not any(face["identity"] == PERSON for f in frames for face in f.header["faces"])
    worst = max(_detail_ratio(f, face) for f, face in unknown)
    assert worst < 0.25, f"an unknown face must be unrecognisable in the live view (detail ratio {worst:.2f})"
    out = tmp_path / "blurred" / "out"
    saved = list((out / "frames").glob("*.jpg"))
    assert saved, "the frames of the unknown's identifications are kept (blurred)"
