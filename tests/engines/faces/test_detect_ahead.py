"""engines/faces/detect_ahead.py: the next batch detected while the stage finishes the current one.

- frames detected ahead give the faces that detecting them in turn gives (each stream's planner still sees
  its frames in order, also when a batch grows past what was detected ahead);
- a frame detected ahead waits for the batch that holds it; one replaced while queued is discarded and
  counted, never reported;
- an error detecting ahead fails the batch that holds the frame, not another.
"""

from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.faces.detect_ahead import DetectAhead
from facestream.engines.faces.detector import HogDetector
from facestream.engines.faces.region_detector import RegionDetector


def _frames(face: np.ndarray, n: int) -> list[tuple[str, int, np.ndarray]]:
    """n frames alternating streams a and b, a face moving in each."""
    import cv2

    rng = np.random.default_rng(7)
    base = cv2.resize(rng.integers(90, 140, size=(90, 160, 3), dtype=np.uint8), (1280, 720),
                      interpolation=cv2.INTER_CUBIC)
    h, w = face.shape[:2]
    out = []
    for k in range(n):
        frame = base.copy()
        x, y = 150 + 30 * (k // 2) + 400 * (k % 2), 200 + 4 * k
        frame[y: y + h, x: x + w] = face
        out.append(("a" if k % 2 == 0 else "b", k // 2, frame))
    return out


@pytest.fixture(scope="module")
def face(astronaut) -> np.ndarray:
    import cv2

    x1, y1, x2, y2 = (int(v) for v in HogDetector(0).detect(astronaut)[0].box)
    return cv2.resize(astronaut[y1 - 30: y2 + 30, x1 - 30: x2 + 30], (110, 110), interpolation=cv2.INTER_AREA)


def _boxes(found) -> list[list[tuple]]:
    return [[d.box for d in f] for f in found]


def test_frames_detected_ahead_give_the_faces_of_detecting_in_turn(face):
    frames = _frames(face, 8)
    alone = RegionDetector(HogDetector(1), threads=1, luma=True)
    in_turn = [alone.detect(s, f) for s, _, f in frames]
    alone.close()
    assert all(len(f) == 1 for f in in_turn), [len(f) for f in in_turn]

    ahead = DetectAhead(RegionDetector(HogDetector(1), threads=2, luma=True))
    got = []
    batches = [frames[0:2], frames[2:4], frames[4:7], frames[7:8]]  # the third grows past what went ahead
    for k, batch in enumerate(batches):
        got += ahead.detect([(s, q) for s, q, _ in batch], [(s, f) for s, _, f in batch])
        if k + 1 < len(batches):
            nxt = batches[k + 1][:2]
            assert ahead.start([(s, q) for s, q, _ in nxt], [(s, f) for s, _, f in nxt])
            assert not ahead.start([(s, q) for s, q, _ in nxt], [(s, f) for s, _, f in nxt])  # one at a time
    ahead.close()
    assert _boxes(got) == _boxes(in_turn)
    assert ahead.used == 2 + 2 + 1 and ahead.discarded == 0


def test_a_frame_ahead_waits_for_its_batch_and_a_replaced_one_is_discarded(face):
    frames = _frames(face, 6)  # a0 b0 a1 b1 a2 b2
    alone = RegionDetector(HogDetector(1), threads=1, luma=True)
    b0_alone = alone.detect("b", frames[1][2])
    alone.close()
    ahead = DetectAhead(RegionDetector(HogDetector(1), threads=2, luma=True))
    ahead.detect([("a", 0)], [("a", frames[0][2])])
    assert ahead.start([("b", 0)], [("b", frames[1][2])])
    ahead.detect([("a", 1)], [("a", frames[2][2])])  # b's frame is not in this batch: it waits
    assert ahead.discarded == 0 and ahead.used == 0
    assert not ahead.start([("b", 0)], [("b", frames[1][2])])  # already detected
    assert _boxes(ahead.detect([("b", 0)], [("b", frames[1][2])])) == _boxes([b0_alone])
    assert ahead.used == 1
    assert ahead.start([("a", 2)], [("a", frames[4][2])])
    found = ahead.detect([("a", 3)], [("a", frames[4][2])])  # a's frame 2 was replaced by frame 3
    ahead.close()
    assert ahead.discarded == 1 and ahead.used == 1
    assert len(found) == 1 and len(found[0]) == 1


class _Failing:
    """A regions detector whose every call fails (a fake: what a broken model would do)."""

    def __init__(self):
        self.calls = 0

    def detect_frames(self, frames):
        self.calls += 1
        raise RuntimeError("model failed")


def test_an_error_ahead_fails_the_batch_that_holds_the_frame_only():
    regions = _Failing()
    ahead = DetectAhead(regions)  # type: ignore[arg-type]
    frame = np.zeros((8, 8, 3), np.uint8)
    assert ahead.start([("a", 1)], [("a", frame)])
    with pytest.raises(RuntimeError, match="model failed"):
        ahead.detect([("a", 1)], [("a", frame)])
    assert ahead.start([("a", 2)], [("a", frame)])
    with pytest.raises(RuntimeError, match="model failed"):  # detected now, for this batch: its own error
        ahead.detect([("b", 1)], [("b", frame)])
    assert regions.calls == 3 and ahead.discarded == 0  # a's frame 2 is detected again when its batch comes
    ahead.close()
