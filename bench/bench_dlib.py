"""dlib's CNN face detector and ResNet embedder: ONNX Runtime (facestream) vs dlib itself, same images, same machine.

    python bench/bench_dlib.py            # ~3-5 min on 2 CPU cores (dlib's CNN detector is the slow part)
    python bench/bench_dlib.py --quick    # fewer frames and faces: a smoke run

Measures
- parity: ONNX embedding vs dlib.face_recognition_model_v1 on every LFW face (worst cosine), FP32 and FP16;
  ONNX detections vs dlib.cnn_face_detection_model_v1 (same boxes within 2 px) on the images used below;
- faces/s of the embedder: ONNX Runtime at batch 1, 8, 32 vs dlib (its own batch call);
- frames/s of the detectors at 640x360 and 1280x720 (frames of ../shared/data/.../video.mp4): ONNX CNN with dlib's
  pyramid, ONNX CNN with min_face=120, dlib CNN, dlib HOG;
- recall / precision on dlib's testing.xml (IoU >= 0.5, greedy by score, `ignore` boxes neither count nor
  penalise), at dlib's native scale and upsampled once (ONNX: min_face=40).

Writes bench/results/dlib_engines.md and bench/results/dlib_engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlib  # noqa: E402

from facestream.engines.dlib_import import import_dlib_models, model_file  # noqa: E402
from facestream.engines.faces.detector import FaceDetector, HogDetector  # noqa: E402
from facestream.engines.faces.embedder import FaceEmbedder  # noqa: E402
from facestream.engines.faces.vectors import CHIP_SIZE  # noqa: E402
from facestream.engines.store import ModelStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
LFW = DATA / "lfw_subset_10x10"
VIDEO = DATA / "facenet_pytorch_assets" / "examples" / "video.mp4"
TESTING = DATA / "dlib_faces_detection" / "faces" / "testing.xml"
RESULTS = ROOT / "bench" / "results"


def timed(fn, min_seconds: float = 1.0, min_runs: int = 2) -> float:
    """Median seconds per call (after one warm-up call)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def lfw_chips(limit: int | None) -> list[np.ndarray]:
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(model_file("shape_predictor_5_face_landmarks.dat")))
    chips = []
    for f in sorted(LFW.glob("*/*.jpg"))[:limit]:
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        for rect in hog(img, 0):
            chips.append(np.asarray(dlib.get_face_chip(img, sp(img, rect), CHIP_SIZE, 0.25)))
    return chips


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def bench_embedder(store: ModelStore, quick: bool) -> dict:
    rec = dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat")))
    chips = lfw_chips(20 if quick else None)
    ref = np.array([np.array(d) for d in rec.compute_face_descriptor(chips)])
    fp32 = FaceEmbedder(store=store, backend="onnxruntime")
    fp16 = FaceEmbedder(store=store, backend="onnxruntime", precision="fp16")
    ours = fp32.embed(np.stack(chips))
    ours16 = fp16.embed(np.stack(chips))
    out = {
        "faces": len(chips),
        "worst_cosine_fp32": float(cosines(ref, ours).min()),
        "max_abs_diff_fp32": float(np.abs(ref - ours).max()),
        "worst_cosine_fp16": float(cosines(ref, ours16).min()),
        "speed": [],
    }
    pool = np.stack((chips * 32)[:32])
    for batch in (1, 8, 32):
        x = pool[:batch]
        sec = timed(lambda x=x: fp32.embed(x), 1.0 if quick else 3.0)
        out["speed"].append({"engine": "ONNX Runtime FP32", "batch": batch, "faces_per_s": batch / sec})
    for batch in (1, 8, 32):
        x = list(pool[:batch])
        sec = timed(lambda x=x: rec.compute_face_descriptor(x), 1.0 if quick else 3.0)
        out["speed"].append({"engine": "dlib", "batch": batch, "faces_per_s": batch / sec})
    return out


