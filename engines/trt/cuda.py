"""Thin, checked wrappers over cuda-python's runtime API: streams, pinned host and device buffers, copies,
CUDA graphs and device facts. Every call's error code is checked; a failure raises CudaError naming the call.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ..backends import select


class CudaError(RuntimeError):
    """A CUDA runtime call returned an error code."""


def check(result: Any, call: str) -> Any:
    """cuda-python returns (err, *values): raise on err != 0, return the value(s)."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        name = getattr(err, "name", str(int(err)))
        raise CudaError(f"{call} failed: {name} ({int(err)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class Cuda:
    """The runtime API, bound once. Tests pass a fake module with the same call signatures."""

    def __init__(self, cudart: Any = None):
        self.rt = cudart or select.import_cudart()

    def call(self, name: str, *args: Any) -> Any:
        return check(getattr(self.rt, name)(*args), name)

    def device_count(self) -> int:
        return int(self.call("cudaGetDeviceCount"))

    def set_device(self, index: int) -> None:
        self.call("cudaSetDevice", index)

    def device_facts(self, index: int = 0) -> tuple[str, str]:
        """(GPU name, compute capability "major.minor") of device ``index``."""
        props = self.call("cudaGetDeviceProperties", index)
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"

    def stream(self) -> Any:
        """A non-blocking stream: never the default stream, which adds a device-wide sync."""
        return self.call("cudaStreamCreateWithFlags", self.rt.cudaStreamNonBlocking)

    def sync(self, stream: Any) -> None:
        self.call("cudaStreamSynchronize", stream)

    def destroy_stream(self, stream: Any) -> None:
        self.call("cudaStreamDestroy", stream)

    def malloc(self, nbytes: int) -> int:
        return int(self.call("cudaMalloc", max(1, nbytes)))

    def free(self, ptr: int) -> None:
        self.call("cudaFree", ptr)

    def malloc_host(self, nbytes: int) -> int:
        return int(self.call("cudaMallocHost", max(1, nbytes)))

    def free_host(self, ptr: int) -> None:
        self.call("cudaFreeHost", ptr)

    def htod(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call("cudaMemcpyAsync", dst, src, nbytes, kind, stream)

    def dtoh(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.call("cudaMemcpyAsync", dst, src, nbytes, kind, stream)

    def dtod(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self.call("cudaMemcpyAsync", dst, src, nbytes, kind, stream)

    def begin_capture(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self.call("cudaStreamBeginCapture", stream, mode)

    def end_capture(self, stream: Any) -> Any:
        return self.call("cudaStreamEndCapture", stream)

    def instantiate(self, graph: Any) -> Any:
        return self.call("cudaGraphInstantiate", graph, 0)

    def launch(self, graph_exec: Any, stream: Any) -> None:
        self.call("cudaGraphLaunch", graph_exec, stream)

    def destroy_graph(self, graph: Any, graph_exec: Any) -> None:
        self.call("cudaGraphExecDestroy", graph_exec)
        self.call("cudaGraphDestroy", graph)


def host_view(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of host memory at ``ptr`` (pinned memory from cudaMallocHost)."""
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


class PinnedBuffer:
    """Page-locked host memory plus a device buffer of the same size, for one tensor."""

    def __init__(self, cuda: Cuda, nbytes: int):
        self.cuda, self.nbytes = cuda, nbytes
        self.host = cuda.malloc_host(nbytes)
        try:
            self.device = cuda.malloc(nbytes)
        except CudaError:
            cuda.free_host(self.host)
            raise
        self.view = host_view(self.host, max(1, nbytes))

    def array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The first bytes of the host buffer as an array of ``shape``."""
        n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if n > self.nbytes:
            raise ValueError(f"{shape} {np.dtype(dtype).name} needs {n} bytes, buffer holds {self.nbytes}")
        return self.view[:n].view(dtype).reshape(shape)

    def free(self) -> None:
        self.cuda.free(self.device)
        self.cuda.free_host(self.host)
