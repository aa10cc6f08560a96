"""build_plan and the engine cache driven through a FAKE tensorrt module (tests/engines/fake_tensorrt.py).

These prove how our code calls the TensorRT 10/11 API, not that TensorRT accepts it: nothing here ran on
real TensorRT.
"""

from __future__ import annotations

import json
import multiprocessing as mp

import fake_tensorrt
import onnx
import pytest
import tiny_models

from facestream.engines.manifest import ProfileSpec
from facestream.engines.trt.build import BuildSettings, build_plan
from facestream.errors import FacestreamError

PROFILES = {"image": ProfileSpec(min=[1, 1, 16, 16], opt=[4, 1, 16, 16], max=[8, 1, 16, 16])}


@pytest.fixture(scope="module")
def cnn_bytes() -> bytes:
    return tiny_models.make_cnn()[0].SerializeToString()


def _header(plan: bytes) -> dict:
    n = int.from_bytes(plan[8:16], "little")
    return json.loads(plan[16 : 16 + n])


def test_fake_tensorrt_build_sets_profiles_workspace_and_flags(cnn_bytes, tmp_path):
    lines: list[str] = []
    settings = BuildSettings(
        workspace_bytes=256 << 20,
        version_compatible=True,
        hardware_compatibility="ampere_plus",
        timing_cache_path=tmp_path / "timing" / "t.cache",
    )
    plan = build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, settings, label="tiny", emit=lines.append)
    header = _header(plan)
    assert header["profiles"] == {"image": [[1, 1, 16, 16], [4, 1, 16, 16], [8, 1, 16, 16]]}
    assert header["workspace"] == 256 << 20
    assert header["flags"] == [int(fake_tensorrt.BuilderFlag.VERSION_COMPATIBLE)]
    assert header["hardware"] == int(fake_tensorrt.HardwareCompatibilityLevel.AMPERE_PLUS)
    phases = [line.split("s ", 1)[1] for line in lines]
    assert phases[0].startswith("parsing ONNX") and phases[-1].startswith("built: plan")
    assert all(line.startswith("[tiny] ") for line in lines)
    # The timing cache is written and then reused by the next build.
    assert settings.timing_cache_path.read_bytes() == b"FAKETC1"
    build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, settings)
    assert settings.timing_cache_path.read_bytes() == b"FAKETC2"


def test_fake_tensorrt_unusable_timing_cache_starts_afresh(cnn_bytes, tmp_path):
    path = tmp_path / "t.cache"
    path.write_bytes(b"from another gpu")
    build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, BuildSettings(timing_cache_path=path))
    assert path.read_bytes() == b"FAKETC1"


def test_fake_tensorrt_parser_errors_are_reported(cnn_bytes):
    broken = onnx.load_from_string(cnn_bytes)
    broken.graph.node[0].input[1] = "no_such_weight"
    with pytest.raises(
        FacestreamError, match=r"TensorRT cannot parse the ONNX file \(1 error\(s\)\); first: "
    ):
        build_plan(fake_tensorrt.module(), broken.SerializeToString(), PROFILES)


def test_fake_tensorrt_profiles_must_match_network_inputs(cnn_bytes):
    with pytest.raises(FacestreamError, match=r"missing \['image'\], unknown \['pixels'\]"):
        build_plan(fake_tensorrt.module(), cnn_bytes, {"pixels": PROFILES["image"]})


def test_fake_tensorrt_failed_build_is_an_error(cnn_bytes, monkeypatch):
    monkeypatch.setattr(fake_tensorrt.Builder, "build_serialized_network", lambda self, n, c: None)
    with pytest.raises(FacestreamError, match="TensorRT failed to build"):
        build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES)


def test_fake_tensorrt_heartbeat_while_building(cnn_bytes, monkeypatch):
    monkeypatch.setenv("FAKE_TRT_BUILD_SECONDS", "0.25")
    lines: list[str] = []
    build_plan(
        fake_tensorrt.module(), cnn_bytes, PROFILES, BuildSettings(heartbeat_seconds=0.05), emit=lines.append
    )
    assert any("still building" in line for line in lines)


@pytest.mark.slow
def test_fake_tensorrt_two_processes_build_once(cnn_bytes, tmp_path, monkeypatch):
    """Real processes (spawn), one engine dir: exactly one build; the other process loads the result."""
    onnx_path = tmp_path / "cnn.onnx"
    onnx_path.write_bytes(cnn_bytes)
    build_log = tmp_path / "builds.log"
    monkeypatch.setenv("FAKE_TRT_BUILD_LOG", str(build_log))
    monkeypatch.setenv("FAKE_TRT_BUILD_SECONDS", "0.5")  # wide window for the race
    ctx = mp.get_context("spawn")
    results = [tmp_path / f"r{i}.json" for i in range(3)]
    procs = [
        ctx.Process(
            target=fake_tensorrt.build_in_child,
            args=(str(tmp_path / "engines"), str(onnx_path), "cnn", str(r)),
        )
        for r in results
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(build_log.read_text().split()) == 1
    outcomes = [json.loads(r.read_text()) for r in results]
    assert sorted(o["built"] for o in outcomes) == [False, False, True]
    assert all(o["inputs"] == ["image"] for o in outcomes)
    assert {o["reason"] for o in outcomes if not o["built"]} == {"exact key match"}
