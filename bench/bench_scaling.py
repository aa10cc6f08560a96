"""Scaling past one box (issue #15) on this machine: two inference shards, one sink, a PostgreSQL gallery and
NATS JetStream, all real processes on loopback.

    python bench/bench_scaling.py [--cycles 3] [--street-s 40] [--out bench/results]

Topology (tests/support/scaling.py, the same as tests/pipeline/test_scaling_e2e.py): shards "a" and "b", each its
own ``facestream stage capture|preprocess|inference`` processes with tcp hops, one ``facestream stage sink``
publishing its events to a throwaway ``nats-server -js``; the gallery is a throwaway PostgreSQL database, empty
at the start. Four cameras, pinned with ``shard:``: on each shard the looped demo clip (the astronaut) and the
street video (shared/data/facenet_pytorch_assets/examples/video.mp4, 105 frames, many strangers), both looped
at ``max_fps`` 5. Measured:

- time-to-named per shard: ``gallery add Ada <photo>`` from the CLI (another process) while running, from the
  CLI's exit to the first result naming her on each shard's demo camera; then ``gallery remove Ada`` and the time
  until each shard shows her as unknown again; ``--cycles`` times;
- unknown-id agreement: the two street cameras see the same video, so a face at the same frame index
  (``seq % 105``) and the same place (box IoU >= 0.5) on both is the same stranger: the fraction of tracks whose
  unknown id is also the id the other shard's camera gives that stranger (and the same per matched face);
- events the sink stored vs stored in the JetStream stream across a 10 s SIGKILL of nats-server (restarted on the
  same port and store): missing, duplicated;
- results/s per camera before and after SIGKILLing shard a's inference, shard a's preprocess drops meanwhile,
  and the time a restarted inference takes to deliver again.

Writes bench/results/scaling.md and .json; about 3-4 minutes. The machine's load average is recorded with the
numbers (other jobs may share the cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.pipeline.integrations.nats_support import NatsServer, read_stream, stream_count  # noqa: E402
from tests.support.postgres import PostgresServer, pg_bindir  # noqa: E402
from tests.support.scaling import (  # noqa: E402
    SHARDS,
    ResultsTail,
    Topology,
    enrol,
    gallery_cli,
    write_enrolment_photo,
)

STREET = REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "examples" / "video.mp4"
STREET_FRAMES = 105
NAME = "Ada"
FPS = 5


def cameras(street: Path) -> list[dict]:
    out = []
    for k in SHARDS:
        out.append({"id": f"demo_{k}", "uri": "demo", "loop": True, "policy": "latest", "max_fps": FPS, "shard": k})
        out.append({"id": f"street_{k}", "uri": str(street), "loop": True, "policy": "latest", "max_fps": FPS,
                    "shard": k})
    return out


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def rate(topo: Topology, stream: str, t0: float, t1: float) -> float:
    return sum(1 for t, _ in topo.tail.poll().by_stream.get(stream, []) if t0 <= t < t1) / (t1 - t0)


def first_unknown(tail: ResultsTail, stream: str, since: float) -> float | None:
    for t, r in tail.by_stream.get(stream, []):
        if t >= since and any(str(f.get("identity", "")).startswith("unknown#") for f in r["faces"]):
            return t
    return None


def iou(a: list[float], b: list[float]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def street_agreement(tail: ResultsTail, since: float) -> dict:
    """Same frame index + same place on both street cameras = the same stranger; do their unknown ids agree?"""
    obs: dict[str, dict[int, list]] = {}
    tracks: dict[str, dict[int, list]] = {}
    for k in SHARDS:
        s = f"street_{k}"
        obs[s], tracks[s] = defaultdict(list), defaultdict(list)
        for t, r in tail.by_stream.get(s, []):
            for f in r["faces"]:
                ident = f.get("identity")
                if t < since or not ident or f.get("track") is None:
                    continue
                o = (r["seq"] % STREET_FRAMES, f["box"], ident)
                obs[s][o[0]].append(o)
                tracks[s][f["track"]].append(o)
    pairs = same = 0
    per_dir = {}
    for k, other in (("a", "b"), ("b", "a")):
        mine, theirs = f"street_{k}", f"street_{other}"
        matched = agreed = unknown_tracks = 0
        for track_obs in tracks[mine].values():
            ident = Counter(o[2] for o in track_obs).most_common(1)[0][0]
            if not ident.startswith("unknown#"):
                continue
            unknown_tracks += 1
            there = Counter(o2[2] for fi, box, _ in track_obs for o2 in obs[theirs].get(fi, [])
                            if iou(box, o2[1]) >= 0.5)
            if not there:
                continue
            matched += 1
            agreed += ident in there
        per_dir[f"{k}->{other}"] = {"unknown_tracks": unknown_tracks, "matched_on_other_camera": matched,
                                    "same_unknown_id": agreed, "fraction": round(agreed / matched, 3) if matched else None}
    for fi, here in obs["street_a"].items():
        for _, box, ident in here:
            for _, box2, ident2 in obs["street_b"].get(fi, []):
                if iou(box, box2) >= 0.5 and ident.startswith("unknown#") and ident2.startswith("unknown#"):
                    pairs += 1
                    same += ident == ident2
    ids = {k: len({o[2] for v in obs[f"street_{k}"].values() for o in v}) for k in SHARDS}
    return {"tracks": per_dir, "matched_faces": pairs, "matched_faces_same_id": same,
            "matched_faces_fraction": round(same / pairs, 3) if pairs else None, "distinct_ids_per_camera": ids}


def run(args: argparse.Namespace, tmp: Path) -> dict:
    from facestream.engines.dlib_import import import_dlib_models
    from facestream.engines.store import ModelStore

    store = ModelStore(tmp / "models")
    import_dlib_models(store)
    pg = PostgresServer(pg_bindir()).start()
    nats = NatsServer(tmp).start()
    res: dict = {"load_at_start": load()}
    topo = Topology(tmp / "pipeline", cameras(Path(args.street)), pg.url("bench"), nats.url, str(store.root))
    every = [s["id"] for s in topo.sources]
    try:
        started = time.time()
        topo.start_all()
        topo.wait(lambda: all(topo.tail.poll().count(s) >= 3 for s in every), 180, "results of all four cameras")
        res["startup_s"] = round(time.time() - started, 1)
        street_since = time.time()
        photo = write_enrolment_photo(tmp / "ada.png")

        # time-to-named per shard after enrolment, time back to unknown after removal
        cycles = []
        for _ in range(args.cycles):
            topo.wait(lambda: all(first_unknown(topo.tail.poll(), f"demo_{k}", time.time() - 2) for k in SHARDS),
                      60, "both demo cameras to show her as unknown")
            unknown_ids = {k: sorted({i for i in topo.tail.identities(f"demo_{k}", time.time() - 2)
                                      if i.startswith("unknown#")}) for k in SHARDS}
            done = enrol(pg.url("bench"), NAME, photo, topo.env)
            topo.wait(lambda d=done: all(topo.tail.poll().first_named(f"demo_{k}", NAME, d) for k in SHARDS), 60,
                      f"both shards to name {NAME}")
            named = {k: round(topo.tail.first_named(f"demo_{k}", NAME, done) - done, 2) for k in SHARDS}
            removed = gallery_cli(pg.url("bench"), topo.env, "remove", NAME)
            topo.wait(lambda r=removed: all(first_unknown(topo.tail.poll(), f"demo_{k}", r) for k in SHARDS), 60,
                      "both shards to forget her")
            back = {k: round(first_unknown(topo.tail, f"demo_{k}", removed) - removed, 2) for k in SHARDS}
            cycles.append({"unknown_ids_before": unknown_ids, "named_after_s": named, "unknown_again_after_s": back})
            print("cycle", cycles[-1], flush=True)
        res["enrolment_cycles"] = cycles
        all_named = [v for c in cycles for v in c["named_after_s"].values()]
        res["named_after_s"] = {"median": statistics.median(all_named), "max": max(all_named),
                                "per_shard": {k: [c["named_after_s"][k] for c in cycles] for k in SHARDS}}
        res["demo_cameras_same_unknown_id"] = sum(
            c["unknown_ids_before"]["a"] == c["unknown_ids_before"]["b"] and len(c["unknown_ids_before"]["a"]) == 1
            for c in cycles)

        # NATS down for 10 s
        before = {e["event_id"] for e in topo.events()}
        nats.stop(signal.SIGKILL)
        killed = time.time()
        queued = 0.0
        while time.time() < killed + args.outage_s:
            queued = max(queued, topo.metric("sink", "sink", "facestream_integration_queued", integration="nats"))
            time.sleep(0.5)
        during = {e["event_id"] for e in topo.events()} - before
        nats.start()
        res["nats_outage"] = {"down_s": round(time.time() - killed, 1), "events_stored_by_sink_meanwhile": len(during),
                              "max_queued_in_sink": queued}
        print("nats", res["nats_outage"], flush=True)
        res["street_agreement"] = street_agreement(topo.tail.poll(), street_since)
        print("street", res["street_agreement"], flush=True)

        # kill shard a's inference
        time.sleep(2.0)
        t_kill = time.time()
        drops0 = topo.metric("a", "preprocess", "facestream_frames_dropped_total", stage="preprocess")
        topo.kill_stage("a", "inference")
        time.sleep(args.window_s + 3)
        drops1 = topo.metric("a", "preprocess", "facestream_frames_dropped_total", stage="preprocess")
        relaunch = time.time()
        topo.launch("a", "inference")
        topo.wait(lambda: all(any(t >= relaunch for t, _ in topo.tail.poll().by_stream.get(s, [])) for s in topo.mine["a"]),
                  120, "shard a to resume")
        resumed = max(min(t for t, _ in topo.tail.by_stream[s] if t >= relaunch) for s in topo.mine["a"])
        time.sleep(args.window_s)
        now = time.time()
        res["shard_kill"] = {
            "results_per_s": {s: {"before": round(rate(topo, s, t_kill - args.window_s, t_kill), 2),
                                  "after_kill": round(rate(topo, s, t_kill + 3, t_kill + 3 + args.window_s), 2),
                                  "after_restart": round(rate(topo, s, now - args.window_s, now), 2)} for s in every},
            "shard_a_preprocess_dropped_while_dead": drops1 - drops0,
            "restart_to_first_result_s": round(resumed - relaunch, 1)}
        print("kill", res["shard_kill"], flush=True)

        # every event the sink stored, in the stream exactly once?
        topo.stop_shards()
        time.sleep(4.0)
        topo.wait(lambda: stream_count(nats.url) >= len(topo.events()), 60, "the stream to catch up")
        stored = [e["event_id"] for e in topo.events()]
        got, total = read_stream(nats.url)
        on_nats = Counter(s.msg_id for s in got)
        res["events"] = {"stored_by_sink": len(stored), "in_stream": total,
                         "missing_from_stream": len(set(stored) - set(on_nats)),
                         "duplicated_in_stream": sum(1 for n in on_nats.values() if n > 1),
                         "outage_events_missing": len(during - set(on_nats)),
                         "dead_letter": (topo.out / "dead_letter").exists()}
        res["load_at_end"] = load()
        return res
    finally:
        topo.stop()
        nats.stop(signal.SIGKILL)
        pg.close()


def report(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(res, indent=2))
    ev, kill, st = res["events"], res["shard_kill"], res["street_agreement"]
    lines = [
        "# Scaling: two shards, one sink, PostgreSQL gallery, NATS JetStream",
        "",
        "`python bench/bench_scaling.py` (bench/bench_scaling.py says what is measured and how). Real processes",
        "on loopback: 2 shards x (capture, preprocess, inference), 1 sink, PostgreSQL, nats-server -js; cameras",
        f"demo_a, street_a on shard a, demo_b, street_b on shard b, all looped at max_fps {FPS}.",
        "",
        f"Load: start `{res['load_at_start']}`; end `{res['load_at_end']}` (2 cores, shared with other jobs).",
        f"Startup to results on all four cameras: {res['startup_s']} s.",
        "",
        "## Enrolment on the shared gallery while running",
        "",
        "| cycle | named on shard a (s) | named on shard b (s) | unknown again a (s) | unknown again b (s) |"
        " unknown id before (a / b) |",
        "|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(res["enrolment_cycles"], 1):
        n, b, u = c["named_after_s"], c["unknown_again_after_s"], c["unknown_ids_before"]
        lines.append(f"| {i} | {n['a']} | {n['b']} | {b['a']} | {b['b']} | {', '.join(u['a'])} / {', '.join(u['b'])} |")
    lines += [
        "",
        f"Time from `gallery add` exiting to the first named result: median {res['named_after_s']['median']} s,"
        f" max {res['named_after_s']['max']} s (the issue's goal: 2 s). The demo face had the same single unknown"
        f" id on both shards in {res['demo_cameras_same_unknown_id']} of {len(res['enrolment_cycles'])} cycles.",
        "",
        "## Unknown-id agreement across shards (street video on one camera per shard)",
        "",
        "A face at the same frame index and place (IoU >= 0.5) on both street cameras is the same stranger.",
        "",
        "| direction | unknown tracks | matched on the other camera | same unknown id | fraction |",
        "|---|---|---|---|---|",
    ]
    for d, v in st["tracks"].items():
        lines.append(f"| {d} | {v['unknown_tracks']} | {v['matched_on_other_camera']} | {v['same_unknown_id']} |"
                     f" {v['fraction']} |")
    lines += [
        "",
        f"Matched faces (both unknown): {st['matched_faces']}, same id: {st['matched_faces_same_id']}"
        f" ({st['matched_faces_fraction']}). Distinct identities per camera: {st['distinct_ids_per_camera']}.",
        "",
        f"## NATS JetStream across a {res['nats_outage']['down_s']:.0f} s outage (SIGKILL, restart on the same port and store)",
        "",
        f"Down {res['nats_outage']['down_s']} s; the sink stored {res['nats_outage']['events_stored_by_sink_meanwhile']}"
        f" events meanwhile (at most {res['nats_outage']['max_queued_in_sink']:.0f} queued). Over the whole run the sink"
        f" stored {ev['stored_by_sink']} events, the stream holds {ev['in_stream']}: {ev['missing_from_stream']}"
        f" missing ({ev['outage_events_missing']} of the outage's), {ev['duplicated_in_stream']} duplicated;"
        f" dead letters: {'yes' if ev['dead_letter'] else 'none'}.",
        "",
        "## Shard a's inference SIGKILLed, then restarted",
        "",
        "| camera | results/s before | after the kill | after the restart |",
        "|---|---|---|---|",
    ]
    for s, v in kill["results_per_s"].items():
        lines.append(f"| {s} | {v['before']} | {v['after_kill']} | {v['after_restart']} |")
    lines += [
        "",
        f"Shard a's preprocess counted {kill['shard_a_preprocess_dropped_while_dead']:.0f} dropped frames while its"
        f" inference was dead; the restarted inference delivered again after {kill['restart_to_first_result_s']} s"
        " (process start and model load included).",
        "",
    ]
    (out / "scaling.md").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3, help="enrol/remove cycles")
    ap.add_argument("--outage-s", type=float, default=10.0, help="how long nats-server stays dead")
    ap.add_argument("--window-s", type=float, default=10.0, help="rate window before/after the shard kill")
    ap.add_argument("--street", default=str(STREET), help="the street video")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    if pg_bindir() is None or not shutil.which("nats-server"):
        print("needs PostgreSQL (initdb, postgres) and nats-server on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        res = run(args, Path(tmp))
    report(res, Path(args.out))
    print((Path(args.out) / "scaling.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
