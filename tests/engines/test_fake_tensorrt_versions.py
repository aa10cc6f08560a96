"""Version-gated TensorRT calls, through the FAKE tensorrt module (nothing here ran on real TensorRT).

HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY exists only from TensorRT 10.9; the project supports
10.3 (the Jetson image). set_timing_cache returns False when TensorRT rejects a cache.
"""

from __future__ import annotations

import json
import logging

import fake_tensorrt
import pytest
import tiny_models

from facestream.engines.manifest import ProfileSpec
from facestream.engines.trt.build import BuildSettings, build_plan, trt_version
from facestream.errors import FacestreamError

PROFILES = {"image": ProfileSpec(min=[1, 1, 16, 16], opt=[4, 1, 16, 16], max=[8, 1, 16, 16])}


@pytest.fixture(scope="module")
def cnn_bytes() -> bytes:
    return tiny_models.make_cnn()[0].SerializeToString()


def _hardware(plan: bytes) -> int:
    n = int.from_bytes(plan[8:16], "little")
    return json.loads(plan[16 : 16 + n])["hardware"]


def test_trt_version_parses_release_strings():
    class M:
        __version__ = "10.3.0.30"

    assert trt_version(M) == (10, 3, 0, 30)
    assert trt_version(object()) == (0,)


def test_same_compute_capability_on_tensorrt_10_3_is_a_one_line_error(cnn_bytes, monkeypatch):
    fake_tensorrt.set_version(monkeypatch, "10.3.0.fake")
    assert not hasattr(fake_tensorrt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY")
    with pytest.raises(FacestreamError, match=r"'same_compute_capability' needs TensorRT >= 10\.9; this is "
                                              r"TensorRT 10\.3\.0\.fake"):
        build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES,
                   BuildSettings(hardware_compatibility="same_compute_capability"))
    plan = build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, BuildSettings(hardware_compatibility="ampere_plus"))
    assert _hardware(plan) == int(fake_tensorrt.HardwareCompatibilityLevel.AMPERE_PLUS)


def test_same_compute_capability_on_tensorrt_10_9(cnn_bytes, monkeypatch):
    fake_tensorrt.set_version(monkeypatch, "10.9.0.fake")
    plan = build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES,
                      BuildSettings(hardware_compatibility="same_compute_capability"))
    assert _hardware(plan) == int(fake_tensorrt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY)


def test_a_rejected_timing_cache_is_replaced_by_a_fresh_one(cnn_bytes, tmp_path, monkeypatch, caplog):
    calls = []
    original = fake_tensorrt._Config.set_timing_cache

    def refuse_first(self, cache, ignore_mismatch):
        calls.append(cache)
        return False if len(calls) == 1 else original(self, cache, ignore_mismatch)

    monkeypatch.setattr(fake_tensorrt._Config, "set_timing_cache", refuse_first)
    path = tmp_path / "t.cache"
    path.write_bytes(b"FAKETC7")
    with caplog.at_level(logging.WARNING):
        build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, BuildSettings(timing_cache_path=path))
    assert len(calls) == 2 and "rejected the timing cache" in caplog.text


def test_a_timing_cache_that_is_always_rejected_fails_the_build(cnn_bytes, monkeypatch):
    monkeypatch.setattr(fake_tensorrt._Config, "set_timing_cache", lambda self, c, ignore_mismatch: False)
    with pytest.raises(FacestreamError, match="rejected a new, empty timing cache"):
        build_plan(fake_tensorrt.module(), cnn_bytes, PROFILES, BuildSettings())
