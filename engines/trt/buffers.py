"""Buffer sizing for a TensorRT execution context: every tensor at its largest profile shape, and batch buckets.

Output dims named like an input axis (``batch``, ``seq``) take that axis's size from the input profiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facestream.errors import FacestreamError

from ..manifest import Manifest, ProfileSpec, TensorSpec


@dataclass(frozen=True)
class BufferSpec:
    name: str
    is_input: bool
    dtype: str
    max_shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.max_shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def axis_sizes(manifest: Manifest, profiles: dict[str, ProfileSpec], which: str = "max") -> dict[str, int]:
    """Axis name -> size at the profiles' ``min``/``opt``/``max`` (the smallest over inputs naming that axis)."""
    sizes: dict[str, int] = {}
    for spec in manifest.inputs:
        values = getattr(profiles[spec.name], which)
        for dim, size in zip(spec.shape, values, strict=True):
            if isinstance(dim, str):
                sizes[dim] = min(size, sizes.get(dim, size))
    return sizes


def resolve_shape(spec: TensorSpec, sizes: dict[str, int], model: str = "") -> tuple[int, ...]:
    shape = []
    for dim in spec.shape:
        if isinstance(dim, int):
            shape.append(dim)
        elif dim in sizes:
            shape.append(sizes[dim])
        else:
            raise FacestreamError(
                f"output {spec.name!r} of model {model!r} has axis {dim!r} that no input names: cannot size its buffer"
            )
    return tuple(shape)


def plan_buffers(
    manifest: Manifest,
    profiles: dict[str, ProfileSpec],
    output_shape_at_max: Callable[[str], tuple[int, ...]] | None = None,
) -> list[BufferSpec]:
    """Inputs then outputs, each sized for the largest shape the profiles admit.

    An output axis no input names (a detector's ``out_height``) is sized by ``output_shape_at_max(name)``: the
    engine's inferred output shape with every input at its profile max (outputs grow with their inputs).
    """
    sizes = axis_sizes(manifest, profiles, "max")
    plan = [BufferSpec(s.name, True, s.dtype, tuple(profiles[s.name].max)) for s in manifest.inputs]
    for spec in manifest.outputs:
        try:
            shape = resolve_shape(spec, sizes, manifest.name)
        except FacestreamError:
            if output_shape_at_max is None:
                raise
            shape = tuple(int(d) for d in output_shape_at_max(spec.name))
            if len(shape) != len(spec.shape) or min(shape, default=0) < 0:
                raise FacestreamError(
                    f"output {spec.name!r} of model {manifest.name!r}: engine reports shape {list(shape)} at the "
                    "profile max; data-dependent output shapes are not supported"
                ) from None
        plan.append(BufferSpec(spec.name, False, spec.dtype, shape))
    return plan


def total_bytes(plan: list[BufferSpec]) -> int:
    return sum(b.nbytes for b in plan)


def batch_buckets(max_batch: int) -> list[int]:
    """Powers of two up to ``max_batch``, plus ``max_batch`` itself: the batch sizes CUDA graphs are captured for."""
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    out.append(max_batch)
    return out


def bucket_for(batch: int, buckets: list[int]) -> int:
    """Smallest bucket holding ``batch``."""
    for b in buckets:
        if b >= batch:
            return b
    raise ValueError(f"batch {batch} exceeds the largest bucket {buckets[-1]}")
