"""The street clip's people, taken from its normal version, and facestream's own output scored against them.

Shared by bench/bench_low_light.py and tests/pipeline/test_low_light_pipeline.py. The clip has no labels, so its
people come from the normal version (``people_of``): faces found per frame by facestream's default detection,
linked into tracks by box overlap, tracks joined by mean embedding (cosine >= 0.9); each group of 8+ faces is a
person, its 5 best-quality faces enrolled (``enrol``: ``Gallery.enrol``, the way every embedding enters a
gallery). ``run_facestream`` runs the real CLI, ``facestream run CLIP --out DIR`` (default config, that gallery)
and reads the sink's results.jsonl; ``score`` counts, per person, the frames where a face at that person's place
in the normal version (IoU > 0.3) carries that person's name; any other person's name there is *wrong*.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from facestream.engines.faces.analyzer import FaceAnalyzer
from facestream.engines.faces.region_detector import RegionDetector
from facestream.engines.faces.regions import iou
from facestream.engines.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
DARKEN = "eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t"
PLACE_IOU = 0.3


def make_clips(video: Path, tmp: Path, start: float = 0.0, preset: str = "medium") -> tuple[Path, Path]:
    """The clip scaled to 1280x720 (normal.mp4) and the same darkened (dark.mp4), from ``start`` seconds on
    (H.264 CRF 18; a faster x264 ``preset`` for tests)."""
    normal, dark = tmp / "normal.mp4", tmp / "dark.mp4"
    for out, vf in ((normal, "scale=1280:720"), (dark, f"scale=1280:720,{DARKEN}")):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-i", str(video), "-an", "-vf", vf,
                        "-c:v", "libx264", "-preset", preset, "-crf", "18", str(out)], check=True)
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


def faces_per_frame(clip: list[np.ndarray], low_light: bool, store: ModelStore | None = None):
    """Per frame [(box, quality, unit embedding)] from the region planner's default detection (HOG upsample 1),
    with or without the dark-frame enhancement (of the detector's frame and the embedder's chip)."""
    analyzer = FaceAnalyzer("hog", store=store, upsample=1, low_light=low_light, backend="onnxruntime")
    regions = RegionDetector(analyzer.detector, threads=2)
    out = []
    for rgb in clip:
        faces = analyzer.describe(rgb, [d for d in regions.detect("s", rgb) if d.box[2] - d.box[0] >= 32])
        emb = unit(analyzer.embedder.embed(np.stack([f.chip for f in faces]))) if faces else np.zeros((0, 128))
        out.append([(f.box, f.quality.score, e) for f, e in zip(faces, emb, strict=True)])
    regions.close()
    return out


def _tracks(normal_faces) -> list[list[tuple[int, int]]]:
    """Faces linked by box overlap (IoU > 0.3) with the previous 2 frames: per track its (frame, face index)."""
    track_of: list[list[int]] = []
    tracks: list[list[tuple[int, int]]] = []
    for f, frame in enumerate(normal_faces):
        ids = []
        for box, _, _ in frame:
            best, best_iou = -1, PLACE_IOU
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
    return tracks


def people_of(normal_faces) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int | None]]]:
    """(gallery vectors, their owner, their quality, per-frame person label of each face) from the normal
    version: tracks joined into a person when their mean embeddings reach cosine 0.9; a person of 8+ faces is
    enrolled with its 5 best-quality faces."""
    tracks = _tracks(normal_faces)
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
    vecs, owner, quals = [], [], []
    for p, members in enumerate(people):
        for f, i in members:
            labels[f][i] = p
        for f, i in sorted(members, key=lambda m: -normal_faces[m[0]][m[1]][1])[:5]:
            vecs.append(normal_faces[f][i][2])
            owner.append(p)
            quals.append(normal_faces[f][i][1])
    return np.array(vecs), np.array(owner), np.array(quals), labels


def reference(normal_faces, labels) -> list[list[tuple[tuple, int | None]]]:
    """Per frame of the normal version: (box, person or None) of each face."""
    return [[(box, lab) for (box, _, _), lab in zip(fr, labs, strict=True)]
            for fr, labs in zip(normal_faces, labels, strict=True)]


def person_name(p: int) -> str:
    return f"street person {p}"


def enrol(gallery_path: Path, vecs: np.ndarray, owner: np.ndarray, quals: np.ndarray) -> list[str]:
    """A fresh gallery file with each person's enrolment faces; returns the names, by person index."""
    from facestream.pipeline.recognition.gallery import EnrolItem, Gallery

    names = [person_name(p) for p in range(int(owner.max()) + 1)] if len(owner) else []
    with Gallery(gallery_path) as g:
        for p, name in enumerate(names):
            g.enrol(name, [EnrolItem(v, float(q), source=f"street frame face {k}")
                           for k, (v, q) in enumerate(zip(vecs[owner == p], quals[owner == p], strict=True))])
    return names


