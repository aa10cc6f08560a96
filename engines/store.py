"""The model store: one folder per model holding its ONNX variants and manifest.json.

Default root: ``$FACESTREAM_MODELS`` or ``~/.cache/facestream/models``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_NAME, Manifest, sha256_file
from .paths import cache_dir


class ModelNotFound(LookupError):
    """The store has no model of that name."""


def default_store_root() -> Path:
    return cache_dir("FACESTREAM_MODELS", "models")


@dataclass(frozen=True)
class ModelEntry:
    folder: Path
    manifest: Manifest

    def onnx_path(self, precision: str | None = None) -> Path:
        return self.folder / self.manifest.file_for(precision)


class ModelStore:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root else default_store_root()

    def folder(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' and '.'")
        return self.root / name

    def has(self, name: str) -> bool:
        return (self.folder(name) / MANIFEST_NAME).is_file()

    def get(self, name: str) -> ModelEntry:
        folder = self.folder(name)
        if not (folder / MANIFEST_NAME).is_file():
            known = ", ".join(self.names()) or "none"
            raise ModelNotFound(f"model {name!r} is not in the store {self.root} (models there: {known})")
        return ModelEntry(folder, Manifest.read(folder))

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST_NAME).is_file())

    def list(self) -> list[ModelEntry]:
        return [self.get(n) for n in self.names()]

    def put(self, manifest: Manifest, files: dict[str, Path | bytes]) -> ModelEntry:
        """Write a model: ``files`` maps precision -> ONNX path or bytes; hashes are filled in here.

        The default precision's file becomes ``manifest.onnx_file``; others go to ``variants``.
        Writes go to a temporary folder renamed into place, so a reader never sees half a model.
        """
        folder = self.folder(manifest.name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{manifest.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        m = manifest.model_copy(deep=True)
        m.variants = {}
        m.variant_sha256 = {}
        for precision, src in files.items():
            fname = "model.onnx" if precision == m.precision else f"model.{precision}.onnx"
            dst = tmp / fname
            if isinstance(src, bytes | bytearray):
                dst.write_bytes(src)
            else:
                shutil.copyfile(src, dst)
            digest = sha256_file(dst)
            if precision == m.precision:
                m.onnx_file, m.sha256 = fname, digest
            else:
                m.variants[precision] = fname
                m.variant_sha256[precision] = digest
        if not m.sha256:
            raise ValueError(f"no file given for the default precision {m.precision!r} of {m.name!r}")
        m.write(tmp)
        if folder.exists():
            old = self.root / f".{manifest.name}.old-{os.getpid()}"
            folder.replace(old)
            tmp.replace(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(folder)
        return ModelEntry(folder, m)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.folder(name), ignore_errors=True)
