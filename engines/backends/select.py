"""Which backend runs a model: ``auto`` picks TensorRT when it imports and CUDA sees a GPU, else ONNX Runtime.

A forced backend that cannot run is an error, never a silent fallback.
"""

from __future__ import annotations

import importlib

from facestream.errors import FacestreamError

BACKENDS = ("onnxruntime", "tensorrt")
CUDA_SUCCESS = 0


def import_cudart():
    """cuda-python's runtime module (``cuda.bindings.runtime``; ``cuda.cudart`` on cuda-python < 12.6)."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return importlib.import_module("cuda.cudart")


def gpu_status() -> tuple[int, str]:
    """(number of CUDA devices, reason text). 0 devices when cuda-python is missing or sees no GPU."""
    try:
        cudart = import_cudart()
    except ImportError as exc:
        return 0, f"cuda-python does not import ({exc})"
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != CUDA_SUCCESS:
        return 0, f"cuda-python sees no GPU ({getattr(err, 'name', err)})"
    if count == 0:
        return 0, "cuda-python sees no GPU (0 devices)"
    return int(count), f"{count} CUDA device(s)"


def tensorrt_status() -> tuple[bool, str]:
    """(available, reason): TensorRT needs the ``tensorrt`` module and a GPU seen through cuda-python."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        return False, f"tensorrt does not import ({exc})"
    count, why = gpu_status()
    if count == 0:
        return False, why
    return True, f"tensorrt {getattr(trt, '__version__', '?')} with {why}"


def select_backend(requested: str = "auto") -> tuple[str, str]:
    """Return (backend name, reason). Raises FacestreamError for an unknown or unavailable forced backend."""
    if requested not in ("auto", *BACKENDS):
        raise FacestreamError(f"unknown backend {requested!r}: use auto, {', '.join(BACKENDS)}")
    if requested == "onnxruntime":
        return "onnxruntime", "forced"
    ok, why = tensorrt_status()
    if requested == "tensorrt":
        if not ok:
            raise FacestreamError(f"backend 'tensorrt' was requested but is not available: {why}")
        return "tensorrt", f"forced; {why}"
    if ok:
        return "tensorrt", f"auto; {why}"
    return "onnxruntime", f"auto; {why}"