def run_facestream(clip: Path, gallery: Path, out: Path, models: Path | None = None, sets: tuple[str, ...] = (),
                   timeout: float = 900) -> list[list[tuple[tuple, str | None]]]:
    """``facestream run CLIP --out OUT [--set KEY=VALUE ...]`` with that gallery (metrics off, sockets in OUT/run);
    per frame (by seq) [(box, identity label or None)] from the sink's results.jsonl."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACESTREAM__METRICS__ENABLED": "false",
           "FACESTREAM__TRANSPORT__RUN_DIR": str(out / "run"), "FACESTREAM_GALLERY": str(gallery)}
    env.pop("FACESTREAM_GALLERY_KEY", None)
    if models is not None:
        env["FACESTREAM_MODELS"] = str(models)
    argv = ["run", str(clip), "--out", str(out), *(a for kv in sets for a in ("--set", kv))]
    proc = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"facestream run {clip.name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    per: list[list[tuple[tuple, str | None]]] = [[] for _ in range(1 + max((r["seq"] for r in records), default=-1))]
    for r in records:
        per[r["seq"]] = [(tuple(f["box"]), f.get("identity")) for f in r["faces"]]
    return per


def score(named: list[list[tuple[tuple, int | None]]], ref, people: int) -> dict:
    """Per person the frames where a face at that person's place in the normal version is named as that person;
    names at another person's place (wrong) and where the normal version had no person. ``named``: per frame
    [(box, person index or None = not named)]."""
    right = {p: 0 for p in range(people)}
    wrong = unconfirmed = 0
    for fr, rf in zip(named, ref, strict=False):
        named_right = set()
        for box, n in fr:
            if n is None:
                continue
            match = [lab for rb, lab in rf if iou(box, rb) > PLACE_IOU]
            if not match or match[0] is None:
                unconfirmed += 1
            elif match[0] == n:
                named_right.add(n)
            else:
                wrong += 1
        for p in named_right:
            right[p] += 1
    return {"faces": sum(len(fr) for fr in named), "frames_named_per_person": right, "wrong_names": wrong,
            "named_where_normal_had_no_person": unconfirmed}


def by_person(per: list[list[tuple[tuple, str | None]]], names: list[str]) -> list[list[tuple[tuple, int | None]]]:
    """facestream's identity labels as person indices (None: unknown#N, undecided or a name not in ``names``)."""
    index = {n: p for p, n in enumerate(names)}
    return [[(box, index.get(label)) for box, label in fr] for fr in per]


def worst_ratio(got: dict, base: dict) -> float:
    """The smallest frames(dark) / frames(normal) over the people named in the normal version."""
    return round(min((got[p] / base[p] for p in base if base[p]), default=0.0), 3)


def through_facestream(clips: tuple[Path, Path], normal_faces, tmp: Path, models: Path | None = None,
                       sets: tuple[str, ...] = ()) -> dict:
    """The people of the normal version enrolled into tmp/gallery.db, then both clips through ``facestream run``:
    per version the ``score`` (and its wall time), the dark one with its ``worst_ratio`` to the normal one."""
    vecs, owner, quals, labels = people_of(normal_faces)
    ref, people = reference(normal_faces, labels), int(owner.max() + 1) if len(owner) else 0
    names = enrol(tmp / "gallery.db", vecs, owner, quals)
    out: dict = {"people": people}
    for k, clip in zip(("normal", "dark"), clips, strict=True):
        t0 = time.time()
        per = run_facestream(clip, tmp / "gallery.db", tmp / f"out-{k}", models, sets)
        out[k] = {**score(by_person(per, names), ref, people), "wall_s": round(time.time() - t0, 1)}
    out["dark"]["worst_ratio"] = worst_ratio(out["dark"]["frames_named_per_person"],
                                             out["normal"]["frames_named_per_person"])
    return out
