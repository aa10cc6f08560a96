"""A fake cuda-python ``runtime`` module for the fake TensorRT (``fake_tensorrt.py``): device memory is host
memory (ctypes), streams and CUDA graphs record and replay the copies and executions queued on them.
"""

from __future__ import annotations

import ctypes
import types
from typing import Any

_CAPTURING: dict[int, list] = {}
REAL_CUDART: Any = None


def use_real_cuda(cudart: Any) -> None:
    """Make fake engines read and write real device memory through ``cudart`` (None: back to fake memory)."""
    global REAL_CUDART
    REAL_CUDART = cudart


def on_stream(stream: int, op) -> None:
    """Run ``op`` now, or record it when ``stream`` is being captured into a graph."""
    if stream in _CAPTURING:
        _CAPTURING[stream].append(op)
    else:
        op()


class FakeCudart:
    """cuda-python's ``runtime`` module, faked: calls return (error, value...) tuples like the real one."""

    cudaStreamNonBlocking = 1
    cudaMemcpyKind = types.SimpleNamespace(
        cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2, cudaMemcpyDeviceToDevice=3
    )
    cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def __init__(
        self, name: bytes = b"Fake GPU 8.7", cc: tuple[int, int] = (8, 7), fail_capture: bool = False
    ):
        self.props = types.SimpleNamespace(name=name, major=cc[0], minor=cc[1])
        self.fail_capture = fail_capture
        self.memory: dict[int, ctypes.Array] = {}
        self.host: set[int] = set()
        self.streams: set[int] = set()
        self.graph_launches = 0
        self._next_stream = 100

    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaSetDevice(self, i):
        return (0,) if i == 0 else (101,)  # cudaErrorInvalidDevice

    def cudaGetDeviceProperties(self, i):
        return 0, self.props

    def cudaStreamCreateWithFlags(self, flags):
        self._next_stream += 1
        self.streams.add(self._next_stream)
        return 0, self._next_stream

    def cudaStreamSynchronize(self, s):
        return (0,) if s in self.streams else (400,)  # cudaErrorInvalidResourceHandle

    def cudaStreamDestroy(self, s):
        self.streams.discard(s)
        return (0,)

    def _alloc(self, n):
        buf = (ctypes.c_uint8 * n)()
        self.memory[ctypes.addressof(buf)] = buf
        return ctypes.addressof(buf)

    def cudaMalloc(self, n):
        return 0, self._alloc(n)

    def cudaMallocHost(self, n):
        ptr = self._alloc(n)
        self.host.add(ptr)
        return 0, ptr

    def cudaFree(self, ptr):
        return (0,) if self.memory.pop(ptr, None) is not None else (1,)

    def cudaFreeHost(self, ptr):
        self.host.discard(ptr)
        return self.cudaFree(ptr)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        if stream not in self.streams:
            return (400,)
        on_stream(stream, lambda: ctypes.memmove(dst, src, n))
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        if self.fail_capture:
            return (900,)  # cudaErrorStreamCaptureUnsupported
        _CAPTURING[stream] = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        return 0, _CAPTURING.pop(stream)

    def cudaGraphInstantiate(self, graph, flags):
        return 0, list(graph)

    def cudaGraphLaunch(self, graph_exec, stream):
        self.graph_launches += 1
        for op in graph_exec:
            op()
        return (0,)

    def cudaGraphExecDestroy(self, g):
        return (0,)

    def cudaGraphDestroy(self, g):
        return (0,)
