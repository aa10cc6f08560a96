"""Low light: the street clip and LFW darkened as ``eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t``.

Street clip (facenet-pytorch's examples/video.mp4 scaled to 1280x720 by ffmpeg into a temporary folder, both
versions; never kept): faces per frame found by facestream's default detection (the region planner, HOG
upsample 1) with and without the dark-frame enhancement (engines/faces/low_light.py), and by plain dlib HOG
upsample 1 on whole frames (every 5th frame). The clip has no labels, so its people are taken from the
normal version: its faces clustered (cosine >= the matcher's threshold to a cluster's mean), each cluster of
8+ faces is a person, its 5 best-quality faces enrolled. Every face of both versions is then named per frame
against that gallery (top-3 mean cosine >= 0.92, as the Matcher). A dark-version name is *wrong* when the
normal version's face at that place in that frame (IoU > 0.3) got another name.

LFW: one normal photo per person enrolled, the other 9 darkened with the numpy version of the filter
(``simulate_low_light``, seed 0): faces found, identified, wrong, unknown.

    python bench/bench_low_light.py

Writes bench/results/low_light.md and .json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facestream.engines.faces.analyzer import FaceAnalyzer  # noqa: E402
from facestream.engines.faces.detector import HogDetector  # noqa: E402
from facestream.engines.faces.low_light import LowLightDetector, simulate_low_light  # noqa: E402
from facestream.engines.faces.region_detector import RegionDetector  # noqa: E402
from facestream.engines.faces.regions import iou  # noqa: E402
from facestream.pipeline.recognition.matcher import DEFAULT_THRESHOLD  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
VIDEO = DATA / "facenet_pytorch_assets" / "examples" / "video.mp4"
LFW = DATA / "lfw_subset_10x10"
RESULTS = ROOT / "bench" / "results"
DARKEN = "eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t"
PLAIN_STEP = 5


def make_clips(tmp: Path) -> tuple[Path, Path]:
    normal, dark = tmp / "normal.mp4", tmp / "dark.mp4"
    for out, vf in ((normal, "scale=1280:720"), (dark, f"scale=1280:720,{DARKEN}")):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(VIDEO), "-an", "-vf", vf, "-c:v", "libx264",
                        "-crf", "18", str(out)], check=True)
    return normal, dark


def frames(path: Path) -> list[np.ndarray]:
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))


def unit(v) -> np.ndarray:
    v = np.atleast_2d(np.asarray(v, np.float32))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def faces_per_frame(analyzer: FaceAnalyzer, clip: list[np.ndarray], low_light: bool):
    """Per frame [(box, quality, unit embedding)] from the region planner's default detection."""
    det = LowLightDetector(HogDetector(1)) if low_light else HogDetector(1)
    regions = RegionDetector(det, threads=2)
    out = []
    for rgb in clip:
        faces = analyzer.describe(rgb, [d for d in regions.detect("s", rgb) if d.box[2] - d.box[0] >= 32])
        emb = unit(analyzer.embedder.embed(np.stack([f.chip for f in faces]))) if faces else np.zeros((0, 128))
        out.append([(f.box, f.quality.score, e) for f, e in zip(faces, emb, strict=True)])
    regions.close()
    return out


def people_of(normal_faces) -> tuple[np.ndarray, np.ndarray]:
    """(gallery vectors, owner index) from clusters of the normal version's faces."""
    clusters: list[list[tuple[float, np.ndarray]]] = []
    for frame in normal_faces:
        for _, q, e in frame:
            means = [unit(np.mean([v for _, v in c], 0))[0] for c in clusters]
            sims = [float(m @ e) for m in means]
            k = int(np.argmax(sims)) if sims else -1
            if k >= 0 and sims[k] >= DEFAULT_THRESHOLD:
                clusters[k].append((q, e))
            else:
                clusters.append([(q, e)])
    vecs, owner = [], []
    for c in (c for c in clusters if len(c) >= 8):
        for _, e in sorted(c, key=lambda t: -t[0])[:5]:
            vecs.append(e)
            owner.append(len(set(owner)))
    return np.array(vecs), np.array(owner)


def name_of(e: np.ndarray, vecs: np.ndarray, owner: np.ndarray) -> int | None:
    sims = vecs @ e
    scores = [np.sort(sims[owner == p])[-3:].mean() for p in range(owner.max() + 1)]
    best = int(np.argmax(scores))
    return best if scores[best] >= DEFAULT_THRESHOLD else None


