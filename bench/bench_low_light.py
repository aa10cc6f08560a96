"""Low light: the street clip and LFW darkened as ``eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t``.

Street clip (facenet-pytorch's examples/video.mp4 scaled to 1280x720 by ffmpeg into a temporary folder, both
versions; never kept). It has no labels, so its people come from the normal version (bench/low_light_stream.py:
faces linked into tracks by box overlap, tracks joined by mean embedding, cosine >= 0.9; each group of 8+ faces
is a person, its 5 best-quality faces enrolled). A frame counts for a person when a face at that person's place
in the normal version (IoU > 0.3) carries that person's name; any other person's name there is *wrong*.

* **Through facestream**, the measure of the target: the people enrolled into a gallery file (``Gallery.enrol``),
  then ``facestream run CLIP --out DIR`` (default config) on both versions; names per frame from results.jsonl.
* **Per-frame matcher without tracking**: every face of the default detection (region planner, HOG upsample 1,
  with and without the dark-frame enhancement) named on its own (top-3 mean cosine >= 0.92, as the Matcher).
* Plain dlib HOG upsample 1 on whole frames (every 5th frame): faces found.

LFW: one normal photo per person enrolled, the other 9 darkened with the numpy version of the filter
(``simulate_low_light``, seed 0): faces found, identified, wrong, unknown. LFW noise: the data the dark-frame
choices were made on (``low_light.enhance_chip``, the scheduler's ``uncertain_margin``/``uncertain_frames``),
each probe darkened with 6 noise draws at full and half size. Nothing is tuned on the street clip.

    python bench/bench_low_light.py

Writes bench/results/low_light.md and .json.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from low_light_stream import (  # noqa: E402
    DARKEN,
    faces_per_frame,
    frames,
    make_clips,
    people_of,
    reference,
    score,
    through_facestream,
    unit,
    worst_ratio,
)

from facestream.engines.faces.align import face_chip  # noqa: E402
from facestream.engines.faces.analyzer import FaceAnalyzer  # noqa: E402
from facestream.engines.faces.detector import HogDetector  # noqa: E402
from facestream.engines.faces.low_light import LowLightDetector, enhance_chip, simulate_low_light  # noqa: E402
from facestream.pipeline.recognition.matcher import DEFAULT_THRESHOLD  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
VIDEO = DATA / "facenet_pytorch_assets" / "examples" / "video.mp4"
LFW = DATA / "lfw_subset_10x10"
RESULTS = ROOT / "bench" / "results"
PLAIN_STEP = 5
NOISE_DRAWS = 6


def name_of(e: np.ndarray, vecs: np.ndarray, owner: np.ndarray) -> int | None:
    sims = vecs @ e
    scores = [np.sort(sims[owner == p])[-3:].mean() for p in range(owner.max() + 1)]
    best = int(np.argmax(scores))
    return best if scores[best] >= DEFAULT_THRESHOLD else None


def street(tmp: Path) -> dict:
    clips = make_clips(VIDEO, tmp)
    normal, dark = (frames(p) for p in clips)
    runs = {"normal": faces_per_frame(normal, True), "dark": faces_per_frame(dark, True),
            "dark_no_enhancement": faces_per_frame(dark, False)}
    vecs, owner, quals, labels = people_of(runs["normal"])
    ref = reference(runs["normal"], labels)
    people = int(owner.max() + 1) if len(owner) else 0
    out: dict = {"frames": len(normal), "people": people, "per_frame": {}}
    for k, per in runs.items():
        named = [[(box, name_of(e, vecs, owner)) for box, _, e in fr] for fr in per]
        out["per_frame"][k] = score(named, ref, people)
    out["facestream"] = through_facestream(clips, runs["normal"], tmp)
    base = out["per_frame"]["normal"]["frames_named_per_person"]
    for k in ("dark", "dark_no_enhancement"):
        out["per_frame"][k]["worst_ratio"] = worst_ratio(out["per_frame"][k]["frames_named_per_person"], base)
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


def lfw_noise() -> dict:
    """Calibration data for the two dark-frame choices (never the street clip): per LFW size (full, half), each
    probe darkened with 6 noise draws; raw chip vs ``enhance_chip`` (genuine and best-impostor cosine, one draw);
    with the enhanced chip, one draw's score spread and naming from the mean of 1, 3 and 6 draws."""
    an = FaceAnalyzer("hog", upsample=1, low_light=False, backend="onnxruntime")
    det = LowLightDetector(HogDetector(1))
    photos = [[cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(p.glob("*.jpg"))]
              for p in sorted(p for p in LFW.iterdir() if p.is_dir())]
    g = unit([an.analyze(ph[0])[0].embedding for ph in photos])
    out = {}
    for size in (1.0, 0.5):
        rows: dict[str | int, list] = {"raw": [], "enhanced": [], "sd": [], "all": [], 1: [], 3: [], NOISE_DRAWS: []}
        for k, ph in enumerate(photos):
            for i, rgb in enumerate(ph[1:], 1):
                rgb = cv2.resize(rgb, None, fx=size, fy=size, interpolation=cv2.INTER_AREA) if size < 1 else rgb
                chips = []
                for d in range(NOISE_DRAWS):
                    dark = simulate_low_light(rgb, np.random.default_rng(1000 * k + 10 * i + d))
                    dets = det.detect(dark)
                    if dets:
                        chip = face_chip(dark, an.landmarks.predict(dark, max(dets, key=lambda x: x.score).box))
                        chips += [chip, enhance_chip(chip)]
                if len(chips) < 2 * NOISE_DRAWS:
                    continue
                embs = unit(an.embedder.embed(np.stack(chips)))  # rows: raw, enhanced, raw, enhanced, ...
                sims = embs @ g.T
                for key, row in (("raw", sims[0]), ("enhanced", sims[1])):
                    rows[key].append((row[k], np.delete(row, k).max()))
                rows["sd"].append(sims[1::2, k].std(ddof=1))
                for n in (1, 3, NOISE_DRAWS):
                    mean = unit(embs[1:2 * n:2].mean(0))[0] @ g.T
                    rows[n].append(bool(np.argmax(mean) == k and mean[k] >= DEFAULT_THRESHOLD))
                rows["all"].append(mean[k])  # the genuine score of the mean of every draw
        r = {key: {"genuine": round(float(np.mean([a for a, _ in v])), 4),
                   "best_impostor": round(float(np.mean([b for _, b in v])), 4),
                   "identified": round(float(np.mean([a >= DEFAULT_THRESHOLD and a > b for a, b in v])), 3)}
             for key, v in rows.items() if key in ("raw", "enhanced")}
        r["probes"], r["score_sd_one_draw"] = len(rows["sd"]), round(float(np.mean(rows["sd"])), 4)
        r["genuine_mean_of_all_draws"] = round(float(np.mean(rows["all"])), 4)
        r["identified_from_mean_of"] = {n: round(float(np.mean(rows[n])), 3) for n in (1, 3, NOISE_DRAWS)}
        out[f"size_{size}"] = r
    return out


