"""Inputs that do not fit the manifest fail with one FacestreamError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models

from facestream.engines.manifest import Manifest, TensorSpec
from facestream.engines.validation import batch_axis, batch_size_of, validate_inputs
from facestream.errors import FacestreamError


@pytest.fixture(scope="module")
def cnn() -> Manifest:
    return tiny_models.make_cnn()[1]


@pytest.fixture(scope="module")
def two_inputs() -> Manifest:
    return Manifest(
        name="pair",
        inputs=[TensorSpec(name="a", shape=["batch", "seq", 4]), TensorSpec(name="b", shape=["batch", 2])],
        outputs=[TensorSpec(name="y", shape=["batch", 1])],
    )


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 16, 16), np.float32), "rank 3"),
        (np.zeros((2, 3, 16, 16), np.float32), "axis 1 must be 1"),
        (np.zeros((2, 1, 16, 15), np.float32), "axis 3 must be 16"),
        (np.zeros((0, 1, 16, 16), np.float32), "empty along 'batch'"),
        (np.zeros((2, 1, 16, 16), np.int64), "must be float32, got int64"),
        (np.zeros((2, 1, 16, 16), np.float16), "must be float32, got float16"),
        (np.full((2, 1, 16, 16), 255.0, np.float32), "must lie in [0, 1]; got values in [255, 255]"),
        (np.full((2, 1, 16, 16), np.nan, np.float32), "must lie in [0, 1]"),
    ],
)
def test_bad_single_input(cnn, array, message):
    with pytest.raises(FacestreamError) as err:
        validate_inputs(cnn, array)
    assert message in str(err.value)
    assert "'image'" in str(err.value) and "\n" not in str(err.value)


def test_good_input_passes_and_float64_becomes_float32(cnn):
    x = np.random.default_rng(0).uniform(0, 1, (3, 1, 16, 16))
    feeds = validate_inputs(cnn, x)
    assert feeds["image"].dtype == np.float32
    np.testing.assert_allclose(feeds["image"], x, rtol=1e-6)
    assert batch_size_of(cnn, feeds) == 3


def test_dict_inputs_missing_unknown_and_mismatched_axes(two_inputs):
    a, b = np.zeros((2, 5, 4), np.float32), np.zeros((2, 2), np.float32)
    assert set(validate_inputs(two_inputs, {"a": a, "b": b})) == {"a", "b"}
    with pytest.raises(FacestreamError, match=r"missing \['b'\]"):
        validate_inputs(two_inputs, {"a": a})
    with pytest.raises(FacestreamError, match=r"unknown \['c'\]"):
        validate_inputs(two_inputs, {"a": a, "b": b, "c": b})
    with pytest.raises(FacestreamError, match="pass a dict"):
        validate_inputs(two_inputs, a)
    with pytest.raises(FacestreamError, match="axis 'batch' is 2 in input 'a' but 3 in 'b'"):
        validate_inputs(two_inputs, {"a": a, "b": np.zeros((3, 2), np.float32)})


def test_batch_axis_follows_the_axis_name():
    lstm = tiny_models.make_lstm()[1]
    assert batch_axis(lstm.inputs[0]) == 1  # seq-major: [seq, batch, features]
    assert batch_axis(TensorSpec(name="x", shape=["n", 3])) == 0
    assert batch_axis(TensorSpec(name="x", shape=[1, 3])) is None
    feeds = validate_inputs(lstm, np.zeros((7, 2, 8), np.float32))
    assert batch_size_of(lstm, feeds) == 2