def video_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    step = max(1, 100 // max(n, 1))
    i = 0
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(
                cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
            )
        i += 1
    cap.release()
    return frames


def fps(fn, frames: list[np.ndarray]) -> tuple[float, int]:
    fn(frames[0])  # warm-up
    found = 0
    start = time.perf_counter()
    for f in frames:
        found += len(fn(f))
    return len(frames) / (time.perf_counter() - start), found


def bench_detectors(store: ModelStore, quick: bool) -> list[dict]:
    cnn = dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))
    hog = HogDetector(upsample=0)
    onnx_dlib = FaceDetector(store=store, backend="onnxruntime")
    onnx_fast = FaceDetector(store=store, backend="onnxruntime", min_face=120)
    rows = []
    for size in ((640, 360), (1280, 720)):
        n_fast = 4 if quick else 12
        n_dlib = 1 if quick else (3 if size[0] == 640 else 2)
        frames = video_frames(n_fast, size)
        cases = [
            ("ONNX Runtime CNN, dlib pyramid", onnx_dlib.detect, frames),
            ("ONNX Runtime CNN, min_face=120", onnx_fast.detect, frames),
            ("dlib CNN (cnn_face_detection_model_v1)", lambda f: cnn(f, 0), frames[: n_dlib + 1]),
            ("dlib HOG (get_frontal_face_detector)", hog.detect, frames),
        ]
        for name, fn, fr in cases:
            f, found = fps(fn, fr)
            rows.append(
                {
                    "detector": name,
                    "size": f"{size[0]}x{size[1]}",
                    "frames": len(fr),
                    "fps": f,
                    "faces_per_frame": found / len(fr),
                }
            )
    return rows


def read_imglab(path: Path) -> list[tuple[Path, list[tuple], list[tuple]]]:
    out = []
    for image in ET.parse(path).getroot().iter("image"):
        keep, ignore = [], []
        for box in image.iter("box"):
            t, left = float(box.get("top")), float(box.get("left"))
            w, h = float(box.get("width")), float(box.get("height"))
            b = (left, t, left + w, t + h)
            (ignore if box.get("ignore") in ("1", "true") else keep).append(b)
        out.append((path.parent / image.get("file"), keep, ignore))
    return out


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(dets: list[tuple], truth: list[tuple], ignore: list[tuple]) -> tuple[int, int]:
    """(true positives, false positives): greedy by score at IoU >= 0.5; hits on ignore boxes are free."""
    used = [False] * len(truth)
    tp = fp = 0
    for box, _ in sorted(dets, key=lambda d: -d[1]):
        best, best_iou = -1, 0.5
        for i, t in enumerate(truth):
            v = iou(box, t)
            if not used[i] and v >= best_iou:
                best, best_iou = i, v
        if best >= 0:
            used[best] = True
            tp += 1
        elif not any(iou(box, g) >= 0.5 for g in ignore):
            fp += 1
    return tp, fp