def main() -> int:
    if not VIDEO.is_file() or not LFW.is_dir():
        print(f"shared data not found under {DATA}", file=sys.stderr)
        return 1
    t0, c0 = time.time(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"street_720p": street(Path(tmp)), "lfw": lfw(), "lfw_noise": lfw_noise()}
    out["wall_s"], out["cpu_s"] = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["child_cpu_s"] = round(child.ru_utime + child.ru_stime, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "low_light.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "low_light.md").write_text(markdown(out))
    print(markdown(out))
    return 0


def _table(rows: dict, keys: tuple[str, ...]) -> list[str]:
    lines = ["| version | faces | frames named per person | worst ratio to normal | wrong names "
             "| named where normal had no person |", "|---|---|---|---|---|---|"]
    for k in keys:
        r = rows[k]
        lines.append(f"| {k} | {r['faces']} | {json.dumps(r['frames_named_per_person'])} | {r.get('worst_ratio', 1.0)} "
                     f"| {r['wrong_names']} | {r['named_where_normal_had_no_person']} |")
    return lines


def markdown(out: dict) -> str:
    s = out["street_720p"]
    f = s["facestream"]
    lines = ["# Low light (bench/bench_low_light.py)", "",
             f"Street clip (facenet-pytorch examples/video.mp4) scaled to 1280x720, {s['frames']} frames, darkened by "
             f"ffmpeg `{DARKEN}`. {s['people']} people taken from the normal version (its faces linked into tracks, "
             "tracks joined by mean embedding, 5 best faces of each enrolled into a gallery file); a frame counts "
             "for a person when a face at that person's place in the normal version (IoU > 0.3) carries that "
             "person's name; a wrong name is any other person's name there. Nothing was tuned on this clip.", "",
             "**Through facestream** (`facestream run CLIP --out DIR`, default config, that gallery; names read "
             "from the sink's results.jsonl, i.e. per track: every frame of an identified track carries the name):",
             "", *_table(f, ("normal", "dark")), "",
             f"Wall time per run: normal {f['normal']['wall_s']} s, dark {f['dark']['wall_s']} s (2 shared cores).",
             "", f"**Per-frame matcher without tracking** (every face named on its own: top-3 mean cosine >= "
             f"{DEFAULT_THRESHOLD}; same detection, with and without the dark-frame enhancement):", "",
             *_table(s["per_frame"], ("normal", "dark", "dark_no_enhancement"))]
    p = s["plain_hog_up1_every_5th"]
    lines += ["", f"Plain dlib HOG upsample 1, whole frame, every {PLAIN_STEP}th frame ({p['frames']} frames): "
              f"{p['normal']} faces normal, {p['dark']} dark, {p['dark_enhanced']} dark with the enhancement "
              "(and its lower threshold).", "",
              "face_recognition: " + ("installed but not measured here." if find_spec("face_recognition") else
                                      "not installed in the venv (it builds dlib from source); not measured."), "",
              ("LFW (10 people, 1 normal photo enrolled, 9 probes each; darkened in numpy, seed 0). These are the photos "
              "the dark-frame choices were calibrated on, so this table is calibration data, not a held-out result:"), "",
              "| probes | found | identified | wrong name |", "|---|---|---|---|"]
    for k, r in out["lfw"].items():
        lines.append(f"| {k} | {r['found']:.3f} | {r['identified']:.3f} | {r['wrong_name']:.3f} |")
    lines += ["", f"LFW noise (calibration of the embedder's dark chip and the scheduler's uncertain re-check; each "
              f"probe darkened with {NOISE_DRAWS} noise draws, at full and half size):", "",
              "| size | probes | chip | genuine | best impostor | identified (1 draw) | score sd, 1 draw "
              f"| genuine, mean of {NOISE_DRAWS} draws | identified from the mean of 1 / 3 / {NOISE_DRAWS} draws |",
              "|---|---|---|---|---|---|---|---|---|"]
    for size, r in out["lfw_noise"].items():
        for chip in ("raw", "enhanced"):
            c = r[chip]
            extra = (f"{r['score_sd_one_draw']} | {r['genuine_mean_of_all_draws']} | "
                     + " / ".join(str(v) for v in r["identified_from_mean_of"].values()) if chip == "enhanced"
                     else " | | ")
            lines.append(f"| {size[5:]} | {r['probes']} | {chip} | {c['genuine']} | {c['best_impostor']} "
                         f"| {c['identified']} | {extra} |")
    lines += ["", f"CPU {out['cpu_s']} s (this process; its children, ffmpeg and facestream's processes, "
              f"{out['child_cpu_s']} s), wall {out['wall_s']} s (2 shared cores).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
