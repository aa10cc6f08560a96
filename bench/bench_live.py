"""Live capacity: N real RTSP cameras (the 720p street video, looped) into ``facestream run`` with its DEFAULT
config; then face_recognition's usual loop on the same feeds.

    python bench/bench_live.py [--cameras 1,2,4] [--seconds 30] [--warmup 15]

Cameras: one GStreamer RTSP server per camera on loopback (tests/support/rtsp_server.py, mode ``file``) sending
the street video's own H.264 (scaled to 1280x720 and encoded once with a keyframe a second, ``-g 25``, then
concatenated without re-encoding): the servers cost almost no CPU. Per camera, over ``--seconds`` after
``--warmup``: results/s, capture-to-result latency p50/p99 (results.jsonl ``latency_ms``), faces per result;
drops by reason (the stages' Prometheus counters) and the peak RSS of all the run's processes together
(sum of /proc RSS, sampled every 0.5 s). Then, not concurrently (it would take the same CPU), the peer: one
thread per camera reading the newest frame from the same kind of feed and running face_recognition's
``face_locations(rgb, 1, "hog")`` + ``face_encodings`` (dlib directly when face_recognition is not installed).
Writes bench/results/live.md and .json. A full default run (1,2,4 x 30 s) takes about 8 minutes.

On a GPU box the script runs unchanged: with the gpu extra installed (`pip install '.[gpu]'`), the default
``inference.backend: auto`` takes TensorRT, and the report's "Backends" line, read from the inference stage's
``facestream_engine_backend_info``, says which backend each model ran on. Prebuild the engines first
(`facestream models import-dlib && facestream engines build --all`) so the warm-up does not include a build;
``--cameras 1,2,4,8`` for the larger box.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from support.rtsp import SERVER_SCRIPT, SYSTEM_PYTHON, free_port, missing_reason  # noqa: E402

VIDEO = REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "examples" / "video.mp4"
STAGES = ("capture", "preprocess", "inference", "sink")


def feed_file(loops: int = 60) -> Path:
    """The street video at 720p, keyframe every 25 frames, repeated ``loops`` times (4.2 s each)."""
    tmp = Path(tempfile.gettempdir())
    once, looped = tmp / "facestream-street720.mp4", tmp / f"facestream-street720-x{loops}.mp4"
    if not once.exists():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(VIDEO), "-vf", "scale=1280:720", "-an",
                        "-c:v", "libx264", "-g", "25", str(once)], check=True)
    if not looped.exists():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(once),
                        "-c", "copy", str(looped)], check=True)
    return looped


def start_cameras(n: int, video: Path) -> list[tuple[subprocess.Popen, str]]:
    cams = []
    for _ in range(n):
        port = free_port()
        proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(port), "--mode", "file",
                                 "--file", str(video)], stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert proc.stdout is not None
        if not proc.stdout.readline().startswith("READY"):
            raise RuntimeError("RTSP server did not start")
        cams.append((proc, f"rtsp://127.0.0.1:{port}/test"))
    return cams


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def tree_rss_mb(root: int) -> float:
    """RSS of a process and all its descendants, MiB."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError):
            pass
    return total / 2**20


