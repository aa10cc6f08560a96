"""Small faces in a small video: the shared street clip at 640x360 through ``facestream run`` at its defaults,
with and without enlarging small frames for the detector (``preprocess.max_upscale``), next to the peer.

    python bench/bench_small_video.py

The clip: facenet-pytorch's examples/video.mp4 scaled by ffmpeg to 640x360 (105 frames; its faces are
about 18-40 px there, half their 720p size). It has no labels, so the reference is face_recognition's own
``face_locations(frame, 1, "hog")`` (dlib's HOG, upsample 1) on the 720p version of the same frames, boxes
halved: the faces that peer finds when it is given the larger video. Per run: faces per frame, recall of
the reference faces (greedy IoU >= 0.5), faces with no reference face there (extra), and the CPU time of the
whole run (all its processes, including start-up and model loading). The peer on the 360p frames: dlib's
HOG at upsample 1 (face_recognition's default) and 2 (what its users add for small faces), one process.
Nothing here is tuned: ``max_upscale: 2`` is the default because 2 x 360p is the 720p the defaults are sized
for (HOG upsample 1 then covers 20 px source faces).

Writes bench/results/small_video.md and .json.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_detection import VIDEO, match, read_rgb, street720  # noqa: E402

RESULTS = REPO / "bench" / "results"


def clip360(tmp: Path) -> Path:
    out = tmp / "street360.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(VIDEO), "-vf", "scale=640:360", "-an",
                    "-c:v", "libx264", "-crf", "18", str(out)], check=True)
    return out


def score(ref: list[list], got: list[list]) -> dict:
    hits = extra = n_ref = n_got = 0
    for r, g in zip(ref, got, strict=True):
        h, ex = match(r, g)
        hits, extra, n_ref, n_got = hits + sum(h), extra + ex, n_ref + len(r), n_got + len(g)
    return {"frames": len(ref), "faces_per_frame": round(n_got / len(ref), 3),
            "reference_faces_per_frame": round(n_ref / len(ref), 3), "recall": round(hits / max(1, n_ref), 4),
            "extra": extra}


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def facestream(clip: Path, tmp: Path, name: str, sets: list[str], frames: int) -> tuple[list[list], dict]:
    out = tmp / name
    args = [sys.executable, "-m", "facestream.pipeline.cli", "run", str(clip), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    cpu0, t0 = children_cpu(), time.time()
    subprocess.run(args, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu, wall = children_cpu() - cpu0, time.time() - t0
    boxes: list[list] = [[] for _ in range(frames)]
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["seq"] < frames:
            boxes[r["seq"]] = [tuple(f["box"]) for f in r["faces"]]
    return boxes, {"cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}


def peer(frames: list[np.ndarray], upsample: int) -> tuple[list[list], dict]:
    import dlib

    det = dlib.get_frontal_face_detector()
    t0 = time.process_time()
    boxes = [[(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in det(f, upsample)] for f in frames]
    return boxes, {"cpu_s_per_frame": round((time.process_time() - t0) / len(frames), 4)}


def main() -> int:
    if not VIDEO.is_file():
        print(f"street video not found at {VIDEO} (../shared/data is absent)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="fs-small-video-"))
    big, clip = read_rgb(street720(VIDEO)), clip360(tmp)
    small = read_rgb(clip)
    n = min(len(big), len(small))
    import dlib

    hog = dlib.get_frontal_face_detector()
    ref = [[tuple(v / 2 for v in (r.left(), r.top(), r.right() + 1, r.bottom() + 1)) for r in hog(f, 1)]
           for f in big[:n]]
    rows = []
    for name, sets in (("facestream default (max_upscale 2)", []),
                       ("facestream, max_upscale 1 (never enlarge)", ["preprocess.max_upscale=1"])):
        got, cost = facestream(clip, tmp, name.split()[1].strip(",") + str(len(rows)), sets, n)
        rows.append({"run": name, **score(ref, got), **cost})
        print(rows[-1], flush=True)
    for up in (1, 2):
        got, cost = peer(small[:n], up)
        rows.append({"run": f"peer: dlib HOG upsample {up} on the 360p frames"
                     + (" (face_recognition's default)" if up == 1 else ""), **score(ref, got), **cost})
        print(rows[-1], flush=True)
    sizes = [min(b[2] - b[0], b[3] - b[1]) for per in ref for b in per]
    out = {"clip": "street video scaled to 640x360", "frames": n, "reference": "dlib HOG upsample 1 on 720p, /2",
           "reference_face_px": {"p10": round(float(np.percentile(sizes, 10)), 1),
                                 "median": round(float(np.median(sizes)), 1),
                                 "p90": round(float(np.percentile(sizes, 90)), 1)},
           "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "small_video.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "small_video.md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    px = out["reference_face_px"]
    lines = ["# Small faces in a small video (bench/bench_small_video.py)", "",
             f"{out['clip']}, {out['frames']} frames. Reference: {out['reference']} (face side in the 360p clip: "
             f"p10 {px['p10']}, median {px['median']}, p90 {px['p90']} px). Recall: reference faces matched at "
             "IoU >= 0.5; extra: faces with no reference face there. facestream CPU: all processes of the run, "
             "start-up and model loading included.", "",
             "| run | faces/frame | reference faces/frame | recall | extra | CPU |", "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        cpu = f"{r['cpu_s']} s (wall {r['wall_s']} s)" if "cpu_s" in r else f"{r['cpu_s_per_frame']} s/frame"
        lines.append(f"| {r['run']} | {r['faces_per_frame']} | {r['reference_faces_per_frame']} | {r['recall']} | "
                     f"{r['extra']} | {cpu} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
