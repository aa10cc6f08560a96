"""End to end on the 1080p street video: facestream's four-process pipeline vs face_recognition's per-frame loop.

    python bench/bench_pipeline.py [--video PATH]

Peer: the `face_recognition` library's usual loop (``pip install --no-deps face_recognition``): every frame,
HOG detection (upsample 1) and a 128-d embedding of every face, on frames scaled to 1280x720 (what
facestream's default preprocess makes of a 1080p source) and at 1080p. facestream: ``facestream run`` on the
same file with its DEFAULT config (lossless, every frame; region planner, HOG upsample 1, min_face 32).
Faces are compared at equal minimum size: the peer's faces smaller than facestream's ``min_face`` (in
720p pixels) are counted apart. Same machine, same run. Reports frames/s next to faces found, tracks,
identity changes, and embeddings computed vs frames x faces. Writes bench/results/pipeline.md and .json.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "examples" / "video.mp4"


def _face_recognition():
    """Import face_recognition; its models package needs pkg_resources, which new setuptools dropped."""
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")
            shim.resource_filename = lambda pkg, name: str(importlib.resources.files(pkg) / name)
            sys.modules["pkg_resources"] = shim
    import face_recognition

    return face_recognition


MIN_FACE = 32  # facestream's default HogSpec.min_face, in detector (720p) pixels


def peer_loop(video: str, scale_to: tuple[int, int] | None) -> dict:
    fr = _face_recognition()
    cap = cv2.VideoCapture(video)
    frames = faces = small = 0
    t0 = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if scale_to:
            bgr = cv2.resize(bgr, scale_to, interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = fr.face_locations(rgb, number_of_times_to_upsample=1, model="hog")
        fr.face_encodings(rgb, boxes)
        frames += 1
        faces += len(boxes)
        k = 720 / rgb.shape[0]  # sizes in 720p pixels, as facestream's min_face is
        small += sum(1 for top, right, bottom, left in boxes if min(right - left, bottom - top) * k < MIN_FACE)
    wall = time.perf_counter() - t0
    return {"frames": frames, "faces": faces, "faces_at_min_face": faces - small, "embeddings": faces,
            "wall_s": wall, "fps": frames / wall}


def facestream_run(video: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-pipe-"))
    cfg = {
        "sources": [{"id": "street", "uri": video}],
        "transport": {"run_dir": str(tmp / "run")},
        "inference": {"gallery": str(tmp / "gallery.db")},  # everything else: the defaults
        "sink": {"out_dir": str(tmp / "out")},
        "metrics": {"ports": {"capture": 0, "preprocess": 0, "inference": 0, "sink": 0}},
    }
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "run", str(tmp / "c.yaml")], cwd=REPO,
                       capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"facestream run failed:\n{r.stderr[-3000:]}")
    results = [json.loads(x) for x in (tmp / "out" / "results.jsonl").read_text().splitlines()]
    events = [json.loads(x) for p in (tmp / "out" / "events").glob("*.jsonl") for x in p.read_text().splitlines()]
    first = min(x["capture_wall_ns"] for x in results)
    last = max(x["stages"]["sink"][1] for x in results)
    faces = sum(len(x["faces"]) for x in results)
    return {
        "frames": len(results), "faces": faces, "faces_at_min_face": faces,
        "embeddings": sum(1 for x in results for f in x["faces"] if f.get("embedded")),
        "tracks": len({f["track"] for x in results for f in x["faces"] if "track" in f}),
        "identity_changes": sum(1 for e in events if e["kind"] == "identity_changed"),
        "wall_s_including_start": wall,
        "stream_s": (last - first) / 1e9,
        "fps": len(results) / ((last - first) / 1e9),
        "median_latency_ms": sorted(x["latency_ms"] for x in results)[len(results) // 2],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(VIDEO))
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    if not Path(args.video).exists():
        print(f"bench_pipeline: video {args.video} not found (../shared/data absent); nothing measured")
        return 0
    fs = facestream_run(args.video)
    print("facestream:", json.dumps(fs), flush=True)
    peer_720 = peer_loop(args.video, (1280, 720))
    print("face_recognition 1280x720:", json.dumps(peer_720), flush=True)
    peer_1080 = peer_loop(args.video, None)
    print("face_recognition 1080p:", json.dumps(peer_1080), flush=True)
    rows = [
        ("facestream defaults (4 processes, 720p, region planner, per-track embeddings)", fs),
        ("face_recognition loop, frames scaled to 1280x720", peer_720),
        ("face_recognition loop, 1080p", peer_1080),
    ]
    md = [f"# End to end on `{Path(args.video).name}` (1080p, {fs['frames']} frames), {os.cpu_count()} CPUs", "",
          f"| pipeline | frames/s | faces/frame (>= {MIN_FACE} px at 720p) | faces, all sizes | embeddings computed "
          "| embeddings / faces | tracks |",
          "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        ratio = r["embeddings"] / r["faces"] if r["faces"] else 0
        md.append(f"| {name} | {r['fps']:.2f} | {r['faces_at_min_face'] / max(1, r['frames']):.2f} | {r['faces']} "
                  f"| {r['embeddings']} | {ratio:.0%} | {r.get('tracks', '-')} |")
    md += ["", f"facestream: {fs['identity_changes']} identity changes, median capture-to-result latency "
           f"{fs['median_latency_ms']:.0f} ms (lossless file: frames queue while the detector works); "
           f"frames/s measured from first capture to last result ({fs['stream_s']:.1f} s), process start-up "
           f"excluded ({fs['wall_s_including_start']:.1f} s with it)."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(dict(rows), indent=2))
    (out / "pipeline.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