def drops(run_dir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for st in STAGES:
        try:
            text = urllib.request.urlopen((run_dir / f"metrics-{st}.url").read_text().strip(), timeout=5).read().decode()
        except (OSError, ValueError):
            continue
        for line in text.splitlines():
            if line.startswith("facestream_frames_dropped_total{"):
                reason = re.search(r'reason="([^"]*)"', line)
                key = f"{st}:{reason.group(1) if reason else '?'}"
                out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def backends(run_dir: Path) -> dict[str, str]:
    """Model -> the backend inference chose (``facestream_engine_backend_info``): onnxruntime here, tensorrt on a
    GPU box with the gpu extra. The report names it, so a table says what it was measured on."""
    try:
        text = urllib.request.urlopen((run_dir / "metrics-inference.url").read_text().strip(), timeout=5).read().decode()
    except (OSError, ValueError):
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("facestream_engine_backend_info{") and line.rstrip().endswith(" 1.0"):
            model, backend = re.search(r'model="([^"]*)"', line), re.search(r'backend="([^"]*)"', line)
            if model and backend:
                out[model.group(1)] = backend.group(1)
    return out


def facestream_live(urls: list[str], warmup: float, seconds: float, overrides: list[str] = ()) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-live-"))
    run_dir, out = tmp / "run", tmp / "out"
    cfg = {"sources": [{"id": f"cam{i}", "uri": u} for i, u in enumerate(urls)],
           "transport": {"run_dir": str(run_dir)}, "sink": {"out_dir": str(out)},
           "metrics": {"ports": dict.fromkeys(STAGES, 0)}, "inference": {"gallery": str(tmp / "gallery.db")}}
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    log = open(tmp / "log.txt", "wb")  # noqa: SIM115
    sets = [a for o in overrides for a in ("--set", o)]
    proc = subprocess.Popen([sys.executable, "-m", "facestream.pipeline.cli", "run", str(tmp / "c.yaml"), *sets], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    peak, t0 = 0.0, time.time()
    try:
        while time.time() - t0 < warmup + seconds:
            peak = max(peak, tree_rss_mb(proc.pid))
            if proc.poll() is not None:
                raise RuntimeError(f"facestream run exited with {proc.returncode}; see {tmp / 'log.txt'}")
            time.sleep(0.5)
        dropped = drops(run_dir)
        engines = backends(run_dir)
    finally:
        stop([proc])
    lo, hi = (t0 + warmup) * 1e9, (t0 + warmup + seconds) * 1e9
    per: dict[str, dict] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        done = r["capture_wall_ns"] + r["latency_ms"] * 1e6
        if lo <= done < hi:
            d = per.setdefault(r["stream"], {"lat": [], "faces": 0})
            d["lat"].append(r["latency_ms"])
            d["faces"] += len(r["faces"])
    cams = {}
    for s, d in sorted(per.items()):
        lat = np.array(d["lat"])
        cams[s] = {"results_per_s": round(len(lat) / seconds, 2), "p50_ms": round(float(np.percentile(lat, 50)), 1),
                   "p99_ms": round(float(np.percentile(lat, 99)), 1), "faces_per_frame": round(d["faces"] / len(lat), 3)}
    return {"cameras": cams, "peak_rss_mb": round(peak, 1), "drops": dropped, "backends": engines,
            "log": str(tmp / "log.txt")}


def _peer_fns():
    try:
        sys.path.insert(0, str(REPO / "bench"))
        from bench_pipeline import _face_recognition

        fr = _face_recognition()
        return (lambda rgb: fr.face_locations(rgb, number_of_times_to_upsample=1, model="hog"),
                lambda rgb, boxes: fr.face_encodings(rgb, boxes), "face_recognition")
    except ImportError:
        import dlib

        det = dlib.get_frontal_face_detector()
        return lambda rgb: list(det(rgb, 1)), lambda rgb, boxes: None, "dlib HOG (face_recognition not installed)"


def peer_live(urls: list[str], warmup: float, seconds: float) -> dict:
    """One thread per feed: newest frame -> HOG upsample 1 -> encodings, as fast as it goes."""
    locate, encode, name = _peer_fns()
    stats = {u: [0, 0] for u in urls}
    stop_at = time.time() + warmup + seconds

    def run(url: str) -> None:
        cap = cv2.VideoCapture(url)
        latest: list = [None]

        def reader() -> None:
            while time.time() < stop_at:
                ok, f = cap.read()
                if ok:
                    latest[0] = f
        threading.Thread(target=reader, daemon=True).start()
        while time.time() < stop_at:
            f, latest[0] = latest[0], None
            if f is None:
                time.sleep(0.005)
                continue
            rgb = cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
            boxes = locate(rgb)
            encode(rgb, boxes)
            if time.time() > stop_at - seconds:
                stats[url][0] += 1
                stats[url][1] += len(boxes)

    threads = [threading.Thread(target=run, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"loop": name, "cameras": {f"cam{i}": {"fps": round(stats[u][0] / seconds, 2),
                                                 "faces_per_frame": round(stats[u][1] / max(1, stats[u][0]), 3)}
                                      for i, u in enumerate(urls)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for an A/B run (facestream run --set); the report then is not the defaults'")
    ap.add_argument("--note", default="", help="a line for the report (e.g. 'machine shared with other jobs')")
    args = ap.parse_args()
    reason = missing_reason()
    if reason:
        sys.exit(f"bench_live: {reason}")
    video = feed_file()
    rows = []
    for n in (int(x) for x in args.cameras.split(",")):
        cams = start_cameras(n, video)
        try:
            urls = [u for _, u in cams]
            row = {"n": n, "facestream": facestream_live(urls, args.warmup, args.seconds, args.set)}
        finally:
            stop([p for p, _ in cams])
        if not args.no_peer:
            cams = start_cameras(n, video)
            try:
                row["peer"] = peer_live([u for _, u in cams], min(args.warmup, 5.0), args.seconds)
            finally:
                stop([p for p, _ in cams])
        print(json.dumps(row), flush=True)
        rows.append(row)
    write(rows, args)


def write(rows: list[dict], args: argparse.Namespace) -> None:
    res = REPO / "bench" / "results"
    (res / "live.json").write_text(json.dumps({"seconds": args.seconds, "warmup": args.warmup, "note": args.note,
                                               "overrides": args.set, "rows": rows}, indent=1))
    lines = ["# Live: 720p25 RTSP cameras into `facestream run` (default config)", "",
             f"`python bench/bench_live.py --cameras {args.cameras} --seconds {args.seconds:g}`: per camera, "
             f"{args.seconds:g} s after {args.warmup:g} s warm-up. Latency = capture to result. RSS = all the "
             "run's processes together, peak. Peer = face_recognition's loop on the same feeds, run after "
             "facestream (not at the same time).", ""]
    if args.note:
        lines += [f"**Note:** {args.note}", ""]
    if args.set:
        lines += ["**Not the defaults:** " + ", ".join(f"`{o}`" for o in args.set), ""]
    loops = {r["peer"]["loop"] for r in rows if r.get("peer")}
    if loops:
        lines += ["Peer loop: " + ", ".join(sorted(loops)) + " (without face_recognition the peer skips the "
                  "encodings, so its fps is higher than face_recognition's own)", ""]
    engines = {k: v for r in rows for k, v in r["facestream"].get("backends", {}).items()}
    if engines:
        lines += ["Backends: " + ", ".join(f"{k} on {v}" for k, v in sorted(engines.items())), ""]
    lines += ["| cameras | camera | results/s | p50 ms | p99 ms | faces/frame | peer fps | peer faces/frame |"
              " peak RSS MiB | drops |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fs, peer = r["facestream"], r.get("peer", {}).get("cameras", {})
        drops = ", ".join(f"{k} {v:g}" for k, v in fs["drops"].items() if v) or "0"
        for cam, c in fs["cameras"].items():
            p = peer.get(cam, {})
            lines.append(f"| {r['n']} | {cam} | {c['results_per_s']} | {c['p50_ms']} | {c['p99_ms']} | "
                         f"{c['faces_per_frame']} | {p.get('fps', '–')} | {p.get('faces_per_frame', '–')} | "
                         f"{fs['peak_rss_mb']} | {drops} |")
    (res / "live.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
