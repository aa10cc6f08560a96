"""Engine cache: the key covers every component, the sidecar round-trips, and the rebuild rules hold."""

from __future__ import annotations

import dataclasses
import json

import pytest

from facestream.engines.trt.cache import SIDECAR_FORMAT, EngineCache, EngineKey, decide, sha256_bytes

BASE = EngineKey(
    model="face-embedder",
    onnx_sha256="a" * 64,
    trt_version="10.3.0",
    gpu_name="Orin (nvgpu)",
    compute_capability="8.7",
    precision="fp16",
    profiles=(("image", (1, 1, 128, 128), (8, 1, 128, 128), (32, 1, 128, 128)),),
)


class Counter:
    """A build function that counts its calls and returns a recognisable plan."""

    def __init__(self, plan: bytes = b"PLAN-v1"):
        self.calls, self.plan = 0, plan

    def __call__(self) -> bytes:
        self.calls += 1
        return self.plan


def load(plan: bytes):
    return plan.decode() if plan.startswith(b"PLAN") else None


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "b" * 64},
        {"trt_version": "10.3.1"},
        {"gpu_name": "NVIDIA H200"},
        {"compute_capability": "9.0"},
        {"precision": "fp32"},
        {"profiles": (("image", (1, 1, 128, 128), (8, 1, 128, 128), (64, 1, 128, 128)),)},
        {"profiles": (("image", (1, 1, 128, 128), (4, 1, 128, 128), (32, 1, 128, 128)),)},
        {"version_compatible": True},
        {"hardware_compatibility": "ampere_plus"},
    ],
)
def test_every_key_component_changes_the_digest(change):
    other = dataclasses.replace(BASE, **change)
    assert other.digest() != BASE.digest()
    assert other.stem() != BASE.stem()
    (field,) = change
    assert (
        decide(
            other, {"format": SIDECAR_FORMAT, "key": BASE.identity(), "plan_sha256": sha256_bytes(b"P")}, b"P"
        ).reason
        == f"key differs in {field}"
    )


def test_model_name_names_files_but_is_not_identity():
    renamed = dataclasses.replace(BASE, model="other")
    assert renamed.digest() == BASE.digest()
    assert renamed.stem().startswith("other.fp16.")


def test_sidecar_round_trip(tmp_path):
    cache = EngineCache(tmp_path)
    cache.write(BASE, b"PLAN-bytes", build_seconds=1.25)
    side = json.loads(cache.sidecar_path(BASE).read_text())
    assert side["key"] == BASE.identity()
    assert side["digest"] == BASE.digest()
    assert side["plan_sha256"] == sha256_bytes(b"PLAN-bytes")
    assert side["plan_bytes"] == 10 and side["build_seconds"] == 1.25 and side["model"] == "face-embedder"
    assert cache.decide(BASE).action == "load"
    (entry,) = cache.entries()
    assert entry.stem == BASE.stem() and entry.plan_bytes == 10 and entry.sidecar == side


def test_no_rebuild_when_nothing_changed(tmp_path):
    cache, build = EngineCache(tmp_path), Counter()
    engine, first = cache.get_or_build(BASE, build, load)
    assert (engine, first.built, first.reason) == ("PLAN-v1", True, "no engine for this key")
    mtime = cache.plan_path(BASE).stat().st_mtime_ns
    for _ in range(3):
        engine, again = EngineCache(tmp_path).get_or_build(BASE, build, load)
        assert (engine, again.built, again.reason) == ("PLAN-v1", False, "exact key match")
    assert build.calls == 1
    assert cache.plan_path(BASE).stat().st_mtime_ns == mtime


def test_changed_key_rebuilds_and_keeps_the_old_engine(tmp_path):
    cache, build = EngineCache(tmp_path), Counter()
    cache.get_or_build(BASE, build, load)
    newer = dataclasses.replace(BASE, trt_version="10.4.0")
    _, outcome = cache.get_or_build(newer, build, load)
    assert outcome.built and build.calls == 2
    assert {e.stem for e in cache.entries()} == {BASE.stem(), newer.stem()}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda c: c.plan_path(BASE).write_bytes(b"PLAN-v1"[:3]), "plan file does not match its sidecar"),
        (lambda c: c.plan_path(BASE).write_bytes(b"PLAN-v2"), "plan file does not match its sidecar"),
        (lambda c: c.sidecar_path(BASE).write_text("{not json"), "sidecar missing or unreadable"),
        (lambda c: c.sidecar_path(BASE).unlink(), "sidecar missing or unreadable"),
        (lambda c: c.plan_path(BASE).unlink(), "no engine for this key"),
    ],
)
def test_damaged_entries_rebuild(tmp_path, damage, reason):
    cache, build = EngineCache(tmp_path), Counter()
    cache.get_or_build(BASE, build, load)
    damage(cache)
    assert cache.decide(BASE).reason.startswith(reason)
    engine, outcome = cache.get_or_build(BASE, build, load)
    assert outcome.built and outcome.reason.startswith(reason) and engine == "PLAN-v1"
    assert build.calls == 2
    assert cache.decide(BASE).action == "load"


def test_plan_that_fails_to_deserialise_rebuilds(tmp_path):
    cache = EngineCache(tmp_path)
    cache.write(BASE, b"XXXX-from-another-trt", build_seconds=0)  # consistent files, unloadable plan
    build = Counter()
    engine, outcome = cache.get_or_build(BASE, build, load)
    assert outcome.built and outcome.reason == "cached plan failed to deserialise" and engine == "PLAN-v1"
    assert cache.plan_path(BASE).read_bytes() == b"PLAN-v1"


def test_build_that_does_not_load_is_an_error_and_caches_nothing(tmp_path):
    from facestream.errors import FacestreamError

    cache = EngineCache(tmp_path)
    with pytest.raises(FacestreamError, match="does not deserialise"):
        cache.get_or_build(BASE, Counter(b"garbage"), load)
    assert cache.entries() == []


def test_remove_one_model_or_all(tmp_path):
    cache = EngineCache(tmp_path)
    other = dataclasses.replace(BASE, model="face-embedder.v2")
    third = dataclasses.replace(BASE, model="detector")
    for key in (BASE, other, third):
        cache.get_or_build(key, Counter(), load)
    tc = cache.timing_cache_path("10.3.0", "8.7")
    tc.parent.mkdir()
    tc.write_bytes(b"t")
    removed = cache.remove("face-embedder")
    assert {p.name for p in removed} >= {f"{BASE.stem()}.plan", f"{BASE.stem()}.json"}
    assert {e.stem for e in cache.entries()} == {other.stem(), third.stem()}
    cache.remove()
    assert cache.entries() == [] and tc.is_file()


def test_timing_cache_path_per_version_and_capability(tmp_path):
    cache = EngineCache(tmp_path)
    paths = {cache.timing_cache_path(v, cc) for v in ("10.3.0", "11.4.0") for cc in ("8.7", "9.0")}
    assert len(paths) == 4


def test_default_engine_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTREAM_ENGINES", str(tmp_path / "e"))
    assert EngineCache().root == tmp_path / "e"