def street(tmp: Path) -> dict:
    analyzer = FaceAnalyzer("hog", upsample=1, low_light=False, backend="onnxruntime")
    normal, dark = (frames(p) for p in make_clips(tmp))
    runs = {"normal": faces_per_frame(analyzer, normal, True), "dark": faces_per_frame(analyzer, dark, True),
            "dark_no_enhancement": faces_per_frame(analyzer, dark, False)}
    vecs, owner = people_of(runs["normal"])
    named = {k: [[(box, name_of(e, vecs, owner)) for box, _, e in fr] for fr in v] for k, v in runs.items()}
    out: dict = {"frames": len(normal), "people": int(owner.max() + 1) if len(owner) else 0}
    for k, per in named.items():
        frames_named = {p: sum(any(n == p for _, n in fr) for fr in per) for p in range(out["people"])}
        wrong = unconfirmed = 0
        for fr, ref in zip(per, named["normal"], strict=True):
            for box, n in fr:
                if n is None:
                    continue
                match = [rn for rb, rn in ref if iou(box, rb) > 0.3]
                wrong += bool(match) and match[0] is not None and match[0] != n
                unconfirmed += not match or match[0] is None
        out[k] = {"faces": sum(len(fr) for fr in per), "frames_named_per_person": frames_named,
                  "wrong_names": wrong, "named_where_normal_had_no_name": unconfirmed}
    base = out["normal"]["frames_named_per_person"]
    for k in ("dark", "dark_no_enhancement"):
        got = out[k]["frames_named_per_person"]
        out[k]["worst_ratio"] = round(min((got[p] / base[p] for p in base if base[p]), default=0.0), 3)
    plain, low = HogDetector(1), LowLightDetector(HogDetector(1))
    idx = range(0, len(normal), PLAIN_STEP)
    out["plain_hog_up1_every_5th"] = {"frames": len(idx), "normal": sum(len(plain.detect(normal[i])) for i in idx),
                                      "dark": sum(len(plain.detect(dark[i])) for i in idx),
                                      "dark_enhanced": sum(len(low.detect(dark[i])) for i in idx)}
    return out


def lfw() -> dict:
    analyzer = FaceAnalyzer("hog", upsample=1, low_light=False, backend="onnxruntime")
    enhanced = FaceAnalyzer("hog", upsample=1, backend="onnxruntime")
    rng = np.random.default_rng(0)
    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    gallery, probes = [], []
    for k, person in enumerate(people):
        photos = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(person.glob("*.jpg"))]
        gallery.append(analyzer.analyze(photos[0])[0].embedding)
        probes += [(k, rgb) for rgb in photos[1:]]
    g = unit(gallery)
    out = {}
    for label, an, darken in (("normal", analyzer, False), ("dark_plain", analyzer, True),
                              ("dark_enhanced", enhanced, True)):
        found = right = wrong = 0
        for k, rgb in probes:
            img = simulate_low_light(rgb, rng) if darken else rgb
            faces = an.analyze(img)
            if not faces:
                continue
            found += 1
            sc = unit(faces[0].embedding)[0] @ g.T
            best = int(np.argmax(sc))
            right += sc[best] >= DEFAULT_THRESHOLD and best == k
            wrong += sc[best] >= DEFAULT_THRESHOLD and best != k
        n = len(probes)
        out[label] = {"probes": n, "found": found / n, "identified": right / n, "wrong_name": wrong / n}
    return out


def main() -> int:
    if not VIDEO.is_file() or not LFW.is_dir():
        print(f"shared data not found under {DATA}", file=sys.stderr)
        return 1
    t0, c0 = time.time(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"street_720p": street(Path(tmp)), "lfw": lfw()}
    out["wall_s"], out["cpu_s"] = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "low_light.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "low_light.md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    s = out["street_720p"]
    lines = ["# Low light (bench/bench_low_light.py)", "",
             f"Street clip 1280x720, {s['frames']} frames, darkened by ffmpeg `{DARKEN}`; {s['people']} people "
             "taken from the normal version (clusters of its faces, 5 best enrolled each); per-frame names at "
             f"cosine {DEFAULT_THRESHOLD}.", "",
             "| version | faces (default detection) | frames named per person | worst ratio to normal | wrong names "
             "| named where normal had none |", "|---|---|---|---|---|---|"]
    for k in ("normal", "dark", "dark_no_enhancement"):
        r = s[k]
        lines.append(f"| {k} | {r['faces']} | {json.dumps(r['frames_named_per_person'])} | {r.get('worst_ratio', 1.0)} "
                     f"| {r['wrong_names']} | {r['named_where_normal_had_no_name']} |")
    p = s["plain_hog_up1_every_5th"]
    lines += ["", f"Plain dlib HOG upsample 1, whole frame, every {PLAIN_STEP}th frame ({p['frames']} frames): "
              f"{p['normal']} faces normal, {p['dark']} dark, {p['dark_enhanced']} dark with the enhancement "
              "(and its lower threshold).", "",
              "LFW (10 people, 1 normal photo enrolled, 9 probes each; darkened in numpy, seed 0):", "",
              "| probes | found | identified | wrong name |", "|---|---|---|---|"]
    for k, r in out["lfw"].items():
        lines.append(f"| {k} | {r['found']:.3f} | {r['identified']:.3f} | {r['wrong_name']:.3f} |")
    lines += ["", f"CPU {out['cpu_s']} s, wall {out['wall_s']} s (2 shared cores).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
