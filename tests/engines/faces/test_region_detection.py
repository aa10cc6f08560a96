"""The region planner (engines/faces/planner.py) and the region detector: the default detection mode.

- a face that appears anywhere in a still scene is found within the planner's stated bound;
- a followed face keeps being found while it moves;
- on dlib's labelled group photos (testing.xml) the default mode keeps HOG's precision (>= 0.95).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestream.engines.faces.detector import Detection, HogDetector
from facestream.engines.faces.labelled import read_imglab, score_labelled
from facestream.engines.faces.planner import DetectionPlanner, PlannerConfig, tile_grid
from facestream.engines.faces.region_detector import RegionDetector
from facestream.engines.faces.regions import iou, merge

REPO = Path(__file__).resolve().parents[3]
TESTING = REPO.parent / "shared" / "data" / "dlib_faces_detection" / "faces" / "testing.xml"


@pytest.fixture(scope="module")
def face_crop(astronaut) -> np.ndarray:
    """The astronaut's face, downscaled to about 48 px (needs the planner's upsampled fine levels)."""
    import cv2

    box = HogDetector(0).detect(astronaut)[0].box
    x1, y1, x2, y2 = (int(v) for v in box)
    pad = (x2 - x1) // 3
    crop = astronaut[max(0, y1 - pad): y2 + pad, max(0, x1 - pad): x2 + pad]
    side = 48 * crop.shape[1] / (x2 - x1)
    return cv2.resize(crop, (int(side), int(side * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_AREA)


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(90, 140, size=(90, 160, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(base, (1280, 720), interpolation=cv2.INTER_CUBIC)


def test_tiles_cover_the_frame_with_overlap():
    tiles = tile_grid(1280, 720, 6, 4, 96)
    covered = np.zeros((720, 1280), bool)
    for x1, y1, x2, y2 in tiles:
        covered[y1:y2, x1:x2] = True
    assert covered.all() and len(tiles) == 24
    # neighbours share the overlap, so a face up to that size lies wholly inside one tile
    assert tiles[0][2] - tiles[1][0] >= 96 and tiles[0][3] - tiles[6][1] >= 96


def test_merge_joins_only_when_it_saves_pixels():
    assert merge([(0, 0, 10, 10), (5, 0, 15, 10)]) == [(0, 0, 15, 10)]
    assert sorted(merge([(0, 0, 10, 10), (9, 9, 20, 20)])) == [(0, 0, 10, 10), (9, 9, 20, 20)]


@pytest.mark.parametrize("where", [(60, 40), (600, 330), (1180, 620), (300, 600)])
def test_a_still_face_appearing_anywhere_is_found_within_the_bound(face_crop, where):
    cfg = PlannerConfig()
    det = RegionDetector(HogDetector(1), cfg, threads=1)
    scene = _scene()
    det.detect("s", scene)  # first frame: full pass, no face
    frame = scene.copy()
    x, y = where
    h, w = face_crop.shape[:2]
    frame[y: y + h, x: x + w] = face_crop
    found_at = None
    for k in range(cfg.scan_bound + 1):
        if any(iou(d.box, (x, y, x + w, y + h)) > 0.1 for d in det.detect("s", frame)):
            found_at = k
            break
    assert found_at is not None, f"face at {where} not found within {cfg.scan_bound} frames"
    assert found_at <= cfg.scan_bound


@pytest.mark.parametrize("prior_weight", [0.0, PlannerConfig().prior_weight])
def test_the_scan_returns_sooner_where_faces_were_seen_and_still_visits_everywhere(prior_weight):
    """A fixed camera sees faces where people walk: the rolling scan goes back there more often, and every
    item is still searched within the bound. Without the prior (weight 0) all items wait alike."""
    cfg = PlannerConfig(prior_weight=prior_weight, motion_weight=0.0)
    planner = DetectionPlanner(cfg)
    frame = _scene(3)
    spot = Detection((480.0, 380.0, 528.0, 428.0), 1.0)
    planner.plan(frame)
    for _ in range(cfg.schedule_length):  # a face is seen at spot for a while
        planner.plan(frame)
        planner.update([spot])
    searched = []
    for _ in range(2 * cfg.scan_bound):  # then no faces: which items does the scan search?
        searched.append(tuple(planner.plan(frame).regions[-1]))
        planner.update([])
    hot = [tuple(b) for b, scale in planner._scan if scale == 1.0 and b[0] <= 504 < b[2] and b[1] <= 404 < b[3]]
    visits = {tuple(b): searched.count(tuple(b)) for b, _ in planner._scan}
    cold = sorted(v for b, v in visits.items() if b not in hot)
    assert min(visits.values()) >= 2, "an item waited longer than the bound"
    hot_visits = min(visits[b] for b in hot)
    if prior_weight > 0:
        assert hot_visits >= 3 * cold[len(cold) // 2], (hot_visits, cold)
    else:
        assert max(visits.values()) - min(visits.values()) <= 1, visits


@pytest.mark.parametrize("luma", [False, True])
def test_a_moving_face_stays_found(face_crop, luma):
    det = RegionDetector(HogDetector(1), threads=2, luma=luma)
    scene = _scene(1)
    h, w = face_crop.shape[:2]
    hits = 0
    for k in range(20):
        frame = scene.copy()
        x, y = 200 + 12 * k, 300 + 3 * k
        frame[y: y + h, x: x + w] = face_crop
        dets = det.detect("s", frame)
        hits += any(iou(d.box, (x, y, x + w, y + h)) > 0.1 for d in dets)
    det.close()
    assert hits == 20  # first frame by the full pass, then every frame from the track region


def test_frames_of_several_streams_detected_together_equal_one_at_a_time(face_crop):
    """detect_frames runs the crops of every stream's frame on the pool at once; each stream's planner still
    sees its frames in order, so the faces are those of one frame at a time (two frames of one stream in a
    batch: the second is planned after the first)."""
    h, w = face_crop.shape[:2]
    frames = []
    for k in range(6):
        frame = _scene(3 + k % 2)
        x, y = 150 + 40 * (k // 2) + 300 * (k % 2), 200 + 5 * k
        frame[y: y + h, x: x + w] = face_crop
        frames.append(("a" if k % 2 == 0 else "b", frame))
    alone = RegionDetector(HogDetector(1), threads=1, luma=True)
    one_by_one = [alone.detect(s, f) for s, f in frames]
    together = RegionDetector(HogDetector(1), threads=2, luma=True)
    batched = together.detect_frames(frames[:2]) + together.detect_frames(frames[2:])  # the second: a, b, a, b
    alone.close()
    together.close()
    assert all(len(d) == 1 for d in one_by_one), [len(d) for d in one_by_one]
    assert [[d.box for d in f] for f in batched] == [[d.box for d in f] for f in one_by_one]
    assert together.frames == 6


def test_hog_takes_grey_frames_and_finds_the_colour_frames_faces(astronaut):
    import cv2

    colour = HogDetector(1).detect(astronaut)
    grey = HogDetector(1).detect(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    # the face (colour HOG at upsample 1 also scores a weak box on the astronaut's suit: 0.12)
    assert grey and iou(colour[0].box, grey[0].box) > 0.8, (colour, grey)
    assert all(d.score < 0.5 for d in colour[1:] + grey[1:])


def test_streams_are_planned_separately(face_crop):
    det = RegionDetector(HogDetector(1), threads=1)
    frame = _scene(2)
    frame[100:100 + face_crop.shape[0], 100:100 + face_crop.shape[1]] = face_crop
    assert len(det.detect("a", frame)) == 1
    assert len(det.detect("b", frame)) == 1  # b's first frame: a full pass of its own
    det.end_stream("a")
    assert "a" not in det._planners


@pytest.mark.skipif(not TESTING.exists(), reason=f"labelled photos not found at {TESTING}")
@pytest.mark.parametrize("luma", [True, False])  # the default (HogSpec.luma), and colour
def test_default_mode_precision_and_recall_on_labelled_photos(luma):
    import cv2

    tp = fp = n = 0
    for path, boxes in read_imglab(TESTING):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        det = RegionDetector(HogDetector(1), threads=2, luma=luma)  # each photo is a new stream's first frame
        t, f, k = score_labelled([d.box for d in det.detect("photo", rgb)], boxes)
        tp, fp, n = tp + t, fp + f, n + k
        det.close()
    precision, recall = tp / max(1, tp + fp), tp / max(1, n)
    assert precision >= 0.95, f"precision {precision:.3f} ({tp} tp, {fp} fp)"
    print(f"precision {precision:.3f} recall {recall:.3f} ({tp}/{n})")
    assert recall >= 0.6, f"recall {recall:.3f} of {n} labelled faces"


def test_score_labelled_matches_each_face_once_and_ignores_ignored_faces():
    labelled = [(0, 0, 10, 10, False), (20, 0, 30, 10, False), (40, 0, 50, 10, True)]
    found = [(0, 0, 10, 10), (1, 0, 11, 10), (40, 0, 50, 10), (60, 60, 70, 70)]
    # the first face once (its second box is a false positive), the ignored face neither way, one miss
    assert score_labelled(found, labelled) == (1, 2, 2)


def test_a_weak_box_continues_a_recent_face_but_never_starts_one():
    """The track margin (hysteresis): under the threshold a box is kept only where a face that scored over it
    within ``track_keep`` frames is predicted; elsewhere, and once the face has been weak that long, it is not."""
    cfg = PlannerConfig()
    planner = DetectionPlanner(cfg)
    frame = np.zeros((360, 640), np.uint8)
    planner.plan(frame)
    face, elsewhere = (100.0, 100.0, 160.0, 160.0), (400.0, 100.0, 460.0, 160.0)
    planner.update([Detection(face, 1.2)], threshold=0.0)
    kept = []
    for _ in range(cfg.track_keep + 3):
        planner.plan(frame)
        weak = [Detection(face, -0.3), Detection(elsewhere, -0.3)]
        found = planner.accept(weak, 0.0)
        planner.update(found, threshold=0.0)
        kept.append([d.box for d in found])
    assert all(elsewhere not in k for k in kept), "a weak box where no face was must not start one"
    assert all(k == [face] for k in kept[: cfg.track_keep]), kept
    assert all(k == [] for k in kept[cfg.track_keep:]), "weak for track_keep frames: the face is let go"


def test_the_track_margin_keeps_more_of_a_face_that_turns(face_crop):
    """On real pixels: the astronaut's face blurring more each frame (motion, focus) scores lower each frame;
    with the margin it is followed for more frames than without."""
    import cv2

    scene = _scene(5)
    h, w = face_crop.shape[:2]

    def frames():
        for k in range(16):
            frame = scene.copy()
            frame[300: 300 + h, 500: 500 + w] = cv2.GaussianBlur(face_crop, (0, 0), 0.5 + 0.1 * k)
            yield frame

    def followed(margin: float) -> int:
        det = RegionDetector(HogDetector(1), threads=1, luma=True, track_margin=margin)
        n = sum(bool(det.detect("s", f)) for f in frames())
        det.close()
        return n

    without, with_margin = followed(0.0), followed(0.4)
    print(f"blurring face followed in {without} frames without the margin, {with_margin} with it")
    assert with_margin > without, (with_margin, without)
