"""Model manifest: what a model in the store is, and the contract for calling it.

A manifest sits beside each ONNX file as ``manifest.json``. Dynamic axes are written as
strings (``"batch"``, ``"seq"``, ``"height"``); fixed axes as integers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from facestream.fsutil import atomic_write

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class TensorSpec(BaseModel):
    """One input or output tensor of a model."""

    name: str = Field(title="Tensor name in the ONNX graph")
    shape: list[int | str] = Field(title="Shape; strings name dynamic axes")
    dtype: str = Field(default="float32", title="numpy dtype name")
    value_range: tuple[float, float] | None = Field(
        default=None, title="Allowed [min, max] of input values; None = unchecked"
    )


class ProfileSpec(BaseModel):
    """TensorRT optimisation profile for one input: min/opt/max shapes."""

    min: list[int]
    opt: list[int]
    max: list[int]


class Manifest(BaseModel):
    """Everything needed to load, validate, cache and credit a model."""

    schema_version: int = SCHEMA_VERSION
    name: str = Field(title="Model name in the store")
    task: str = Field(default="", title="detector | embedder | classifier | temporal | ...")
    precision: str = Field(default="fp32", title="Precision of the default ONNX file")
    onnx_file: str = Field(default="model.onnx", title="File name of the default (FP32) variant")
    variants: dict[str, str] = Field(
        default_factory=dict, title="precision -> ONNX file name (e.g. fp16 -> model.fp16.onnx)"
    )
    sha256: str = Field(default="", title="sha256 of the default ONNX file")
    variant_sha256: dict[str, str] = Field(default_factory=dict, title="precision -> sha256 of that file")
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    profiles: dict[str, ProfileSpec] = Field(
        default_factory=dict, title="input name -> TensorRT optimisation profile"
    )
    preprocessing: dict[str, Any] = Field(default_factory=dict, title="How callers must prepare inputs")
    labels: list[str] = Field(default_factory=list, title="Class names for classifiers")
    licence: str = Field(default="", title="Licence and credit of the weights")
    source: str = Field(default="", title="Where the weights came from")
    extra: dict[str, Any] = Field(default_factory=dict, title="Model-specific metadata")

    def file_for(self, precision: str | None = None) -> str:
        """ONNX file name for a precision; the default file when precision is None or the default."""
        if precision is None or precision == self.precision:
            return self.onnx_file
        if precision in self.variants:
            return self.variants[precision]
        have = sorted({self.precision, *self.variants})
        raise KeyError(f"model {self.name!r} has no {precision} variant (has: {', '.join(have)})")

    def sha_for(self, precision: str | None = None) -> str:
        if precision is None or precision == self.precision:
            return self.sha256
        return self.variant_sha256[precision]

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        atomic_write(path, json.dumps(self.model_dump(), indent=2, sort_keys=True))
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls.model_validate_json((Path(folder) / MANIFEST_NAME).read_text())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
