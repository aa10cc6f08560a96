"""Detection on the 720p street video, one process: face_recognition's HOG (upsample 1, whole frame, every
frame) as the reference, against facestream's region planner (engines/faces/planner.py).

    python bench/bench_detection.py [--video street720.mp4] [--strides 1,2,4] [--loops 4] [--detectors hog,mtcnn]

``stride`` s runs the planner on every s-th frame (a live stream processed at 25/s fps). Per strategy: faces
per frame, recall against the reference on the same frames (greedy IoU >= 0.5) per face size, extra
detections, CPU seconds per frame (process time, so other load on the machine counts less), and precision /
recall on dlib's labelled photos (testing.xml; each photo a stream's first frame). ``mtcnn`` adds MTCNN
(engines/faces/mtcnn.py, one ONNX Runtime thread) on the whole frame and inside the planner. Writes
bench/results/detection.md and .json (``--append`` keeps the rows already there for other detectors).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facestream.engines.faces.detector import HogDetector  # noqa: E402
from facestream.engines.faces.detector_specs import HogSpec  # noqa: E402
from facestream.engines.faces.labelled import read_imglab, score_labelled  # noqa: E402
from facestream.engines.faces.planner import PlannerConfig  # noqa: E402
from facestream.engines.faces.region_detector import RegionDetector  # noqa: E402
from facestream.engines.faces.regions import iou  # noqa: E402

VIDEO = REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "examples" / "video.mp4"
TESTING = REPO.parent / "shared" / "data" / "dlib_faces_detection" / "faces" / "testing.xml"
BUCKETS = ((0, 40), (40, 60), (60, 80), (80, 10_000))


def street720(video: Path) -> Path:
    out = Path(tempfile.gettempdir()) / "facestream-street720.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-vf", "scale=1280:720", "-an",
                        "-c:v", "libx264", "-g", "25", str(out)], check=True)
    return out


def read_rgb(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def match(ref: list, got: list, thr: float = 0.5) -> tuple[list[bool], int]:
    """Greedy IoU matching: which reference boxes were found, and how many found boxes matched none."""
    pairs = sorted(((iou(r, g), i, j) for i, r in enumerate(ref) for j, g in enumerate(got)), reverse=True)
    hit, used = [False] * len(ref), set()
    for v, i, j in pairs:
        if v < thr:
            break
        if not hit[i] and j not in used:
            hit[i] = True
            used.add(j)
    return hit, len(got) - len(used)


def labelled_precision(detect) -> dict:
    """Precision and recall of ``detect(rgb) -> detections`` on testing.xml (ignore boxes neither count)."""
    tp = fp = n = 0
    for path, boxes in read_imglab(TESTING):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        t, f, k = score_labelled([d.box for d in detect(rgb)], boxes)
        tp, fp, n = tp + t, fp + f, n + k
    return {"testing_precision": round(tp / max(1, tp + fp), 3), "testing_recall": round(tp / max(1, n), 3)}


def mtcnn_detector(**opts):
    from facestream.engines.faces.detector_specs import MtcnnSpec
    from facestream.engines.faces.mtcnn import MtcnnDetector

    spec = MtcnnSpec()  # the pipeline's defaults
    return MtcnnDetector(backend="onnxruntime", **{**spec.options(), "threads": 1, **opts})


def whole(frames: list[np.ndarray], det) -> tuple[dict, float]:
    t0 = time.process_time()
    out = {i: [d.box for d in det.detect(f)] for i, f in enumerate(frames)}
    return out, (time.process_time() - t0) / len(frames)


def reference(frames: list[np.ndarray]) -> tuple[list[list], float]:
    det = HogDetector(upsample=1)
    t0 = time.process_time()
    boxes = [[d.box for d in det.detect(f)] for f in frames]
    return boxes, (time.process_time() - t0) / len(frames)


def planned(frames: list[np.ndarray], stride: int, cfg: PlannerConfig, threads: int, det=None, loops: int = 1,
            luma: bool = False) -> tuple[list, float, dict]:
    """The planner (the product's RegionDetector: track margin, luma when asked) on every ``stride``-th frame
    of the video played ``loops`` times (a camera watching the same street: what it learnt in one pass, e.g.
    where faces appear, carries into the next). ``luma``: HOG on the frame's grey levels (HogSpec.luma)."""
    regions = RegionDetector(det or HogDetector(upsample=1), cfg, threads=threads, luma=luma)
    out = {}
    t0 = time.process_time()
    for g in range(0, len(frames) * loops, stride):
        out[g] = [d.box for d in regions.detect("street", frames[g % len(frames)])]
    cpu = (time.process_time() - t0) / len(out)
    regions.close()
    area = frames[0].shape[0] * frames[0].shape[1]
    return out, cpu, {k: round(v / len(out) / area, 3) for k, v in regions.pixels.items()}


def score(ref: list[list], got: dict) -> dict:
    found = {b: [0, 0] for b in BUCKETS}
    extra = n_got = n_ref = 0
    for g, boxes in got.items():
        i = g % len(ref)  # a looped run's frame g is the video's frame g mod its length
        hit, ex = match(ref[i], boxes)
        extra += ex
        n_got += len(boxes)
        n_ref += len(ref[i])
        for r, h in zip(ref[i], hit, strict=True):
            side = r[2] - r[0]
            b = next(b for b in BUCKETS if b[0] <= side < b[1])
            found[b][0] += h
            found[b][1] += 1
    return {"frames": len(got), "ref_faces_per_frame": round(n_ref / len(got), 3),
            "faces_per_frame": round(n_got / len(got), 3),
            "recall": round(sum(v[0] for v in found.values()) / max(1, n_ref), 4),
            "recall_by_size": {f"{lo}-{hi if hi < 10_000 else ''}px": f"{v[0]}/{v[1]}" for (lo, hi), v in found.items()},
            "extra": extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--strides", default="1,2,4")
    ap.add_argument("--loops", type=int, default=4, help="play the video this many times into the planner")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--planner", default="{}", help="PlannerConfig fields as JSON, e.g. '{\"motion\": false}'")
    ap.add_argument("--no-reference", action="store_true", help="skip timing the reference (boxes cached)")
    ap.add_argument("--detectors", default="hog", help="hog, mtcnn or hog,mtcnn")
    ap.add_argument("--append", action="store_true", help="keep the rows of detection.json for other detectors")
    args = ap.parse_args()
    kinds = args.detectors.split(",")
    frames = read_rgb(args.video or street720(VIDEO))
    cache = Path(tempfile.gettempdir()) / "facestream-bench-detection-ref.json"
    if args.no_reference and cache.exists():
        ref, ref_cpu = (lambda d: ([[tuple(b) for b in f] for f in d["boxes"]], d["cpu"]))(json.loads(cache.read_text()))
    else:
        ref, ref_cpu = reference(frames)
        cache.write_text(json.dumps({"boxes": ref, "cpu": ref_cpu}))
    load = f"load {os.getloadavg()[0]:.1f}"
    res = REPO / "bench" / "results"
    old = json.loads((res / "detection.json").read_text()).get("rows", []) if args.append else []
    rows = [r for r in old if r.get("detector", "hog") not in kinds]
    ap_cfg = json.loads(args.planner)
    cfg = PlannerConfig(**{"track_margin": HogSpec().track_margin, **ap_cfg})  # the pipeline's HOG
    if "hog" in kinds:
        hog = HogDetector(upsample=1)
        hog_precision = labelled_precision(hog.detect)
        luma_precision = labelled_precision(lambda rgb: hog.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        rows.append({"detector": "hog", "strategy": "reference: HOG upsample 1, whole frame", "stride": 1,
                     "cpu_s_per_frame": round(ref_cpu, 4), "load": load, **score(ref, dict(enumerate(ref))),
                     **hog_precision})
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        got, cpu = whole(grey, hog)
        rows.append({"detector": "hog", "strategy": "HOG upsample 1 on the frame's luma, whole frame", "stride": 1,
                     "cpu_s_per_frame": round(cpu, 4), "load": f"load {os.getloadavg()[0]:.1f}",
                     **score(ref, got), **luma_precision})
        variants = [("planner (default): followed faces + rolling scan weighted by motion and by faces seen, "
                     "HOG on luma", cfg, True, luma_precision),
                    ("the same on colour (inference.detector.luma false)", cfg, False, hog_precision)]
        if cfg.prior_weight > 0:
            variants.append(("the default without the faces-seen prior (prior_weight 0)",
                             replace(cfg, prior_weight=0.0), True, luma_precision))
        if cfg.track_margin > 0:
            variants.append(("the default without the track margin (track_margin 0)",
                             replace(cfg, track_margin=0.0), True, luma_precision))
        for s in (int(x) for x in args.strides.split(",")):
            for name, vcfg, luma, precision in variants:
                got, cpu, pixels = planned(frames, s, vcfg, args.threads, loops=args.loops, luma=luma)
                rows.append({"detector": "hog", "strategy": name, "stride": s, "loops": args.loops,
                             "cpu_s_per_frame": round(cpu, 4), "load": f"load {os.getloadavg()[0]:.1f}",
                             "pixels_per_frame": pixels, **score(ref, got), **precision})
    if "mtcnn" in kinds:
        det = mtcnn_detector()
        det.detect(frames[0])  # sessions warmed up
        mt_precision = labelled_precision(det.detect)
        got, cpu = whole(frames, det)
        rows.append({"detector": "mtcnn", "strategy": f"MTCNN (min_face {det.min_face:g}), whole frame", "stride": 1,
                     "cpu_s_per_frame": round(cpu, 4), "load": f"load {os.getloadavg()[0]:.1f}",
                     **score(ref, got), **mt_precision})
        mcfg = PlannerConfig(**{"track_window": det.smallest_face, **ap_cfg})
        for s in (int(x) for x in args.strides.split(",")):
            got, cpu, pixels = planned(frames, s, mcfg, args.threads, det, loops=args.loops)
            rows.append({"detector": "mtcnn", "strategy": "MTCNN in the planner", "stride": s,
                         "cpu_s_per_frame": round(cpu, 4), "load": f"load {os.getloadavg()[0]:.1f}",
                         "pixels_per_frame": pixels, **score(ref, got), **mt_precision})
        fast = mtcnn_detector(thresholds=(0.8, 0.7, 0.7))  # P-Net 0.8: same recall on training.xml, fewer crops
        got, cpu, pixels = planned(frames, 1, mcfg, args.threads, fast, loops=args.loops)
        rows.append({"detector": "mtcnn", "strategy": "MTCNN in the planner, P-Net threshold 0.8", "stride": 1,
                     "cpu_s_per_frame": round(cpu, 4), "load": f"load {os.getloadavg()[0]:.1f}",
                     "pixels_per_frame": pixels, **score(ref, got), **labelled_precision(fast.detect)})
    for r in rows:
        print(json.dumps(r))
    (res / "detection.json").write_text(json.dumps({"frames": len(frames), "threads": args.threads,
                                                    "planner": vars(cfg), "rows": rows}, indent=1))
    lines = ["# Detection: region planner vs whole-frame HOG (720p street video)", "",
             f"{len(frames)} frames at 1280x720, played {args.loops} times into each planner row (stride s: "
             "every s-th frame, as a live stream processed at 25/s fps); CPU = process seconds per processed "
             f"frame, {args.threads} "
             f"detector thread(s); recall = reference faces found (IoU >= 0.5) on the same frames. "
             f"Planner schedule length {cfg.schedule_length} frames. Precision / recall: dlib's testing.xml "
             "(IoU >= 0.5). Load: the machine's 1-minute load average when the row was measured (2 cores, "
             "shared). `python bench/bench_detection.py --detectors hog,mtcnn`.", "",
             "| strategy | stride | faces/frame (ref) | recall | recall by face size | extra | CPU s/frame | "
             "testing.xml P / R | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sizes = ", ".join(f"{k} {v}" for k, v in r["recall_by_size"].items())
        pr = f"{r['testing_precision']:.2f} / {r['testing_recall']:.2f}" if "testing_precision" in r else "–"
        lines.append(f"| {r['strategy']} | {r['stride']} | {r['faces_per_frame']} ({r['ref_faces_per_frame']}) | "
                     f"{r['recall']:.3f} | {sizes} | {r['extra']} | {r['cpu_s_per_frame']:.3f} | {pr} | "
                     f"{r.get('load', '–')} |")
    (res / "detection.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
