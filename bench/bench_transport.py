"""Frame hops between two processes: facestream's encodings side by side with imagezmq, in one run.

    python bench/bench_transport.py [--frames 300] [--runs 3]

Two spawned processes; random frame content (not zeros); frames/s at the receiver after warm-up and the
receiver's CPU ms per frame. facestream hops go through the real wire encoder/decoder and payload codecs
(``pipeline.wire`` + ``pipeline.codec``); imagezmq (the peer operators use for this job, if installed:
``pip install imagezmq``) uses its REQ/REP ``send_image``. Writes bench/results/transport.md and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SIZES = {"1080p": (1080, 1920), "720p": (720, 1280)}


def _frames(shape: tuple[int, int], n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def _sender(method: str, endpoint: str, shape: tuple[int, int], total: int) -> None:
    import zmq

    frames = _frames(shape)
    if method == "imagezmq":
        import imagezmq

        s = imagezmq.ImageSender(connect_to=endpoint)
        for i in range(total):
            s.send_image("cam", frames[i % len(frames)])
    else:
        from facestream.pipeline.codec import PayloadEncoder
        from facestream.pipeline.wire import MSG_FRAME, Item, Message, encode

        enc = PayloadEncoder({"shm": "shm", "jpeg": "jpeg"}.get(method.split("-")[0], "raw"), 90, "bench", 16)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, 8)
        sock.connect(endpoint)
        for i in range(total):
            it = Item("cam", i, time.time_ns(), time.monotonic_ns())
            enc.attach(it, frames[i % len(frames)], wait=True)
            sock.send_multipart(encode(Message(MSG_FRAME, [it], "bench")), copy=False)
        time.sleep(0.5)
        enc.close()
        sock.close()
        ctx.term()


def _receive(method: str, endpoint: str, shape: tuple[int, int], total: int, warm: int) -> dict:
    import zmq

    ctx = zmq.Context()
    if method == "imagezmq":
        import imagezmq

        hub = imagezmq.ImageHub(open_port=endpoint)
        recv = lambda: hub.recv_image()[1]  # noqa: E731
        ack = hub.send_reply
    else:
        from facestream.pipeline.codec import PayloadDecoder
        from facestream.pipeline.wire import decode

        sock = ctx.socket(zmq.PULL)
        sock.setsockopt(zmq.RCVHWM, 8)
        sock.bind(endpoint)
        dec = PayloadDecoder()

        def recv():
            msg = decode(sock.recv_multipart(copy=False))
            return dec.array(msg.items[0])

        ack = lambda: None  # noqa: E731
    proc = mp.get_context("spawn").Process(target=_sender, args=(method, endpoint.replace("*", "127.0.0.1"), shape,
                                                                     total))
    proc.start()
    checksum = 0
    for _ in range(warm):
        checksum += int(recv()[0, 0, 0])
        ack()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(total - warm):
        a = recv()
        checksum += int(a[-1, -1, -1])
        ack()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    proc.join(30)
    ctx.destroy(0)
    n = total - warm
    return {"fps": n / wall, "gbps": n * shape[0] * shape[1] * 3 / wall / 1e9, "recv_cpu_ms": cpu / n * 1000,
            "checksum": checksum}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fs-bench-")
    methods = {
        "facestream shm ring + ZeroMQ header (ipc)": ("shm", lambda i: f"ipc://{tmp}/h{i}.ipc", args.frames),
        "facestream raw ZeroMQ payload (ipc)": ("raw", lambda i: f"ipc://{tmp}/h{i}.ipc", args.frames),
        "facestream raw ZeroMQ payload (tcp 127.0.0.1)": ("raw-tcp", lambda i: f"tcp://127.0.0.1:{47000 + i}",
                                                          args.frames),
        "facestream JPEG q90 (encode+decode counted)": ("jpeg", lambda i: f"ipc://{tmp}/h{i}.ipc", 60),
    }
    try:
        import imagezmq  # noqa: F401

        methods["imagezmq REQ/REP send_image (tcp)"] = ("imagezmq", lambda i: f"tcp://*:{48000 + i}", args.frames)
    except ImportError:
        print("imagezmq not installed (pip install imagezmq): peer column skipped")
    results: dict[str, dict[str, dict]] = {}
    k = 0
    for label, (method, ep, total) in methods.items():
        for size, shape in SIZES.items():
            runs = []
            for _ in range(args.runs):
                k += 1
                runs.append(_receive(method, ep(k), shape, total, warm=min(30, total // 5)))
            fps = [r["fps"] for r in runs]
            results.setdefault(label, {})[size] = {
                "fps_median": statistics.median(fps), "fps_min": min(fps), "fps_max": max(fps),
                "gbps": statistics.median(r["gbps"] for r in runs),
                "recv_cpu_ms": statistics.median(r["recv_cpu_ms"] for r in runs),
            }
            print(f"{label:48s} {size:6s} {statistics.median(fps):8.0f} fps [{min(fps):.0f}-{max(fps):.0f}]", flush=True)
    lines = [f"# Frame hops between two processes ({os.cpu_count()} CPUs, {args.runs} runs, median [min-max])", "",
             "| method | 1080p fps | 1080p GB/s | 720p fps | 720p GB/s | receiver CPU ms/frame (1080p) |",
             "|---|---|---|---|---|---|"]
    for label, r in results.items():
        a, b = r["1080p"], r["720p"]
        lines.append(f"| {label} | {a['fps_median']:.0f} [{a['fps_min']:.0f}-{a['fps_max']:.0f}] | {a['gbps']:.2f} | "
                     f"{b['fps_median']:.0f} [{b['fps_min']:.0f}-{b['fps_max']:.0f}] | {b['gbps']:.2f} | "
                     f"{a['recv_cpu_ms']:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transport.json").write_text(json.dumps(results, indent=2))
    (out / "transport.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
