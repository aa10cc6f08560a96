"""``import_mtcnn_models``: MTCNN's P-Net, R-Net and O-Net from the ``facenet-pytorch`` 2.6.0 wheel, as ONNX.

The wheel comes from PyPI through pip (``pip download --no-deps facenet-pytorch==2.6.0`` into a temporary
folder) or from a path. Its three state dicts are read without torch (``torch_reader``), checked against the
hashes pinned here (the files the equality test was run on), and written to the model store as
``mtcnn-pnet``, ``mtcnn-rnet``, ``mtcnn-onet`` (FP32), each manifest naming the wheel, the file, both
sha256s and carrying the wheel's own licence text.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.store import ModelEntry, ModelStore
from facestream.errors import FacestreamError

from .graphs import BUILDERS, INPUT, MEAN, NETS, SCALE
from .torch_reader import TorchFormatError, read_state_dict

log = logging.getLogger(__name__)

PACKAGE, VERSION = "facenet-pytorch", "2.6.0"
WHEEL_NAME = "facenet_pytorch-2.6.0-py3-none-any.whl"
LICENCE_MEMBER = "facenet_pytorch-2.6.0.dist-info/LICENSE.md"
LICENCE = "MIT (facenet-pytorch 2.6.0, Copyright (c) 2019 Timothy Esler)"
MODEL_NAMES = {net: f"mtcnn-{net}" for net in NETS}
# sha256 of the state dicts inside facenet_pytorch-2.6.0-py3-none-any.whl (wheel sha256 ecb82b27beb2...).
PINNED = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
_PROFILES = {
    "pnet": ProfileSpec(min=[1, 3, 12, 12], opt=[1, 3, 432, 768], max=[1, 3, 1300, 2300]),
    "rnet": ProfileSpec(min=[1, 3, 24, 24], opt=[64, 3, 24, 24], max=[512, 3, 24, 24]),
    "onet": ProfileSpec(min=[1, 3, 48, 48], opt=[16, 3, 48, 48], max=[256, 3, 48, 48]),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(folder: Path) -> Path:
    """The facenet-pytorch 2.6.0 wheel fetched by pip (no dependencies) into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder),
           f"{PACKAGE}=={VERSION}"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
        raise FacestreamError(f"pip could not download {PACKAGE}=={VERSION}: {detail[-1] if detail else exc}") from None
    path = folder / WHEEL_NAME
    if not path.is_file():
        raise FacestreamError(f"pip download left no {WHEEL_NAME} in {folder}")
    return path


def read_wheel(wheel: Path) -> tuple[dict[str, bytes], str, str]:
    """({net: .pt bytes}, licence text, wheel sha256) from the wheel, each .pt checked against ``PINNED``."""
    try:
        raw = Path(wheel).read_bytes()
        with zipfile.ZipFile(wheel) as z:
            files = {net: z.read(f"facenet_pytorch/data/{net}.pt") for net in NETS}
            licence = z.read(LICENCE_MEMBER).decode("utf-8")
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise FacestreamError(f"{wheel}: not the {PACKAGE} {VERSION} wheel ({exc})") from None
    for net, data in files.items():
        if _sha256(data) != PINNED[net]:
            raise FacestreamError(f"{wheel}: facenet_pytorch/data/{net}.pt has sha256 {_sha256(data)[:12]}..., "
                                  f"not the pinned {PINNED[net][:12]}... of {PACKAGE} {VERSION}")
    if "MIT License" not in licence:
        raise FacestreamError(f"{wheel}: {LICENCE_MEMBER} is not the MIT licence text")
    return files, licence, _sha256(raw)


def _manifest(net: str, pt_sha: str, wheel_sha: str, licence_text: str, onnx_outputs: list) -> Manifest:
    side, outputs = NETS[net]
    spatial = [side, side] if side else ["height", "width"]
    return Manifest(
        name=MODEL_NAMES[net],
        task="detector",
        inputs=[TensorSpec(name=INPUT, shape=["batch", 3, *spatial], value_range=(0.0, 255.0))],
        outputs=[TensorSpec(name=o.name, shape=[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
                 for o in onnx_outputs],
        profiles={INPUT: _PROFILES[net]},
        preprocessing={
            "layout": "NCHW", "color": "RGB", "dtype": "float32", "range": [0, 255],
            "normalisation": f"inside the graph: (x - {MEAN}) * {SCALE}, as facenet-pytorch does outside",
            "resize": "area (torch interpolate mode='area'); the cascade is engines/faces/mtcnn.py",
            "outputs": outputs,
        },
        licence=LICENCE,
        source=(f"PyPI {PACKAGE} {VERSION}: {WHEEL_NAME} (sha256 {wheel_sha}), "
                f"facenet_pytorch/data/{net}.pt (sha256 {pt_sha})"),
        extra={
            "wheel": WHEEL_NAME, "wheel_sha256": wheel_sha, "member": f"facenet_pytorch/data/{net}.pt",
            "member_sha256": pt_sha, "licence_file": LICENCE_MEMBER, "licence_text": licence_text,
            "origin": "MTCNN (K. Zhang, Z. Zhang, Z. Li, Y. Qiao, IEEE SPL 2016), weights as shipped by "
                      "facenet-pytorch (ported from davidsandberg/facenet)",
        },
    )


def import_mtcnn_models(store: ModelStore | None = None, wheel: Path | str | None = None) -> list[ModelEntry]:
    """Convert P-Net, R-Net and O-Net to ONNX into ``store``; the wheel from ``wheel`` or from pip."""
    store = store or ModelStore()
    with tempfile.TemporaryDirectory(prefix="facestream-mtcnn-") as tmp:
        path = Path(wheel) if wheel else download_wheel(Path(tmp))
        files, licence_text, wheel_sha = read_wheel(path)
    entries = []
    for net, data in files.items():
        try:
            sd = read_state_dict(data)
        except TorchFormatError as exc:
            raise FacestreamError(f"{net}.pt: {exc}") from None
        model = BUILDERS[net](sd)
        manifest = _manifest(net, _sha256(data), wheel_sha, licence_text, list(model.graph.output))
        entries.append(store.put(manifest, {"fp32": model.SerializeToString()}))
        log.info("imported %s from %s", MODEL_NAMES[net], path)
    return entries


def ensure_mtcnn_models(store: ModelStore | None = None) -> ModelStore:
    """``store`` with the three MTCNN nets, importing them (pip download) when one is missing."""
    store = store or ModelStore()
    if not all(store.has(n) for n in MODEL_NAMES.values()):
        log.info("MTCNN models not in %s yet: converting them from the %s %s wheel (one-off)", store.root,
                 PACKAGE, VERSION)
        import_mtcnn_models(store)
    return store
