"""Low light: the street clip and LFW darkened as ``eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t``.

Street clip (facenet-pytorch's examples/video.mp4 scaled to 1280x720 by ffmpeg into a temporary folder, both
versions; never kept): faces per frame found by facestream's default detection (the region planner, HOG
upsample 1) with and without the dark-frame enhancement (engines/faces/low_light.py), and by plain dlib HOG
upsample 1 on whole frames (every 5th frame). The clip has no labels, so its people are taken from the
normal version: its faces linked into tracks by box overlap, tracks joined by mean embedding (cosine >= 0.9),
each group of 8+ faces is a person, its 5 best-quality faces enrolled. Every face of both versions is then named per frame
against that gallery (top-3 mean cosine >= 0.92, as the Matcher). A frame counts for a person when a face
at that person's place in the normal version (IoU > 0.3) is named as that person; any other person's name there
is *wrong*.

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


def people_of(normal_faces) -> tuple[np.ndarray, np.ndarray, list[list[int | None]]]:
    """(gallery vectors, their owner, per-frame person label of each face) from the normal version: faces
    linked into tracks by box overlap with the previous 2 frames, tracks joined into a person when their mean
    embeddings reach cosine 0.9; a person of 8+ faces is enrolled with its 5 best-quality faces."""
    track_of: list[list[int]] = []
    tracks: list[list[tuple[int, int]]] = []  # (frame, face index)
    for f, frame in enumerate(normal_faces):
        ids = []
        for box, _, _ in frame:
            best, best_iou = -1, 0.3
            for back in (1, 2):
                if f - back < 0:
                    continue
                for j, (b, _, _) in enumerate(normal_faces[f - back]):
                    t = track_of[f - back][j]
                    if iou(box, b) > best_iou and tracks[t][-1][0] < f and t not in ids:
                        best, best_iou = t, iou(box, b)
            if best < 0:
                best = len(tracks)
                tracks.append([])
            tracks[best].append((f, len(ids)))
            ids.append(best)
        track_of.append(ids)
    means = [unit(np.mean([normal_faces[f][i][2] for f, i in t], 0))[0] for t in tracks]
    parent = list(range(len(tracks)))

    def root(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            if float(means[a] @ means[b]) >= 0.9:
                parent[root(b)] = root(a)
    groups: dict[int, list[tuple[int, int]]] = {}
    for t, members in enumerate(tracks):
        groups.setdefault(root(t), []).extend(members)
    people = [g for g in groups.values() if len(g) >= 8]
    labels: list[list[int | None]] = [[None] * len(fr) for fr in normal_faces]
    vecs, owner = [], []
    for p, members in enumerate(people):
        for f, i in members:
            labels[f][i] = p
        for f, i in sorted(members, key=lambda m: -normal_faces[m[0]][m[1]][1])[:5]:
            vecs.append(normal_faces[f][i][2])
            owner.append(p)
    return np.array(vecs), np.array(owner), labels


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
    vecs, owner, labels = people_of(runs["normal"])
    ref = [[(box, lab) for (box, _, _), lab in zip(fr, labs, strict=True)] for fr, labs in zip(runs["normal"], labels,
                                                                                           strict=True)]
    out: dict = {"frames": len(normal), "people": int(owner.max() + 1) if len(owner) else 0}
    for k, per in runs.items():
        right = {p: 0 for p in range(out["people"])}
        wrong = unconfirmed = 0
        for fr, rf in zip(per, ref, strict=True):
            named_right = set()
            for box, _, e in fr:
                n = name_of(e, vecs, owner)
                if n is None:
                    continue
                match = [lab for rb, lab in rf if iou(box, rb) > 0.3]
                if not match or match[0] is None:
                    unconfirmed += 1
                elif match[0] == n:
                    named_right.add(n)
                else:
                    wrong += 1
            for p in named_right:
                right[p] += 1
        out[k] = {"faces": sum(len(fr) for fr in per), "frames_named_per_person": right,
                  "wrong_names": wrong, "named_where_normal_had_no_person": unconfirmed}
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
             "taken from the normal version (its faces linked into tracks, tracks joined by mean embedding, 5 best "
             f"faces enrolled each); per-frame names at cosine {DEFAULT_THRESHOLD}; a frame counts for a person when a "
             "face at that person's place in the normal version is named as that person; a wrong name is any other "
             "person's name there.", "",
             "| version | faces (default detection) | frames named per person | worst ratio to normal | wrong names "
             "| named where normal had no person |", "|---|---|---|---|---|---|"]
    for k in ("normal", "dark", "dark_no_enhancement"):
        r = s[k]
        lines.append(f"| {k} | {r['faces']} | {json.dumps(r['frames_named_per_person'])} | {r.get('worst_ratio', 1.0)} "
                     f"| {r['wrong_names']} | {r['named_where_normal_had_no_person']} |")
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
