"""Splitting a large batch into chunks a backend accepts, and joining the outputs back."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..manifest import Manifest
from ..validation import batch_axis


def batch_axes(manifest: Manifest) -> tuple[dict[str, int], dict[str, int]]:
    """Batch axis per input and per output (tensors without one are left out)."""
    ins = {s.name: a for s in manifest.inputs if (a := batch_axis(s)) is not None}
    outs = {s.name: a for s in manifest.outputs if (a := batch_axis(s)) is not None}
    return ins, outs


def chunks(feeds: dict[str, np.ndarray], axes: dict[str, int], size: int) -> Iterator[dict[str, np.ndarray]]:
    """Yield feeds cut into pieces of at most ``size`` along each input's batch axis."""
    if not axes:
        yield feeds
        return
    first = next(iter(axes))
    total = feeds[first].shape[axes[first]]
    for start in range(0, total, size):
        part = {}
        for name, arr in feeds.items():
            if name in axes:
                index = [slice(None)] * arr.ndim
                index[axes[name]] = slice(start, start + size)
                part[name] = np.ascontiguousarray(arr[tuple(index)])
            else:
                part[name] = arr
        yield part


def run_in_chunks(
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    feeds: dict[str, np.ndarray],
    in_axes: dict[str, int],
    out_axes: dict[str, int],
    max_batch: int | None,
) -> dict[str, np.ndarray]:
    """Call ``run`` on chunks of at most ``max_batch`` items and concatenate outputs along their batch axes."""
    if not max_batch or not in_axes:
        return run(feeds)
    first = next(iter(in_axes))
    if feeds[first].shape[in_axes[first]] <= max_batch:
        return run(feeds)
    parts = [run(part) for part in chunks(feeds, in_axes, max_batch)]
    return {
        name: np.concatenate([p[name] for p in parts], axis=out_axes[name])
        if name in out_axes
        else parts[0][name]
        for name in parts[0]
    }
