"""Issue #15's "Proven on this machine", end to end with real processes: a real PostgreSQL gallery (empty) and a
real nats-server -js on loopback, two inference shards as separate `facestream stage` process sets (two looped
demo cameras pinned to each), one sink publishing its events to JetStream.

1. The same stranger (the demo face) on cameras of both shards gets one global unknown id on every camera.
2. NATS is SIGKILLed; while it is down she is enrolled through the CLI against the shared gallery: both shards
   name her (time from the CLI's exit to the first named result per shard is printed and bounded); after 10 s the
   server restarts on the same port and store and every event id the sink stored is in the stream exactly once.
3. Shard a's inference is SIGKILLed: its cameras stop and its preprocess counts their frames as dropped, shard b's
   cameras keep their rate, and a restarted inference resumes shard a's cameras (naming her from the gallery).
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from tests.support.scaling import SHARDS, Topology, demo_cameras, enrol, write_enrolment_photo

from .integrations.nats_support import NatsServer, needs_nats, read_stream, stream_count

pytestmark = [pytest.mark.slow, needs_nats]
NAME = "Ada"
NAMED_WITHIN_S = 5.0  # the goal is 2 s; this bound holds on a loaded 2-core CI machine
OUTAGE_S = 10.0


def rate(topo: Topology, stream: str, seconds: float) -> float:
    """Results per second of ``stream`` over the last ``seconds``."""
    now = time.time()
    return sum(1 for t, _ in topo.tail.poll().by_stream.get(stream, []) if t >= now - seconds) / seconds


def test_two_shards_share_gallery_and_unknown_ids_events_survive_nats_and_a_dead_shard(
        tmp_path, postgres_url, dlib_store):
    nats_srv = NatsServer(tmp_path).start()
    cams = demo_cameras(per_shard=2, max_fps=5)
    topo = Topology(tmp_path, cams, postgres_url, nats_srv.url, str(dlib_store.root))
    every = [c["id"] for c in cams]
    try:
        topo.start_all()
        # 1. one unknown id for her on all four cameras, across both shards
        topo.wait(lambda: all(any(i.startswith("unknown#") for i in topo.tail.poll().identities(s)) for s in every),
                  150, "all four cameras to track her as an unknown person")
        settled = time.time()
        topo.wait(lambda: min(len(topo.tail.poll().identities(s, settled)) for s in every) >= 5, 60,
                  "five more identities per camera")
        seen = {s: Counter(topo.tail.identities(s)) for s in every}  # every result since the start
        ids = {i for c in seen.values() for i in c}
        assert len(ids) == 1 and next(iter(ids)).startswith("unknown#"), seen
        print(f"one unknown id on every camera: {ids.pop()} ({seen})")

        # 2. NATS down for 10 s; meanwhile she is enrolled on the shared gallery and named on both shards
        events_before = len(topo.events())
        nats_srv.stop(signal.SIGKILL)
        killed = time.monotonic()
        enrolled = enrol(postgres_url, NAME, write_enrolment_photo(tmp_path / "ada.png"), topo.env)
        topo.wait(lambda: all(topo.tail.poll().first_named(s, NAME, enrolled) for s in every), 30,
                  f"all four cameras to name {NAME}")
        latency = {k: min(topo.tail.first_named(s, NAME, enrolled) for s in topo.mine[k]) - enrolled for k in SHARDS}
        print("time from `gallery add` exiting to the first named result: "
              + ", ".join(f"shard {k} {v:.2f} s" for k, v in latency.items()))
        assert max(latency.values()) <= NAMED_WITHIN_S, latency
        time.sleep(max(0.0, killed + OUTAGE_S - time.monotonic()))
        during = len(topo.events()) - events_before
        assert during >= len(every), f"only {during} events while NATS was down"  # an identity change per camera
        nats_srv.start()  # same port, same store
        print(f"NATS down {time.monotonic() - killed:.1f} s; {during} events stored by the sink meanwhile")

        # 3. shard a's inference dies: its frames are dropped, shard b is unaffected, a restart resumes it
        b_before = {s: rate(topo, s, 5.0) for s in topo.mine["b"]}
        dropped_before = topo.metric("a", "preprocess", "facestream_frames_dropped_total", stage="preprocess")
        topo.kill_stage("a", "inference")
        time.sleep(3.0)  # what was in flight lands
        at_kill = {s: topo.tail.poll().count(s) for s in every}
        time.sleep(6.0)
        later = {s: topo.tail.poll().count(s) for s in every}
        for s in topo.mine["a"]:
            assert later[s] == at_kill[s], (s, at_kill, later)
        b_after = {s: rate(topo, s, 6.0) for s in topo.mine["b"]}
        print(f"shard b results/s per camera before the kill {b_before}, after {b_after}")
        for s in topo.mine["b"]:
            assert b_after[s] >= 0.5 * b_before[s] and later[s] > at_kill[s], (s, b_before, b_after)
        dropped = topo.metric("a", "preprocess", "facestream_frames_dropped_total", stage="preprocess")
        assert dropped > dropped_before, (dropped_before, dropped)
        restarted = time.time()
        topo.launch("a", "inference")
        topo.wait(lambda: all(topo.tail.poll().first_named(s, NAME, restarted) for s in topo.mine["a"]), 90,
                  "shard a's cameras to resume (naming her) after its inference restarted")
        assert topo.procs["sink-sink"].poll() is None, topo.logs()

        # every event the sink stored is in the stream exactly once
        topo.stop_shards()
        time.sleep(4.0)  # the sink ends the stopped streams' tracks (more events)
        topo.wait(lambda: stream_count(nats_srv.url) == len(topo.events()) > 0, 30,
                  "the stream to catch up with the sink's events")
        stored = [e["event_id"] for e in topo.events()]
        got, total = read_stream(nats_srv.url)
        assert total == len(stored) == len(set(stored))
        assert Counter(s.msg_id for s in got) == Counter(stored)
        assert not (topo.out / "dead_letter").exists()
    finally:
        topo.stop()
        nats_srv.stop(signal.SIGKILL)
