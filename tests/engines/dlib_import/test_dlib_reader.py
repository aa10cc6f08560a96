"""dlib's serialisation read in pure Python: encodings by hand-made bytes, then the two real model files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facestream.engines.dlib_import import model_file
from facestream.engines.dlib_import.reader import DlibFormatError, _Stream, parse_dlib_net, read_dlib_net
from facestream.errors import FacestreamError


def test_integer_encoding():
    s = _Stream(bytes([0x01, 0x00, 0x02, 0x80, 0x12, 0x81, 0x1C, 0x01, 0x05]))
    assert [s.integer(), s.integer(), s.integer(), s.integer()] == [0, 0x1280, -28, 5]


def test_float_is_mantissa_then_exponent():
    # 0.04 as dlib writes it: mantissa 0xa3d70a (3 bytes), exponent -28
    s = _Stream(bytes([0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C]))
    assert s.real() == pytest.approx(0.04, rel=1e-6)
    inf = _Stream(bytes([0x01, 0x00, 0x02, 0x00, 0x7D]))  # exponent 32000 = +inf
    assert math.isinf(inf.real())


def test_tensor_raw_float32():
    values = np.arange(6, dtype="<f4")
    raw = bytes([0x01, 0x02, 0x01, 0x02, 0x01, 0x03, 0x01, 0x01, 0x01, 0x01]) + values.tobytes()
    t = _Stream(raw).tensor()
    assert t.shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(t.reshape(-1), values)


def test_bad_bytes_raise_format_errors():
    with pytest.raises(DlibFormatError):
        _Stream(bytes([0x0F])).integer()  # 15 value bytes is not an integer
    with pytest.raises(DlibFormatError):
        _Stream(bytes([0x01])).integer()  # ends early
    with pytest.raises(DlibFormatError):
        _Stream(b"x").boolean()


def test_embedder_file_structure():
    net = read_dlib_net(model_file("dlib_face_recognition_resnet_model_v1.dat"))
    kinds = [layer.kind for layer in net.layers]
    assert net.loss == "loss_metric"
    assert net.loss_options["distance_threshold"] == pytest.approx(0.6)
    assert net.input_kind == "rgb_sized" and net.input_options == {"rows": 150, "cols": 150}
    assert net.input_mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (kinds.count("con"), kinds.count("affine"), kinds.count("relu"), kinds.count("add_prev")) == (
        29,
        29,
        29,
        14,
    )
    assert kinds[-2:] == ["avg_pool", "fc"]
    fc = net.layers[-1].fields
    assert fc["weights"].shape == (256, 128) and fc["bias"] is None
    assert net.layers[0].fields["weights"].shape == (32, 3, 7, 7)


def test_detector_file_structure():
    net = read_dlib_net(model_file("mmod_human_face_detector.dat"))
    assert net.loss == "loss_mmod"
    assert net.loss_options["detector_windows"] == [(80, 80)]
    assert net.loss_options["nms_iou_threshold"] == pytest.approx(0.33828, abs=1e-5)
    assert net.input_kind == "rgb_pyramid"
    filters = [layer.fields["num_filters"] for layer in net.layers if layer.kind == "con"]
    assert filters == [16, 32, 32, 45, 45, 45, 1]
    # bn_con folded for inference: every scale finite and non-zero
    for layer in net.layers:
        if layer.kind == "affine":
            assert np.all(np.isfinite(layer.fields["gamma"])) and np.all(layer.fields["gamma"] != 0)


def test_truncated_file_is_an_error():
    data = model_file("mmod_human_face_detector.dat").read_bytes()
    with pytest.raises(DlibFormatError):
        parse_dlib_net(data[: len(data) // 2])


def test_68_point_model_is_refused():
    with pytest.raises(FacestreamError, match="68-point"):
        model_file("shape_predictor_68_face_landmarks.dat")
