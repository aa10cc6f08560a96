import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.matcher import Matcher, calibrate_threshold
from facestream.pipeline.recognition.unknowns import UnknownClusters, list_unknowns, parse_unknown_id, promote


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def identity(seed: int, dim: int = 128) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=dim))


def sample(center: np.ndarray, noise: float, seed: int) -> np.ndarray:
    return unit(center + noise * np.random.default_rng(seed).normal(size=center.shape) / np.sqrt(len(center)))


def test_open_set_matching_names_members_and_refuses_strangers(gallery):
    people = {f"p{i}": identity(i) for i in range(5)}
    for name, c in people.items():
        gallery.enrol(name, [EnrolItem(sample(c, 0.3, 100 + k), 0.9) for k in range(3)])
    m = Matcher(gallery.snapshot(), threshold=0.8, top_k=2)
    probes = np.stack([sample(c, 0.3, 999) for c in people.values()])
    results = m.match_many(probes)
    assert [r.name for r in results] == list(people)
    assert all(r.margin > 0.3 for r in results)
    stranger = m.match(identity(77))
    assert stranger.name is None and stranger.candidate is not None and stranger.score < 0.8


def test_top_k_mean_uses_the_k_best_embeddings(gallery):
    c = identity(1)
    gallery.enrol("a", [EnrolItem(c, 1.0), EnrolItem(-c, 0.1)])  # one good, one terrible embedding
    snap = gallery.snapshot()
    np.testing.assert_allclose(Matcher(snap, top_k=1).person_scores(c[None])[0, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(Matcher(snap, top_k=2).person_scores(c[None])[0, 0], 0.0, atol=1e-6)


def test_negative_feedback_blocks_the_track_and_lookalikes(gallery):
    a, b = identity(1), identity(2)
    gallery.enrol("A", [EnrolItem(a, 0.9)])
    gallery.enrol("B", [EnrolItem(unit(0.6 * a + 0.8 * b), 0.9)])
    probe = sample(a, 0.2, 5)  # really A-like; we pretend the operator says the track is not A
    assert Matcher(gallery.snapshot(), threshold=0.5).match(probe, ref="trk-1").name == "A"
    gallery.record_sighting("evt-1", "trk-1", "cam", 1, probe, name="A", score=0.9)
    gallery.reject("trk-1", "A")
    m = Matcher(gallery.snapshot(), threshold=0.5)
    assert m.match(probe, ref="trk-1").name == "B"  # the rejected track: A is off the table
    assert m.match(sample(a, 0.05, 6), ref="trk-2").name == "B"  # a lookalike of the rejected face
    assert m.match(b, ref="trk-3").name == "B"
    assert Matcher(gallery.snapshot(), threshold=0.9).match(probe, ref="trk-1").name is None


def test_empty_gallery_is_all_unknown(gallery):
    results = Matcher(gallery.snapshot()).match_many(np.stack([identity(1), identity(2)]))
    assert [r.name for r in results] == [None, None]


def test_calibrate_threshold_meets_far_target():
    impostors = np.random.default_rng(0).uniform(0, 1, 10_000)
    t = calibrate_threshold(impostors, 0.01)
    assert (impostors >= t).mean() <= 0.01
    assert (impostors >= t - 0.002).mean() > 0.009


def test_unknown_clusters_persist_count_and_promote(gallery, gallery_at):
    x, y = identity(10), identity(11)
    clusters = UnknownClusters(gallery, join_threshold=0.8)
    ids = [
        clusters.assign(sample(c, 0.3, s), 0.5 + s / 100, ts_ns=s).unknown_id
        for s, c in enumerate([x, y, x, x, y])
    ]
    assert ids[0] == ids[2] == ids[3] and ids[1] == ids[4] and ids[0] != ids[1]
    clusters.assign(sample(x, 0.3, 50), 0.9, ts_ns=9, new_sighting=False)
    reopened = UnknownClusters(Gallery(gallery_at), join_threshold=0.8)
    assert {c.unknown_id: c.seen for c in reopened.clusters.values()} == {ids[0]: 3, ids[1]: 2}
    assert reopened.nearest(x)[0] == ids[0]
    gallery.record_sighting("e1", "t1", "cam", 5, x, unknown_id=ids[0])
    gallery.record_sighting("e2", "t2", "cam", 6, x, unknown_id=ids[0])
    rows = {r["id"]: r for r in list_unknowns(gallery, since_ns=0)}
    assert rows[ids[0]]["seen_today"] == 2 and rows[ids[0]]["label"] == f"unknown#{ids[0]}"
    v0 = gallery.version()
    assert promote(gallery, parse_unknown_id(f"unknown#{ids[0]}"), "Xavier") == 4
    assert gallery.version() > v0
    assert gallery.names() == ["Xavier"]
    assert Matcher(gallery.snapshot(), threshold=0.8).match(sample(x, 0.3, 77)).name == "Xavier"
    with pytest.raises(FacestreamError, match="no unknown#"):
        promote(gallery, ids[0], "Again")
    clusters.reload()
    fresh = clusters.assign(identity(12), 0.5, ts_ns=10)
    assert fresh.unknown_id > max(ids)  # ids are never reused


def test_parse_unknown_id_rejects_garbage():
    assert parse_unknown_id("#7") == parse_unknown_id("7") == parse_unknown_id("Unknown#7") == 7
    with pytest.raises(FacestreamError):
        parse_unknown_id("bob")
