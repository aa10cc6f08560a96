"""Soak benchmark: the whole pipeline on a looping video for a long time, watching memory, fds and latency.

    python bench/soak.py                      # 30 minutes on the 1080p street video (demo clip if absent)
    python bench/soak.py --duration 60        # a short run (CI runs ~40 s through tests/bench)

Every ``--sample-s`` seconds it records, per stage, resident memory (VmRSS) and open file descriptors from
/proc, plus capture-to-sink latency p50/p99 over the interval (from the sink's Prometheus histogram) and
the result rate. The run counts from the first sample with results (start-up excluded); after a warm-up
quarter it fails (exit 1) when any stage's RSS grew by more than
``--max-growth-mb`` (default 64 MiB) between the first and last quarter of the run, or fds grew by more
than 16. Writes bench/results/soak.md and soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = ("capture", "preprocess", "inference", "sink")
STREET = REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "examples" / "video.mp4"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def histogram(url: str, name: str) -> tuple[list[tuple[float, float]], float]:
    """Cumulative buckets [(le, count)] and total count of a histogram on a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=5).read().decode()
    buckets, count = [], 0.0
    for fam in text_string_to_metric_families(text):
        if fam.name != name:
            continue
        for s in fam.samples:
            if s.labels.get("stage") != "sink":
                continue
            if s.name.endswith("_bucket"):
                buckets.append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                count = s.value
    return sorted(buckets), count


def quantile(prev: list[tuple[float, float]], cur: list[tuple[float, float]], q: float) -> float | None:
    """Quantile of the observations between two cumulative bucket snapshots (upper bucket bound)."""
    p = dict(prev)
    delta = [(le, c - p.get(le, 0.0)) for le, c in cur]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return None
    for le, c in delta:
        if c >= q * total:
            return le
    return float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800 = 30 min)")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--video", default=str(STREET) if STREET.exists() else "demo")
    ap.add_argument("--fps", type=float, default=10.0, help="pace of the looping source")
    ap.add_argument("--max-growth-mb", type=float, default=64.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--name", default="soak")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fs-soak-"))
    run_dir = tmp / "run"
    cfg = {
        "sources": [{"id": "loop", "uri": args.video, "loop": True, "policy": "latest", "max_fps": args.fps}],
        "transport": {"run_dir": str(run_dir)},
        "sink": {"out_dir": str(tmp / "out"), "jsonl": False},
        "metrics": {"ports": dict.fromkeys(STAGES, 0)},
        "inference": {"gallery": str(tmp / "gallery.db")},  # full path: tracks, embeddings, unknown clustering
    }
    (tmp / "soak.yaml").write_text(yaml.safe_dump(cfg))
    log = open(tmp / "log.txt", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "facestream.pipeline.cli", "run", str(tmp / "soak.yaml")], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    samples = []
    t0 = time.monotonic()
    prev_hist: list[tuple[float, float]] = []
    prev_count = 0.0
    try:
        while time.monotonic() - t0 < args.duration:
            time.sleep(args.sample_s)
            if proc.poll() is not None:
                print(f"soak: the pipeline exited early with {proc.returncode}; see {tmp / 'log.txt'}")
                return 1
            row = {"t_s": round(time.monotonic() - t0, 1)}
            for st in STAGES:
                try:
                    pid = int((run_dir / f"{st}.pid").read_text())
                except (OSError, ValueError):
                    continue
                row[f"{st}_rss_mb"] = rss_mb(pid)
                row[f"{st}_fds"] = fd_count(pid)
            url_file = run_dir / "metrics-sink.url"
            if url_file.exists():
                try:
                    hist, count = histogram(url_file.read_text().strip(), "facestream_capture_to_stage_seconds")
                    row["p50_ms"] = (quantile(prev_hist, hist, 0.5) or 0) * 1000
                    row["p99_ms"] = (quantile(prev_hist, hist, 0.99) or 0) * 1000
                    row["results_per_s"] = round((count - prev_count) / args.sample_s, 2)
                    prev_hist, prev_count = hist, count
                except OSError:
                    pass
            samples.append(row)
            print(json.dumps(row), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    # The run counts from its first delivered results: model loading before that is start-up, not growth (on a
    # busy machine it can take a good part of a short soak).
    start = next((i for i, r in enumerate(samples) if (r.get("results_per_s") or 0) > 0), len(samples))
    running = samples[start:]
    quarter = max(1, len(running) // 4)
    first, last = running[quarter : 2 * quarter] or running[:1], running[-quarter:]
    verdict, lines = "pass", []
    if not running:
        verdict = "FAIL"
        lines.append("the pipeline delivered no results during the soak")
    table = ["| stage | RSS after warm-up (MiB) | RSS at end (MiB) | growth (MiB) | fds after warm-up | fds at end |",
             "|---|---|---|---|---|---|"]
    for st in STAGES:
        a = [r[f"{st}_rss_mb"] for r in first if r.get(f"{st}_rss_mb")]
        b = [r[f"{st}_rss_mb"] for r in last if r.get(f"{st}_rss_mb")]
        fa = [r[f"{st}_fds"] for r in first if r.get(f"{st}_fds")]
        fb = [r[f"{st}_fds"] for r in last if r.get(f"{st}_fds")]
        if not a or not b:
            continue
        growth = statistics.median(b) - statistics.median(a)
        fd_growth = (max(fb) - min(fa)) if fa and fb else 0
        if growth > args.max_growth_mb or fd_growth > 16:
            verdict = "FAIL"
            lines.append(f"{st}: RSS grew {growth:.1f} MiB, fds grew {fd_growth}")
        table.append(f"| {st} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | {growth:+.1f} | "
                     f"{min(fa) if fa else '-'} | {max(fb) if fb else '-'} |")
    p50 = [r["p50_ms"] for r in running[quarter:] if r.get("p50_ms")]
    p99 = [r["p99_ms"] for r in running[quarter:] if r.get("p99_ms")]
    rate = [r["results_per_s"] for r in running[quarter:] if "results_per_s" in r]
    summary = {
        "duration_s": args.duration, "video": args.video, "fps": args.fps, "verdict": verdict,
        "max_growth_mb": args.max_growth_mb, "problems": lines, "samples": samples,
        "latency_p50_ms_median": statistics.median(p50) if p50 else None,
        "latency_p99_ms_max": max(p99) if p99 else None,
        "results_per_s_median": statistics.median(rate) if rate else None,
    }
    md = [f"# Soak: {args.duration:.0f} s, looping `{Path(args.video).name}` at {args.fps:g} fps (live policy)", "",
          f"Verdict: **{verdict}** (bound: RSS growth <= {args.max_growth_mb:g} MiB per stage after warm-up, fds <= +16)",
          "", *table, "",
          f"Capture-to-sink latency: median of interval p50 = {summary['latency_p50_ms_median']} ms, "
          f"worst interval p99 = {summary['latency_p99_ms_max']} ms (bucket upper bounds); "
          f"results/s median {summary['results_per_s_median']}.", "",
          f"Machine: {os.cpu_count()} CPUs. Raw samples in {args.name}.json.", *lines]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(summary, indent=2))
    (out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
