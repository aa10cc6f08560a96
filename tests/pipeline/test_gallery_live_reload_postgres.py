"""The real pipeline on a shared PostgreSQL gallery: an operator enrols someone through the CLI on another
"host" (another process, its own connections) while the run is live; the running inference stage hears the
NOTIFY and names her within seconds, without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2
import pytest

from facestream.pipeline.demo_gallery import enrolment_view

from .helpers import REPO, cli, make_config, read_results, start, stop, wait_for

pytestmark = pytest.mark.slow


def _named(out, name: str) -> int:
    return sum(1 for r in read_results(out) for f in r["faces"] if f.get("identity") == name)


def test_enrolment_on_another_host_reaches_a_running_pipeline(tmp_path, postgres_url):
    env = {"FACESTREAM_MODELS": str(tmp_path / "models")}
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 10}],
                      inference={"embed": True, "recognizer": "gallery", "gallery": postgres_url,
                                 "models_dir": str(tmp_path / "models")})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt", env=env)
    out = tmp_path / "out"
    try:
        wait_for(lambda: any(f.get("identity", "").startswith("unknown#") for r in read_results(out)
                             for f in r["faces"]), 180, "the face to be tracked as an unknown person")
        assert _named(out, "Eileen Collins") == 0
        photo = tmp_path / "eileen.png"
        cv2.imwrite(str(photo), cv2.cvtColor(enrolment_view(), cv2.COLOR_RGB2BGR))
        r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "gallery", "add", "Eileen Collins",
                            str(photo), "--gallery", postgres_url], cwd=REPO, capture_output=True, text=True,
                           timeout=120, env={**os.environ, **env})
        assert r.returncode == 0, r.stderr
        enrolled = time.monotonic()
        wait_for(lambda: _named(out, "Eileen Collins") >= 1, 15, "the running pipeline to name her")
        latency = time.monotonic() - enrolled
        print(f"named {latency:.2f} s after the enrolment committed")
        assert latency < 10, f"named only {latency:.1f} s after the enrolment"
        wait_for(lambda: _named(out, "Eileen Collins") >= 3, 30, "her to stay named")
        assert proc.poll() is None, "no restart happened"
    finally:
        stop(proc)
    log = (tmp_path / "log.txt").read_text()
    assert log.count("supervisor: started inference") == 1, "the inference stage was never restarted"
    assert "recognising against gallery postgresql://" in log
