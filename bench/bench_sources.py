"""Video sources: decode throughput, and how fast live sources open, recover from a restarted server and
detect a stall, against the real GStreamer RTSP test server on loopback (tests/support/rtsp_server.py).

    python bench/bench_sources.py            # ~1-2 min on 2 CPU cores
    python bench/bench_sources.py --repeats 1

Writes bench/results/sources.md and bench/results/sources.json. RTSP rows are left out (with the reason)
when Debian's python3-gi / gst-rtsp-server are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facestream.pipeline.sources import SourceConfig, open_source  # noqa: E402
from facestream.pipeline.sources.pyav_capture import pyav_available  # noqa: E402
from tests.support.rtsp import RtspServer, free_port, missing_reason  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _throughput(cfg: SourceConfig) -> tuple[int, float]:
    start = time.perf_counter()
    n = sum(1 for _ in open_source(cfg).frames())
    return n, n / (time.perf_counter() - start)


def _video(path: Path, n: int = 300) -> Path:
    from facestream.pipeline.sources.demo import DemoSource

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 360))
    for i in range(n):
        writer.write(DemoSource.render(i))
    writer.release()
    return path


class _Consumer:
    """Reads a live source on a thread and records each frame's arrival time."""

    def __init__(self, cfg: SourceConfig) -> None:
        self.source = open_source(cfg)
        self.arrivals: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in self.source.frames():
            self.arrivals.append(time.monotonic())

    def first_after(self, t: float, timeout_s: float = 20.0) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            later = [a for a in self.arrivals if a > t]
            if later:
                return later[0] - t
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self.source.close()
        self.thread.join(2)


def _live_cfg(url: str, decoder: str, **extra: object) -> SourceConfig:
    settings: dict = dict(id=f"bench-{decoder}", uri=url, decoder=decoder, open_timeout_s=5, read_timeout_s=1.0,
                          reconnect_min_s=0.25, reconnect_max_s=2.0, reconnect_jitter=0.0)
    settings.update(extra)
    return SourceConfig(**settings)


def _rtsp_rows(decoder: str, repeats: int) -> list[dict]:
    first, recover, stall = [], [], []
    for _ in range(repeats):
        server = RtspServer(free_port()).start()
        try:
            started = time.monotonic()
            run = _Consumer(_live_cfg(server.url, decoder))
            first.append(run.first_after(started))
            server.kill()
            time.sleep(1.0)  # the camera is down for a second
            restarted = time.monotonic()
            server.start()
            recover.append(run.first_after(restarted))
            run.close()
        finally:
            server.close()
        stalling = RtspServer(free_port(), mode="stall", stall_after_frames=50).start()
        try:
            run = _Consumer(_live_cfg(stalling.url, decoder))
            before = REGISTRY.get_sample_value("facestream_source_stalls_total", {"stream": f"bench-{decoder}"}) or 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                now = REGISTRY.get_sample_value("facestream_source_stalls_total", {"stream": f"bench-{decoder}"}) or 0
                if now > before and run.arrivals:
                    stall.append(time.monotonic() - run.arrivals[-1])
                    break
                time.sleep(0.005)
            run.close()
        finally:
            stalling.close()

    def med(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    return [
        {"measure": f"rtsp open to first frame ({decoder})", "seconds": med(first), "samples": first},
        {"measure": f"rtsp server restarted to first frame ({decoder}; reconnect_min_s=0.25)",
         "seconds": med(recover), "samples": recover},
        {"measure": f"rtsp stall: last frame to stall counted ({decoder}; read_timeout_s=1.0)",
         "seconds": med(stall), "samples": stall},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows: list[dict] = []
    n, fps = _throughput(SourceConfig(id="bench-demo"))
    rows.append({"measure": f"demo source, {n} frames 640x360", "frames_per_s": round(fps, 1)})
    with tempfile.TemporaryDirectory() as tmp:
        video = _video(Path(tmp) / "clip.mp4")
        n, fps = _throughput(SourceConfig(id="bench-file", uri=str(video)))
        rows.append({"measure": f"file source (mp4v 640x360), {n} frames", "frames_per_s": round(fps, 1)})
    reason = missing_reason()
    if reason:
        rows.append({"measure": "rtsp", "skipped": reason})
    else:
        for decoder in ["opencv", *(["pyav"] if pyav_available() else [])]:
            rows.extend(_rtsp_rows(decoder, args.repeats))

    header = "| measure | result |\n|---|---|"
    lines = []
    for row in rows:
        if "frames_per_s" in row:
            result = f"{row['frames_per_s']} frames/s"
        elif "seconds" in row:
            result = f"{row['seconds']} s (median of {len(row['samples'])})"
        else:
            result = f"skipped: {row['skipped']}"
        lines.append(f"| {row['measure']} | {result} |")
    table = "\n".join([header, *lines])
    print(table)
    meta = {"command": "python bench/bench_sources.py " + " ".join(sys.argv[1:]), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "opencv": cv2.__version__}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sources.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "sources.md").write_text(
        "# Video sources\n\n"
        f"Command: `{meta['command'].strip()}` on {meta['cpus']} CPU cores, OpenCV {meta['opencv']}. RTSP server: "
        "GStreamer test pattern 320x240 at 25 fps, H.264, on 127.0.0.1; the restarted server was down 1 s.\n\n"
        f"{table}\n"
    )


if __name__ == "__main__":
    main()