def bench_accuracy(store: ModelStore) -> tuple[list[dict], dict]:
    cnn = dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))
    detectors = {
        "ONNX Runtime CNN (= dlib CNN, upsample 0)": FaceDetector(store=store, backend="onnxruntime").detect,
        "ONNX Runtime CNN, min_face=40 (~ upsample 1)": FaceDetector(
            store=store, backend="onnxruntime", min_face=40
        ).detect,
        "dlib CNN, upsample 0": lambda img: cnn(img, 0),
        "dlib CNN, upsample 1": lambda img: cnn(img, 1),
        "dlib HOG, upsample 0": HogDetector(upsample=0).detect,
        "dlib HOG, upsample 1": HogDetector(upsample=1).detect,
    }
    data = read_imglab(TESTING)
    rows = []
    parity = {"images": 0, "same_boxes": 0, "max_box_diff_px": 0.0}
    per_image: dict[str, list] = {}
    for name, fn in detectors.items():
        tp = fp = n_truth = 0
        seconds = 0.0
        for path, truth, ignore in data:
            img = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
            t = time.perf_counter()
            raw = fn(img)
            seconds += time.perf_counter() - t
            dets = [_as_box(d) for d in raw]
            per_image.setdefault(name, []).append(dets)
            a, b = match(dets, truth, ignore)
            tp, fp, n_truth = tp + a, fp + b, n_truth + len(truth)
        rows.append(
            {
                "detector": name,
                "images": len(data),
                "faces": n_truth,
                "tp": tp,
                "fp": fp,
                "recall": tp / max(n_truth, 1),
                "precision": tp / max(tp + fp, 1),
                "s_per_image": seconds / len(data),
            }
        )
    ours, ref = per_image["ONNX Runtime CNN (= dlib CNN, upsample 0)"], per_image["dlib CNN, upsample 0"]
    for a, b in zip(ours, ref, strict=True):
        parity["images"] += 1
        if len(a) == len(b):
            diff = max(
                (np.abs(np.subtract(x[0], y[0])).max() for x, y in zip(a, b, strict=True)), default=0.0
            )
            parity["max_box_diff_px"] = max(parity["max_box_diff_px"], float(diff))
            parity["same_boxes"] += int(diff <= 2)
    return rows, parity


def _as_box(d) -> tuple[tuple, float]:
    if hasattr(d, "box"):
        return tuple(d.box), d.score
    r = d.rect
    return (r.left(), r.top(), r.right() + 1, r.bottom() + 1), d.confidence


def write(results: dict) -> str:
    e = results["embedder"]
    lines = [
        "# dlib models: ONNX Runtime (facestream) vs dlib",
        "",
        f"Machine: {results['machine']}. Command: `python bench/bench_dlib.py{' --quick' if results['quick'] else ''}`.",
        "",
        "## Parity",
        "",
        f"- Embedder, {e['faces']} LFW faces: worst cosine FP32 {e['worst_cosine_fp32']:.8f} "
        f"(max abs diff {e['max_abs_diff_fp32']:.2e}); FP16 {e['worst_cosine_fp16']:.6f}.",
        f"- Detector on testing.xml images: {results['detector_parity']['same_boxes']}/"
        f"{results['detector_parity']['images']} images with the same boxes as dlib's CNN "
        f"(max difference {results['detector_parity']['max_box_diff_px']:.0f} px).",
        "",
        "## Embedder speed (faces/s, higher is better)",
        "",
        "| engine | batch | faces/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['engine']} | {r['batch']} | {r['faces_per_s']:.1f} |" for r in e["speed"]]
    lines += [
        "",
        "## Detector speed (frames/s of video.mp4 frames)",
        "",
        "| detector | frame size | frames/s | faces/frame |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {r['detector']} | {r['size']} | {r['fps']:.2f} | {r['faces_per_frame']:.1f} |"
        for r in results["detector_speed"]
    ]
    lines += [
        "",
        "## Detection accuracy on dlib's testing.xml (IoU >= 0.5)",
        "",
        "| detector | faces | TP | FP | recall | precision | s/image |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['detector']} | {r['faces']} | {r['tp']} | {r['fp']} | {r['recall']:.2f} | "
        f"{r['precision']:.2f} | {r['s_per_image']:.2f} |"
        for r in results["accuracy"]
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and faces")
    args = parser.parse_args()
    missing = [p for p in (LFW, VIDEO, TESTING) if not p.exists()]
    if missing:
        print(f"bench_dlib: shared data missing: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(tmp)
        import_dlib_models(store)
        results = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"onnxruntime intra-op threads = min(4, cores), dlib {dlib.__version__} (CUDA: {dlib.DLIB_USE_CUDA})",
            "quick": args.quick,
            "embedder": bench_embedder(store, args.quick),
            "detector_speed": bench_detectors(store, args.quick),
        }
        results["accuracy"], results["detector_parity"] = bench_accuracy(store)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = write(results)
    (RESULTS / "dlib_engines.md").write_text(text)
    (RESULTS / "dlib_engines.json").write_text(json.dumps(results, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
