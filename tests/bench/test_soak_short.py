"""A short soak in CI: the soak benchmark runs, samples every stage and applies its memory bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_soak_run_stays_within_its_memory_bound(tmp_path):
    r = subprocess.run([sys.executable, "bench/soak.py", "--duration", "30", "--sample-s", "3", "--video", "demo",
                        "--out", str(tmp_path), "--name", "soak-ci"], cwd=REPO, capture_output=True, text=True,
                       timeout=180)
    data = json.loads((tmp_path / "soak-ci.json").read_text())
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert data["verdict"] == "pass"
    last = data["samples"][-1]
    for stage in ("capture", "preprocess", "inference", "sink"):
        assert last[f"{stage}_rss_mb"] > 10 and last[f"{stage}_fds"] > 0, last
    assert (data["results_per_s_median"] or 0) > 0, "the pipeline must deliver results during the soak"
