"""A fake ``tensorrt`` module and a fake cuda-python runtime, for tests whose names say ``fake_tensorrt``.

Not TensorRT: the "plan" is a header plus the ONNX bytes, and execution runs the ONNX with ONNX Runtime.
What it does check is how our code drives the API shared by TensorRT 10.x/11.x: strongly typed network flag,
parser error reporting, profiles (shapes outside [min, max] are refused), workspace, timing cache, tensor
addresses, ``execute_async_v3`` on a stream, and CUDA-graph capture/replay. The fake CUDA memory is real host
memory (ctypes, ``fake_cudart.py``), so copies really move bytes and a missed copy shows up as wrong outputs.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import json
import os
import struct
import sys
import time
import types

import fake_cudart
import numpy as np
from fake_cudart import FakeCudart, use_real_cuda

__all__ = ["FakeCudart", "use_real_cuda"]  # the fake CUDA runtime lives in fake_cudart.py
__version__ = "10.3.0.fake"
MAGIC = b"FAKETRT1"


class Logger:
    WARNING = 2
    INFO = 3

    def __init__(self, severity: int = 2):
        self.severity = severity


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 5


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    VERSION_COMPATIBLE = 13


class HardwareLevels10_3(enum.IntEnum):  # TensorRT 10.3 (the Jetson image): no SAME_COMPUTE_CAPABILITY yet
    NONE = 0
    AMPERE_PLUS = 1


class HardwareLevels10_9(enum.IntEnum):  # from TensorRT 10.9 on
    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


HardwareCompatibilityLevel = HardwareLevels10_3  # matches __version__; set_version() swaps both


def set_version(monkeypatch, version: str) -> None:
    """Pretend to be TensorRT ``version``: its version string and the enum members that version has."""
    monkeypatch.setattr(sys.modules[__name__], "__version__", version)
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    levels = HardwareLevels10_9 if major_minor >= (10, 9) else HardwareLevels10_3
    monkeypatch.setattr(sys.modules[__name__], "HardwareCompatibilityLevel", levels)


class _Tensor:
    def __init__(self, name: str):
        self.name = name


class _Network:
    def __init__(self, flags: int):
        self.flags = flags
        self.inputs: list[_Tensor] = []
        self.onnx: bytes = b""

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network: _Network, logger: Logger):
        self.network, self.errors = network, []

    def parse(self, data: bytes) -> bool:
        import onnx

        try:
            model = onnx.load_from_string(data)
            onnx.checker.check_model(model)
        except Exception as exc:  # what TensorRT reports as a parser error
            self.errors = [f"ModelImporter.cpp:42 In node -1: {type(exc).__name__}: {exc}"]
            return False
        inits = {i.name for i in model.graph.initializer}
        self.network.inputs = [_Tensor(i.name) for i in model.graph.input if i.name not in inits]
        self.network.onnx = data
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]


class _Profile:
    def __init__(self):
        self.shapes: dict[str, list] = {}

    def set_shape(self, name, lo, opt, hi) -> None:
        self.shapes[name] = [list(lo), list(opt), list(hi)]


class _TimingCache:
    def __init__(self, data: bytes):
        self.entries = int(data[6:] or b"0") if data.startswith(b"FAKETC") else 0

    def serialize(self) -> bytes:
        return b"FAKETC%d" % self.entries


class _Config:
    def __init__(self):
        self.pools: dict[int, int] = {}
        self.profiles: list[_Profile] = []
        self.flags: set[int] = set()
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.timing_cache: _TimingCache | None = None

    def set_memory_pool_limit(self, pool, size) -> None:
        self.pools[int(pool)] = int(size)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_flag(self, flag) -> None:
        self.flags.add(int(flag))

    def create_timing_cache(self, data: bytes) -> _TimingCache | None:
        if data and not data.startswith(b"FAKETC"):
            return None
        return _TimingCache(data)

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True


class Builder:
    def __init__(self, logger: Logger):
        self.logger = logger

    def create_network(self, flags: int) -> _Network:
        if flags != 1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED):
            raise TypeError(f"fake tensorrt: only strongly typed networks are supported (flags={flags})")
        return _Network(flags)

    def create_builder_config(self) -> _Config:
        return _Config()

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
        if len(config.profiles) != 1 or MemoryPoolType.WORKSPACE not in config.pools:
            return None
        delay = float(os.environ.get("FAKE_TRT_BUILD_SECONDS", "0"))
        if delay:
            time.sleep(delay)
        log_path = os.environ.get("FAKE_TRT_BUILD_LOG")
        if log_path:
            with open(log_path, "a") as f:
                f.write(f"{os.getpid()}\n")
        if config.timing_cache is not None:
            config.timing_cache.entries += 1
        header = {
            "profiles": config.profiles[0].shapes,
            "workspace": config.pools[int(MemoryPoolType.WORKSPACE)],
            "flags": sorted(config.flags),
            "hardware": int(config.hardware_compatibility_level),
            "onnx_sha256": hashlib.sha256(network.onnx).hexdigest(),
        }
        head = json.dumps(header).encode()
        return MAGIC + struct.pack("<Q", len(head)) + head + network.onnx


# --- runtime -------------------------------------------------------------------------------------------------


class Runtime:
    def __init__(self, logger: Logger):
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, plan: bytes) -> _Engine | None:
        plan = bytes(plan)
        if not plan.startswith(MAGIC) or len(plan) < 16:
            return None
        (n,) = struct.unpack("<Q", plan[8:16])
        try:
            header = json.loads(plan[16 : 16 + n])
        except ValueError:
            return None
        onnx_bytes = plan[16 + n :]
        if hashlib.sha256(onnx_bytes).hexdigest() != header.get("onnx_sha256"):
            return None
        if int(BuilderFlag.VERSION_COMPATIBLE) in header["flags"] and not self.engine_host_code_allowed:
            return None
        return _Engine(header, onnx_bytes)


class _Engine:
    def __init__(self, header: dict, onnx_bytes: bytes):
        import onnxruntime as ort

        self.header = header
        self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.contexts_made = 0

    def create_execution_context(self) -> _Context:
        self.contexts_made += 1
        return _Context(self)


_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


class _Context:
    def __init__(self, engine: _Engine):
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.out_shapes: dict[tuple, dict[str, tuple]] = {}
        self.executions = 0

    def set_input_shape(self, name: str, shape) -> bool:
        lo, _, hi = self.engine.header["profiles"][name]
        if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi, strict=True)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if name in self.shapes:
            return self.shapes[name]
        key = tuple(sorted(self.shapes.items()))
        if key not in self.out_shapes:  # shape inference: what TensorRT knows once input shapes are set
            zeros = {n: np.zeros(self.shapes[n], _NP[spec.type]) for n, spec in self.engine.inputs.items()}
            self._run(zeros)
            self.executions -= 1
        return self.out_shapes[key][name]

    def _execute(self) -> None:
        feeds = {}
        for name, spec in self.engine.inputs.items():
            shape = self.shapes[name]
            dtype = np.dtype(_NP[spec.type])
            n = int(np.prod(shape)) * dtype.itemsize
            raw = (ctypes.c_uint8 * n).from_address(self.addresses[name])
            feeds[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        for name, arr in self._run(feeds).items():
            ctypes.memmove(self.addresses[name], arr.ctypes.data, arr.nbytes)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.engine.session.run(self.engine.outputs, feeds)
        key = tuple(sorted(self.shapes.items()))
        self.out_shapes[key] = {n: a.shape for n, a in zip(self.engine.outputs, outs, strict=True)}
        self.executions += 1
        return {n: np.ascontiguousarray(a) for n, a in zip(self.engine.outputs, outs, strict=True)}

    def _execute_on_real_cuda(self, stream) -> bool:
        """Fake engine, real GPU memory: sync, copy inputs down, run ONNX Runtime, copy outputs up."""
        rt = fake_cudart.REAL_CUDART
        d2h, h2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        if int(rt.cudaStreamSynchronize(stream)[0]) != 0:  # fails while the stream is being captured
            return False
        feeds = {}
        for name, spec in self.engine.inputs.items():
            arr = np.empty(self.shapes[name], dtype=_NP[spec.type])
            if int(rt.cudaMemcpy(arr.ctypes.data, self.addresses[name], arr.nbytes, d2h)[0]) != 0:
                return False
            feeds[name] = arr
        for name, arr in self._run(feeds).items():
            if int(rt.cudaMemcpy(self.addresses[name], arr.ctypes.data, arr.nbytes, h2d)[0]) != 0:
                return False
        return True

    def execute_async_v3(self, stream) -> bool:
        if any(n not in self.shapes for n in self.engine.inputs):
            return False
        if fake_cudart.REAL_CUDART is not None:
            return self._execute_on_real_cuda(stream)
        fake_cudart.on_stream(stream, self._execute)
        return True


def module() -> types.ModuleType:
    """This module, for code that takes a ``trt_module``."""
    import sys

    return sys.modules[__name__]


def build_in_child(engine_dir: str, onnx_path: str, model: str, result_path: str) -> None:
    """Run in a spawned process: get-or-build one engine through the real cache with the fake builder."""
    from pathlib import Path

    from facestream.engines.manifest import ProfileSpec
    from facestream.engines.trt.build import BuildSettings, build_plan
    from facestream.engines.trt.cache import EngineCache, EngineKey, sha256_bytes
    from facestream.engines.trt.profiles import profiles_for_key

    onnx_bytes = Path(onnx_path).read_bytes()
    profiles = {"image": ProfileSpec(min=[1, 1, 16, 16], opt=[4, 1, 16, 16], max=[8, 1, 16, 16])}
    key = EngineKey(
        model=model,
        onnx_sha256=sha256_bytes(onnx_bytes),
        trt_version=__version__,
        gpu_name="Fake GPU 8.7",
        compute_capability="8.7",
        precision="fp32",
        profiles=profiles_for_key(profiles),
    )
    trt = module()
    runtime = Runtime(Logger())
    engine, outcome = EngineCache(engine_dir).get_or_build(
        key, lambda: build_plan(trt, onnx_bytes, profiles, BuildSettings()), runtime.deserialize_cuda_engine
    )
    Path(result_path).write_text(
        json.dumps({"built": outcome.built, "reason": outcome.reason, "inputs": list(engine.inputs)})
    )
