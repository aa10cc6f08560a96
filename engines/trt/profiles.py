"""TensorRT optimisation profiles (min/opt/max per input) from the manifest, or derived from its dynamic axes.

Kernels are tuned for ``opt``; shapes outside [min, max] fail at run time, so ``max`` also bounds batching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facestream.errors import FacestreamError

from ..manifest import Manifest, ProfileSpec, TensorSpec


@dataclass(frozen=True)
class ProfileConfig:
    """Sizes for dynamic axes the manifest gives no profile for. ``dims`` adds other axis names."""

    batch: tuple[int, int, int] = (1, 8, 32)
    seq: tuple[int, int, int] = (1, 16, 64)
    dims: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def range_for(self, axis: str) -> tuple[int, int, int] | None:
        if axis in self.dims:
            return self.dims[axis]
        return {"batch": self.batch, "seq": self.seq}.get(axis)


def _check(model: str, spec: TensorSpec, prof: ProfileSpec) -> None:
    rank = len(spec.shape)
    if not (len(prof.min) == len(prof.opt) == len(prof.max) == rank):
        raise FacestreamError(f"profile of input {spec.name!r} of model {model!r} must have rank {rank}")
    for axis, dim in enumerate(spec.shape):
        lo, opt, hi = prof.min[axis], prof.opt[axis], prof.max[axis]
        if isinstance(dim, int) and not lo == opt == hi == dim:
            raise FacestreamError(
                f"profile of input {spec.name!r} of model {model!r}: fixed axis {axis} is {dim}, profile says "
                f"{lo}/{opt}/{hi}"
            )
        if not 1 <= lo <= opt <= hi:
            raise FacestreamError(
                f"profile of input {spec.name!r} of model {model!r}: axis {axis} needs 1 <= min <= opt <= max, "
                f"got {lo}/{opt}/{hi}"
            )


def derive_profiles(manifest: Manifest, config: ProfileConfig | None = None) -> dict[str, ProfileSpec]:
    """One profile per input: the manifest's own when given, else fixed dims plus ``config`` ranges."""
    config = config or ProfileConfig()
    out: dict[str, ProfileSpec] = {}
    for spec in manifest.inputs:
        if spec.name in manifest.profiles:
            prof = manifest.profiles[spec.name]
        else:
            lo, opt, hi = [], [], []
            for dim in spec.shape:
                if isinstance(dim, int):
                    triple = (dim, dim, dim)
                else:
                    found = config.range_for(dim)
                    if found is None:
                        raise FacestreamError(
                            f"input {spec.name!r} of model {manifest.name!r} has dynamic axis {dim!r} with no "
                            f"profile: add 'profiles' to the manifest or give {dim}=MIN:OPT:MAX"
                        )
                    triple = found
                lo.append(triple[0])
                opt.append(triple[1])
                hi.append(triple[2])
            prof = ProfileSpec(min=lo, opt=opt, max=hi)
        _check(manifest.name, spec, prof)
        out[spec.name] = prof
    return out


def profiles_for_key(profiles: dict[str, ProfileSpec]) -> tuple:
    """Canonical, hashable form of profiles for the engine cache key: (name, min, opt, max) sorted by name."""
    return tuple((name, tuple(p.min), tuple(p.opt), tuple(p.max)) for name, p in sorted(profiles.items()))


def parse_dim_option(text: str) -> tuple[str, tuple[int, int, int]]:
    """``seq=1:16:64`` -> ("seq", (1, 16, 64)); a user mistake is a FacestreamError."""
    try:
        name, rng = text.split("=", 1)
        lo, opt, hi = (int(v) for v in rng.split(":"))
    except ValueError as exc:
        raise FacestreamError(
            f"dimension option {text!r} must look like NAME=MIN:OPT:MAX, e.g. seq=1:16:64"
        ) from exc
    if not 1 <= lo <= opt <= hi:
        raise FacestreamError(f"dimension option {text!r} needs 1 <= MIN <= OPT <= MAX")
    return name, (lo, opt, hi)


def max_batch_of(manifest: Manifest, profiles: dict[str, ProfileSpec]) -> int | None:
    """Largest batch the profiles allow (None when no input has a batch axis)."""
    from ..validation import batch_axis

    sizes = [profiles[s.name].max[a] for s in manifest.inputs if (a := batch_axis(s)) is not None]
    return min(sizes) if sizes else None
