import numpy as np
from prometheus_client import REGISTRY

from facestream.pipeline.recognition.events import EventKind, make_event_id, make_track_ref, new_event
from facestream.pipeline.recognition.scheduler import RecognitionScheduler, SchedulerConfig

FRAME_NS = 40_000_000  # 25 fps


def unit(v):
    return np.asarray(v, np.float32) / np.linalg.norm(v)


def run_track(sched, frames, quality_at, embedding_at, key="t"):
    reasons = []
    for f in range(frames):
        ts = f * FRAME_NS
        r = sched.decide(key, confirmed=f >= 2, quality=quality_at(f), ts_ns=ts)
        reasons.append(r)
        if r is not None:
            sched.observe(key, embedding_at(f), quality_at(f), ts)
    return reasons


def test_steady_track_is_embedded_once_plus_periodic_checks():
    sched = RecognitionScheduler(SchedulerConfig(max_interval_s=2.0))
    emb = unit(np.ones(128))
    reasons = run_track(sched, 250, lambda f: 0.6, lambda f: emb)  # 10 s of video
    done = [r for r in reasons if r]
    assert done[0] == "confirmed" and reasons.index("confirmed") == 2
    assert done[1:] == ["interval"] * 4  # at 2 s, 4 s, 6 s, 8 s after the first
    assert sched.computed == 5 and sched.saved == 245


def test_better_shot_and_drift_trigger_embeddings():
    sched = RecognitionScheduler(
        SchedulerConfig(quality_margin=0.1, drift_threshold=0.3, drift_recheck_frames=2)
    )
    a, b = unit(np.eye(128)[0]), unit(np.eye(128)[1])
    quality = lambda f: 0.4 if f < 10 else 0.7  # noqa: E731 - a better view from frame 10
    embedding = lambda f: a if f < 20 else b  # noqa: E731 - the tracker switched person at frame 20
    sched.config.max_interval_s = 1.0
    reasons = run_track(sched, 40, quality, embedding)
    assert reasons[10] == "better_shot"
    assert reasons[2] == "confirmed"
    # frame 35 (interval) sees b after a: drift -> the next two frames are re-checked
    first_b = next(f for f, r in enumerate(reasons) if r and f >= 20)
    assert reasons[first_b + 1 : first_b + 3] == ["drift_recheck", "drift_recheck"]
    assert reasons[first_b + 3] is None


def test_pending_embedding_is_not_asked_twice_and_metrics_count():
    before_saved = REGISTRY.get_sample_value("facestream_embeddings_saved_total") or 0.0
    before_conf = (
        REGISTRY.get_sample_value("facestream_embeddings_computed_total", {"reason": "confirmed"}) or 0.0
    )
    sched = RecognitionScheduler()
    assert sched.decide("k", True, 0.5, 0) == "confirmed"
    assert sched.decide("k", True, 0.9, FRAME_NS) is None  # the first embedding is still in flight
    sched.cancel("k")
    assert sched.decide("k", True, 0.9, 2 * FRAME_NS) == "confirmed"
    assert sched.decide("other", False, 0.9, 0) is None  # tentative tracks are never embedded
    assert REGISTRY.get_sample_value("facestream_embeddings_saved_total") == before_saved + 2
    assert (
        REGISTRY.get_sample_value("facestream_embeddings_computed_total", {"reason": "confirmed"})
        == before_conf + 2
    )


def test_an_uncertain_decision_embeds_the_next_faces_up_to_a_budget():
    sched = RecognitionScheduler(SchedulerConfig(uncertain_margin=0.02, uncertain_frames=3))
    emb = unit(np.ones(128))

    def step(f: int, score: float) -> str | None:
        r = sched.decide("t", True, 0.5, f * FRAME_NS)
        if r is not None:
            sched.observe("t", emb, 0.5, f * FRAME_NS)
            sched.note_score("t", score, 0.92)
        return r

    assert step(0, 0.905) == "confirmed"  # 0.015 below the threshold: the answer can still change
    assert [step(f, 0.91) for f in range(1, 6)] == ["uncertain"] * 3 + [None] * 2  # the budget is 3 faces
    sched.note_score("s", 0.92, 0.92)  # a key the scheduler never scheduled (a short track): ignored
    assert sched.tracked == 1
    clear = RecognitionScheduler(SchedulerConfig(uncertain_margin=0.02, uncertain_frames=3))
    assert clear.decide("t", True, 0.5, 0) == "confirmed"
    clear.observe("t", emb, 0.5, 0)
    clear.note_score("t", 0.95, 0.92)  # clearly a match: no re-check
    assert clear.decide("t", True, 0.5, FRAME_NS) is None
    clear.note_score("t", float("-inf"), 0.92)  # an empty gallery scores -inf: nothing to re-check
    assert clear.decide("t", True, 0.5, 2 * FRAME_NS) is None


def test_event_ids_are_deterministic_and_distinct():
    ref = make_track_ref("cam1", 3, 120, 1_700_000_000_000_000_000)
    assert ref == make_track_ref("cam1", 3, 120, 1_700_000_000_000_000_000)
    assert ref != make_track_ref("cam2", 3, 120, 1_700_000_000_000_000_000)
    ids = {make_event_id(ref, k, 130) for k in EventKind}
    assert len(ids) == len(EventKind)
    e = new_event(EventKind.ENDED, "cam1", 3, ref, 200, 5, 1, dwell_seconds=3.2)
    d = e.to_dict()
    assert d["kind"] == "track_ended" and d["event_id"] == make_event_id(ref, EventKind.ENDED, 200)


def test_an_event_carries_one_identity_and_keeps_its_flat_wire_form():
    from facestream.pipeline.recognition.identity import Identity

    ref = make_track_ref("cam1", 3, 10, 5)
    who = Identity("unknown#4", unknown_id=4, score=0.42, confidence=0.8)
    e = new_event(EventKind.IDENTIFIED, "cam1", 3, ref, 12, 6, 5, who=who, previous_identity=None)
    assert (e.identity, e.name, e.unknown_id, e.score, e.confidence) == ("unknown#4", None, 4, 0.42, 0.8)
    d = e.to_dict()
    assert list(d) == ["event_id", "kind", "stream_id", "track_id", "track_ref", "seq", "ts_ns", "first_ts_ns",
                       "identity", "name", "unknown_id", "score", "confidence", "best_shot_path",
                       "previous_identity", "dwell_seconds", "best_shot_jpeg"]
    assert d["best_shot_jpeg"] is None  # only an identification with crops on carries its best shot
    assert d["kind"] == "identified" and d["identity"] == "unknown#4" and d["unknown_id"] == 4
    started = new_event(EventKind.STARTED, "cam1", 3, ref, 10, 5, 5).to_dict()
    assert started["identity"] is None and started["score"] is None
