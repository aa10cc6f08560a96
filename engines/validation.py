"""Checking caller inputs against a model's manifest before they reach a backend.

Only float64 -> float32 is cast silently (numpy's default float); any other dtype mismatch is the caller's bug.
"""

from __future__ import annotations

import numpy as np

from facestream.errors import FacestreamError

from .manifest import Manifest, TensorSpec

BATCH_AXIS_NAME = "batch"


def batch_axis(spec: TensorSpec) -> int | None:
    """Index of the batch axis: the axis named 'batch', else axis 0 when it is dynamic, else None."""
    if BATCH_AXIS_NAME in spec.shape:
        return spec.shape.index(BATCH_AXIS_NAME)
    if spec.shape and isinstance(spec.shape[0], str):
        return 0
    return None


def _shape_text(spec: TensorSpec) -> str:
    return "[" + ", ".join(str(d) for d in spec.shape) + "]"


def _as_dict(manifest: Manifest, inputs: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [s.name for s in manifest.inputs]
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        unknown = sorted(set(inputs) - set(names))
        if missing or unknown:
            raise FacestreamError(
                f"model {manifest.name!r} takes inputs {names}; missing {missing}, unknown {unknown}"
            )
        return dict(inputs)
    if len(names) != 1:
        raise FacestreamError(
            f"model {manifest.name!r} has {len(names)} inputs {names}: pass a dict, not an array"
        )
    return {names[0]: inputs}


def _check_dtype(model: str, spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
    want = np.dtype(spec.dtype)
    if arr.dtype == want:
        return arr
    if arr.dtype == np.float64 and want == np.float32:
        return arr.astype(np.float32)
    raise FacestreamError(f"input {spec.name!r} of model {model!r} must be {want.name}, got {arr.dtype.name}")


def _check_range(model: str, spec: TensorSpec, arr: np.ndarray) -> None:
    if spec.value_range is None or arr.size == 0:
        return
    lo, hi = spec.value_range
    amin, amax = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(amin) and np.isfinite(amax)) or amin < lo or amax > hi:
        raise FacestreamError(
            f"input {spec.name!r} of model {model!r} must lie in [{lo:g}, {hi:g}]; got values in [{amin:g}, {amax:g}]"
        )


def validate_inputs(manifest: Manifest, inputs: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return contiguous arrays keyed by input name, or raise FacestreamError naming what is wrong.

    Checks rank, fixed dims, that a dynamic axis name (``batch``, ``seq``) has one size across inputs, a
    non-empty batch, dtype and ``value_range``.
    """
    feeds = _as_dict(manifest, inputs)
    sizes: dict[str, tuple[int, str]] = {}
    out: dict[str, np.ndarray] = {}
    for spec in manifest.inputs:
        arr = feeds[spec.name]
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        if arr.ndim != len(spec.shape):
            raise FacestreamError(
                f"input {spec.name!r} of model {manifest.name!r} must have shape {_shape_text(spec)}, "
                f"got {list(arr.shape)} (rank {arr.ndim})"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
            if isinstance(want, int):
                if want != got:
                    raise FacestreamError(
                        f"input {spec.name!r} of model {manifest.name!r} must have shape {_shape_text(spec)}, "
                        f"got {list(arr.shape)} (axis {axis} must be {want})"
                    )
                continue
            if got == 0:
                raise FacestreamError(
                    f"input {spec.name!r} of model {manifest.name!r} is empty along {want!r}"
                )
            seen = sizes.setdefault(want, (got, spec.name))
            if seen[0] != got:
                raise FacestreamError(
                    f"axis {want!r} is {seen[0]} in input {seen[1]!r} but {got} in {spec.name!r} "
                    f"(model {manifest.name!r})"
                )
        arr = _check_dtype(manifest.name, spec, arr)
        _check_range(manifest.name, spec, arr)
        out[spec.name] = np.ascontiguousarray(arr)
    return out


def batch_size_of(manifest: Manifest, feeds: dict[str, np.ndarray]) -> int:
    """Batch size of validated feeds (1 for models without a batch axis)."""
    for spec in manifest.inputs:
        axis = batch_axis(spec)
        if axis is not None:
            return int(feeds[spec.name].shape[axis])
    return 1
