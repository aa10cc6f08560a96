"""Sharded cameras: the rendezvous assignment is the same in every process, spreads streams evenly, moves only
~1/N of them when a shard is added, honours pinned sources; a shard's stages see only its streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.config import PipelineConfig, load_config
from facestream.pipeline.config.shards import assign

from .helpers import REPO

STREAMS = [f"cam-{i:03d}" for i in range(400)]


def sharded(shards: list[str], me: str = "", pins: dict[str, str] | None = None, n: int = 8) -> PipelineConfig:
    pins = pins or {}
    sources = [{"id": f"cam{i}", "uri": "demo", **({"shard": pins[f"cam{i}"]} if f"cam{i}" in pins else {})}
               for i in range(n)]
    return PipelineConfig.model_validate({"sources": sources, "shard": {"id": me, "shards": shards}})


def test_the_assignment_is_the_same_in_every_process():
    code = ("import json; from facestream.pipeline.config.shards import assign; "
            f"print(json.dumps(assign(((s, None) for s in {STREAMS!r}), ['a', 'b', 'c'])))")
    runs = []
    for seed in ("1", "2"):  # Python's own str hash differs per process; the assignment must not
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True).stdout
        runs.append(json.loads(out))
    assert runs[0] == runs[1] == assign(((s, None) for s in STREAMS), ["a", "b", "c"])
    assert assign(((s, None) for s in STREAMS), ["c", "a", "b"]) == runs[0]  # the list's order does not matter


def test_streams_are_spread_evenly():
    where = assign(((s, None) for s in STREAMS), ["a", "b", "c", "d"])
    counts = {sh: list(where.values()).count(sh) for sh in "abcd"}
    assert all(70 <= c <= 130 for c in counts.values()), counts  # 100 each expected


def test_adding_a_shard_moves_only_about_one_in_n_streams_all_to_the_new_one():
    before = assign(((s, None) for s in STREAMS), ["a", "b", "c", "d"])
    after = assign(((s, None) for s in STREAMS), ["a", "b", "c", "d", "e"])
    moved = [s for s in STREAMS if before[s] != after[s]]
    assert all(after[s] == "e" for s in moved)
    assert 0.12 <= len(moved) / len(STREAMS) <= 0.28, len(moved)  # 1/5 expected
    removed = assign(((s, None) for s in STREAMS), ["a", "b", "d"])
    assert all(removed[s] == before[s] for s in STREAMS if before[s] != "c")  # only c's streams move


def test_pinned_sources_override_the_hash_and_stages_see_their_shard():
    free = sharded(["a", "b"]).shard_assignment()
    other = {"a": "b", "b": "a"}
    cfg = sharded(["a", "b"], me="a", pins={"cam0": other[free["cam0"]]})
    where = cfg.shard_assignment()
    assert where["cam0"] == other[free["cam0"]] and all(where[k] == free[k] for k in free if k != "cam0")
    mine = [s for s, sh in where.items() if sh == "a"]
    for stage in ("capture", "preprocess", "inference"):
        assert [s.id for s in cfg.for_stage(stage).sources] == mine
    assert len(cfg.for_stage("sink").sources) == 8  # the sink expects every stream
    assert cfg.for_stage("capture").for_stage("capture").sources == cfg.for_stage("capture").sources
    assert sharded(["a", "b"]).for_stage("capture").sources == sharded(["a", "b"]).sources  # no id: all


@pytest.mark.parametrize(("shard", "pins", "expect"), [
    ({"id": "c", "shards": ["a", "b"]}, {}, "not in shard.shards"),
    ({"shards": ["a", "a"]}, {}, "duplicate shard"),
    ({"shards": ["a b"]}, {}, "letters, digits"),
    ({"shards": ["a", "b"]}, {"shard": "z"}, "not in shard.shards"),
    ({}, {"shard": "a"}, "shard.shards is empty"),
])
def test_shard_mistakes_are_one_line(tmp_path, shard, pins, expect):
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"sources": [{"id": "cam", "uri": "demo", **pins}], "shard": shard}))
    with pytest.raises(FacestreamError, match=expect):
        load_config(p, environ={})


def test_config_shards_prints_the_assignment(tmp_path):
    p = tmp_path / "c.yaml"
    cfg = sharded(["a", "b"], me="b", pins={"cam3": "a"})
    p.write_text(json.dumps({"sources": [s.model_dump(exclude_none=True, include={"id", "uri", "shard"})
                                         for s in cfg.sources], "shard": {"id": "b", "shards": ["a", "b"]}}))
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "config", str(p), "--shards"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    where = cfg.shard_assignment()
    n_b = sum(1 for sh in where.values() if sh == "b")
    assert f"b: {n_b} stream(s)  <- this host" in r.stdout and f"a: {8 - n_b} stream(s)\n" in r.stdout
    assert "  cam3  (pinned)" in r.stdout.split("b:")[0]
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "config", "--shards"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no shards configured" in r.stderr and "Traceback" not in r.stderr
