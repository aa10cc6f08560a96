"""Optimisation profiles from the manifest or derived from dynamic axes, and buffer sizing plans."""

from __future__ import annotations

import pytest
import tiny_models

from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.trt.buffers import axis_sizes, batch_buckets, bucket_for, plan_buffers, total_bytes
from facestream.engines.trt.profiles import (
    ProfileConfig,
    derive_profiles,
    max_batch_of,
    parse_dim_option,
    profiles_for_key,
)
from facestream.errors import FacestreamError


def test_profiles_derived_from_dynamic_axes():
    cnn = tiny_models.make_cnn()[1]
    (p,) = derive_profiles(cnn, ProfileConfig(batch=(1, 4, 16))).values()
    assert (p.min, p.opt, p.max) == ([1, 1, 16, 16], [4, 1, 16, 16], [16, 1, 16, 16])
    att = tiny_models.make_attention()[1]
    p = derive_profiles(att, ProfileConfig(batch=(1, 2, 8), seq=(2, 10, 50)))["tokens"]
    assert (p.min, p.opt, p.max) == ([1, 2, 8], [2, 10, 8], [8, 50, 8])
    assert max_batch_of(att, {"tokens": p}) == 8


def test_manifest_profiles_win_over_config():
    lstm = tiny_models.make_lstm()[1]
    p = derive_profiles(lstm, ProfileConfig(batch=(1, 1, 2)))["sequence"]
    assert p == lstm.profiles["sequence"]
    assert max_batch_of(lstm, {"sequence": p}) == 32  # batch is axis 1 of a seq-major input


def _manifest(shape, profiles=None):
    return Manifest(
        name="m",
        inputs=[TensorSpec(name="x", shape=shape)],
        outputs=[TensorSpec(name="y", shape=["batch", 2])],
        profiles=profiles or {},
    )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (_manifest(["batch", 3, "height"]), "dynamic axis 'height' with no profile"),
        (
            _manifest(["batch", 3], {"x": ProfileSpec(min=[1, 3], opt=[2, 4], max=[4, 3])}),
            "fixed axis 1 is 3",
        ),
        (
            _manifest(["batch", 3], {"x": ProfileSpec(min=[4, 3], opt=[2, 3], max=[8, 3])}),
            "min <= opt <= max",
        ),
        (_manifest(["batch", 3], {"x": ProfileSpec(min=[1], opt=[2], max=[4])}), "must have rank 2"),
    ],
)
def test_bad_profiles_are_user_errors(manifest, message):
    with pytest.raises(FacestreamError, match=message):
        derive_profiles(manifest)


def test_extra_dims_from_config_and_dim_option():
    name, rng = parse_dim_option("height=64:128:256")
    p = derive_profiles(_manifest(["batch", 3, "height"]), ProfileConfig(dims={name: rng}))["x"]
    assert p.max == [32, 3, 256]
    for bad in ("height", "height=1:2", "height=4:2:8", "h=a:b:c"):
        with pytest.raises(FacestreamError):
            parse_dim_option(bad)


def test_profiles_key_is_sorted_and_plain():
    profiles = {"b": ProfileSpec(min=[1], opt=[2], max=[3]), "a": ProfileSpec(min=[1], opt=[1], max=[1])}
    assert profiles_for_key(profiles) == (("a", (1,), (1,), (1,)), ("b", (1,), (2,), (3,)))


def test_buffer_plan_sizes_every_tensor_at_profile_max():
    lstm = tiny_models.make_lstm()[1]  # max seq 64, batch 32, features 8, hidden 6
    plan = plan_buffers(lstm, derive_profiles(lstm))
    by_name = {b.name: b for b in plan}
    assert by_name["sequence"].is_input and by_name["sequence"].max_shape == (64, 32, 8)
    assert by_name["hidden_seq"].max_shape == (64, 32, 6) and not by_name["hidden_seq"].is_input
    assert by_name["last_hidden"].max_shape == (32, 6)
    assert by_name["sequence"].nbytes == 64 * 32 * 8 * 4
    assert total_bytes(plan) == 4 * (64 * 32 * 8 + 64 * 32 * 6 + 32 * 6)
    assert axis_sizes(lstm, derive_profiles(lstm), "opt") == {"seq": 16, "batch": 8}


def test_buffer_plan_rejects_outputs_with_unknown_axes():
    m = Manifest(
        name="m",
        inputs=[TensorSpec(name="x", shape=["batch", 3])],
        outputs=[TensorSpec(name="y", shape=["boxes", 4])],
    )
    with pytest.raises(FacestreamError, match="axis 'boxes' that no input names"):
        plan_buffers(m, derive_profiles(m))


def test_output_axes_no_input_names_are_asked_of_the_engine():
    fcn = tiny_models.make_fcn()[1]  # heatmap [batch, 4, out_height, out_width]; image max [8, 1, 48, 64]
    asked = []

    def at_max(name):
        asked.append(name)
        return (8, 4, 24, 32)

    plan = plan_buffers(fcn, derive_profiles(fcn), at_max)
    assert asked == ["heatmap"] and plan[1].max_shape == (8, 4, 24, 32)
    with pytest.raises(FacestreamError, match="data-dependent output shapes are not supported"):
        plan_buffers(fcn, derive_profiles(fcn), lambda name: (8, 4, -1, 32))


def test_batch_buckets():
    assert batch_buckets(1) == [1]
    assert batch_buckets(32) == [1, 2, 4, 8, 16, 32]
    assert batch_buckets(24) == [1, 2, 4, 8, 16, 24]
    assert [bucket_for(n, batch_buckets(24)) for n in (1, 3, 8, 9, 17, 24)] == [1, 4, 8, 16, 24, 24]
    with pytest.raises(ValueError):
        bucket_for(25, batch_buckets(24))
