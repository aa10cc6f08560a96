"""facenet-pytorch's own MTCNN (torch) as the reference for the ONNX conversion; None when it cannot load.

facenet-pytorch 2.6.0 imports torchvision for two things: ``batched_nms`` (used by its cascade) and
``transforms.functional`` (used only by ``extract_face``, not here). Where torchvision is missing or cannot load
beside the installed torch (PyPI's torchvision build for torch 2.13+cpu fails with 'operator torchvision::nms
does not exist'), ``batched_nms`` is supplied as torchvision defines it: greedy NMS per index, IoU > threshold
suppresses, areas without +1, kept indices by decreasing score.
"""

from __future__ import annotations

import importlib
import sys
import types


def _nms_shim():
    import torch

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64, device=boxes.device)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        b = boxes + offsets[:, None]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        order = torch.argsort(scores, descending=True, stable=True)
        keep = []
        while order.numel():
            i, rest = order[0], order[1:]
            keep.append(int(i))
            w = (torch.minimum(b[i, 2], b[rest, 2]) - torch.maximum(b[i, 0], b[rest, 0])).clamp(min=0)
            h = (torch.minimum(b[i, 3], b[rest, 3]) - torch.maximum(b[i, 1], b[rest, 1])).clamp(min=0)
            inter = w * h
            order = rest[inter / (area[i] + area[rest] - inter) <= iou_threshold]
        return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)

    tv = types.ModuleType("torchvision")
    ops, boxes_mod = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    tr, fn = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.transforms.functional")
    boxes_mod.batched_nms = batched_nms
    ops.boxes, tv.ops, tr.functional, tv.transforms = boxes_mod, ops, fn, tr
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
                        "torchvision.transforms": tr, "torchvision.transforms.functional": fn})


def load_facenet() -> tuple[object | None, str]:
    """(the facenet_pytorch module, '') or (None, why it is missing)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "torch is not installed (the train extra)"
    if importlib.util.find_spec("facenet_pytorch") is None:
        return None, "facenet_pytorch is not installed (tests/run.sh: pip install --no-deps facenet-pytorch==2.6.0)"
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or a build that does not load beside this torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _nms_shim()
    try:
        return importlib.import_module("facenet_pytorch"), ""
    except ImportError as exc:
        return None, f"facenet_pytorch does not import: {exc}"
