"""A pure-Python reader of dlib's DNN serialisation (``dlib/serialize.h``, ``dlib/dnn/core.h``, ``layers.h``).

It turns ``dlib_face_recognition_resnet_model_v1.dat`` or ``mmod_human_face_detector.dat`` into a
:class:`DlibNet`: the loss layer's options, the input layer's mean colour, and the computational layers in
order from the input outward. Tag and skip layers carry no bytes of their own apart from a version, so the
residual wiring is not in the file; the graph builders know each architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facestream.errors import FacestreamError


class DlibFormatError(FacestreamError):
    """The file is not a dlib DNN of a kind this reader understands."""


@dataclass
class Layer:
    """One computational layer: ``kind`` is dlib's serialisation name without the version suffix."""

    kind: str  # con | affine | bn_con | relu | max_pool | avg_pool | add_prev | fc
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DlibNet:
    loss: str
    loss_options: dict[str, Any]
    input_kind: str
    input_mean_rgb: tuple[float, float, float]
    input_options: dict[str, Any]
    layers: list[Layer]


class _Stream:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"dlib file ends early at byte {self.pos} (needs {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        if exponent >= 32000:
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(mantissa) * 2.0**exponent

    def boolean(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool byte {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        n = self.integer()
        return self._take(n).decode("latin-1")

    def peek_string(self) -> str | None:
        save = self.pos
        try:
            return self.string()
        except (DlibFormatError, UnicodeDecodeError):
            return None
        finally:
            self.pos = save

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise DlibFormatError(f"unknown resizable_tensor version {version} at byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise DlibFormatError(f"unknown alias_tensor version {version} at byte {self.pos}")
        return tuple(self.integer() for _ in range(4))


def _read_loss(s: _Stream) -> tuple[str, dict[str, Any]]:
    name = s.string()
    if name == "loss_metric_2":
        return "loss_metric", {"margin": s.real(), "distance_threshold": s.real()}
    if name == "loss_metric_":
        return "loss_metric", {"margin": 0.04, "distance_threshold": 0.6}
    if name == "loss_mmod_":
        version = s.integer()
        if version != 1:
            raise DlibFormatError(f"loss_mmod_ options version {version} is not supported (only 1)")
        # Version 1 holds a single detector window (width, height), not a vector of them.
        opts: dict[str, Any] = {"detector_windows": [(s.integer(), s.integer())]}
        opts["loss_per_false_alarm"] = s.real()
        opts["loss_per_missed_target"] = s.real()
        opts["truth_match_iou_threshold"] = s.real()
        opts["nms_iou_threshold"] = s.real()
        opts["nms_percent_covered_threshold"] = s.real()
        opts["ignore_iou_threshold"] = s.real()
        opts["ignore_percent_covered_threshold"] = s.real()
        return "loss_mmod", opts
    raise DlibFormatError(f"unsupported dlib loss layer {name!r}")


def _read_input(s: _Stream) -> tuple[str, tuple[float, float, float], dict[str, Any]]:
    name = s.string()
    mean = (s.real(), s.real(), s.real())
    if name == "input_rgb_image_sized":
        return "rgb_sized", mean, {"rows": s.integer(), "cols": s.integer()}
    if name == "input_rgb_image_pyramid":
        return "rgb_pyramid", mean, {"pyramid_padding": 10, "pyramid_outer_padding": 11}
    if name == "input_rgb_image_pyramid2":
        return "rgb_pyramid", mean, {"pyramid_padding": s.integer(), "pyramid_outer_padding": s.integer()}
    raise DlibFormatError(f"unsupported dlib input layer {name!r}")


def _multipliers(s: _Stream, n: int = 4) -> None:
    for _ in range(n):
        s.real()


def _read_layer(s: _Stream) -> Layer:
    name = s.string()
    f: dict[str, Any] = {}
    if name in ("con_4", "con_5", "con_6"):
        params = s.tensor().reshape(-1)
        f["num_filters"] = s.integer()
        f["nr"], f["nc"] = s.integer(), s.integer()
        f["stride_y"], f["stride_x"] = s.integer(), s.integer()
        f["padding_y"], f["padding_x"] = s.integer(), s.integer()
        wshape = s.alias()
        bshape = s.alias()
        _multipliers(s)
        f["use_bias"] = s.boolean() if name in ("con_5", "con_6") else True
        if name == "con_6":
            s.boolean()  # use_relu: a fused relu only used on cuDNN; these models have explicit relu layers
        nw = int(np.prod(wshape))
        f["weights"] = params[:nw].reshape(wshape)
        f["bias"] = params[nw : nw + int(np.prod(bshape))].copy() if f["use_bias"] else None
        return Layer("con", f)
    if name in ("affine_", "affine_2"):
        params = s.tensor().reshape(-1)
        gshape = s.alias()
        s.alias()
        mode = s.integer()
        if name == "affine_2":
            f["disabled"] = s.boolean()
        n = int(np.prod(gshape))
        f["mode"] = mode
        f["gamma"], f["beta"] = params[:n].copy(), params[n : 2 * n].copy()
        return Layer("affine", f)
    if name == "bn_con2":
        params = s.tensor().reshape(-1)
        gshape = s.alias()
        s.alias()
        s.tensor()  # batch means (training state)
        s.tensor()  # batch inverse stds (training state)
        running_means = s.tensor().reshape(-1)
        running_vars = s.tensor().reshape(-1)
        s.integer()  # num_updates
        s.integer()  # running_stats_window_size
        _multipliers(s)
        eps = s.real()
        n = int(np.prod(gshape))
        gamma, beta = params[:n], params[n : 2 * n]
        scale = gamma / np.sqrt(running_vars + eps)
        f["gamma"] = scale.astype(np.float32)
        f["beta"] = (beta - scale * running_means).astype(np.float32)
        f["eps"] = eps
        return Layer("affine", f)
    if name in ("relu_", "relu_2"):
        if name == "relu_2":
            s.boolean()
        return Layer("relu", f)
    if name in ("max_pool_2", "avg_pool_2"):
        f["nr"], f["nc"] = s.integer(), s.integer()
        f["stride_y"], f["stride_x"] = s.integer(), s.integer()
        f["padding_y"], f["padding_x"] = s.integer(), s.integer()
        return Layer(name[:-2], f)
    if name == "add_prev_":
        return Layer("add_prev", f)
    if name == "fc_2":
        f["num_outputs"], f["num_inputs"] = s.integer(), s.integer()
        params = s.tensor().reshape(-1)
        wshape = s.alias()
        bshape = s.alias()
        f["bias_mode"] = s.integer()
        _multipliers(s)
        nw = int(np.prod(wshape))
        f["weights"] = params[:nw].reshape(f["num_inputs"], f["num_outputs"])
        f["bias"] = None if f["bias_mode"] == 1 else params[nw : nw + int(np.prod(bshape))].copy()
        return Layer("fc", f)
    raise DlibFormatError(f"unsupported dlib layer {name!r} at byte {s.pos}")


def _layer_trailer(s: _Stream) -> None:
    """add_layer's bookkeeping after the layer: 3 bools and 3 tensors (empty in saved models)."""
    for _ in range(3):
        s.boolean()
    for _ in range(3):
        s.tensor()


def parse_dlib_net(data: bytes) -> DlibNet:
    """Parse a whole dlib DNN file (bytes) into a :class:`DlibNet`."""
    s = _Stream(data)
    if s.integer() != 1:
        raise DlibFormatError("not a dlib DNN file: add_loss_layer version is not 1")
    loss, loss_options = _read_loss(s)
    # Nested add_layer (2), tag/skip (1) versions from the outside in, until the input layer (3).
    depth = 0
    while True:
        version = s.integer()
        if version == 3 and (s.peek_string() or "").startswith("input_"):
            break
        if version not in (1, 2):
            raise DlibFormatError(f"unexpected layer version {version} at byte {s.pos}")
        depth += version == 2
    input_kind, mean, input_options = _read_input(s)
    layers = [_read_layer(s)]
    _layer_trailer(s)
    s.integer()  # sample_expansion_factor
    while s.pos < len(data):
        layers.append(_read_layer(s))
        _layer_trailer(s)
    if len(layers) != depth + 1:
        raise DlibFormatError(f"found {len(layers)} layers but {depth + 1} add_layer wrappers")
    return DlibNet(loss, loss_options, input_kind, mean, input_options, layers)


def read_dlib_net(path: str | Path) -> DlibNet:
    """Read and parse a dlib DNN ``.dat`` file."""
    path = Path(path)
    if not path.is_file():
        raise FacestreamError(f"dlib model file {path} does not exist")
    return parse_dlib_net(path.read_bytes())
