"""Read a PyTorch ``state_dict`` file (``torch.save``) into numpy arrays, without torch.

Both of torch's formats: the legacy one (a sequence of pickles, then each storage's raw bytes: what the
``facenet-pytorch`` wheel ships) and the zip one (torch >= 1.6: ``*/data.pkl`` + ``*/data/<key>``). The pickle
is untrusted input: only an ordered dict, torch's tensor-rebuild functions and storage types are allowed, any
other global is refused (no code from the file runs).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class TorchFormatError(ValueError):
    """The file is not a state dict this reader understands."""


@dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchFormatError(f"storage {self.storage.key} has no data")
        if not self.size:
            return data[self.offset: self.offset + 1].reshape(()).copy()
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride))
        return np.array(view)


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(tensor, *_rest):
    return tensor


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict[str, _Storage]):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFormatError(f"refusing pickled global {module}.{name} (not a plain state dict)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchFormatError(f"unexpected persistent id {pid!r}")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(kind, _StorageType):
            raise TorchFormatError(f"unexpected storage type {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, kind.dtype, numel)
        return self.storages[key]


def _arrays(obj, storages: dict[str, _Storage]) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise TorchFormatError(f"expected a state dict, found {type(obj).__name__}")
    out = {}
    for name, value in obj.items():
        if not isinstance(value, _Tensor):
            raise TorchFormatError(f"entry {name!r} is not a tensor")
        out[str(name)] = value.array()
    return out


def _read_legacy(raw: bytes) -> dict[str, np.ndarray]:
    f = io.BytesIO(raw)
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise TorchFormatError("not a torch.save file (bad magic number)")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    keys = pickle.load(f)
    for key in keys:
        st = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * np.dtype(st.dtype).itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise TorchFormatError(f"storage {key}: file ends early")
        st.data = np.frombuffer(buf, st.dtype)
    return _arrays(obj, storages)


def _read_zip(raw: bytes) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise TorchFormatError("zip without data.pkl: not a torch.save file")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
        for key, st in storages.items():
            st.data = np.frombuffer(z.read(f"{prefix}data/{key}"), st.dtype)
    return _arrays(obj, storages)


def read_state_dict(raw: bytes) -> dict[str, np.ndarray]:
    """name -> array of a ``torch.save(state_dict)`` file's bytes; TorchFormatError if it is not one."""
    try:
        return _read_zip(raw) if raw[:2] == b"PK" else _read_legacy(raw)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, zipfile.BadZipFile) as exc:
        raise TorchFormatError(f"unreadable torch file: {exc}") from None
