"""Demo source: a deterministic clip from astronaut() in which dlib's HOG finds the face where face_box says."""

from __future__ import annotations

import hashlib

import cv2
import dlib
from helpers import unique_id

from facestream.pipeline.sources import DemoSource, SourceConfig, open_source


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_clip_is_150_frames_640x360_and_deterministic():
    def digest() -> tuple[int, str]:
        h = hashlib.sha256()
        n = 0
        for frame in open_source(SourceConfig(id=unique_id("demo"))).frames():
            assert frame.image.shape == (360, 640, 3)
            h.update(frame.image.tobytes())
            n += 1
        return n, h.hexdigest()

    first = digest()
    assert first[0] == 150
    assert digest() == first


def test_camera_moves():
    a, b = DemoSource.render(0), DemoSource.render(40)
    assert float(cv2.absdiff(a, b).mean()) > 10
    assert DemoSource.face_box(0) != DemoSource.face_box(40)


def test_hog_finds_the_face_inside_face_box():
    detector = dlib.get_frontal_face_detector()
    for index in (0, 25, 50, 75, 100, 125, 149):
        rgb = cv2.cvtColor(DemoSource.render(index), cv2.COLOR_BGR2RGB)
        found = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(rgb, 0)]
        truth = DemoSource.face_box(index)
        assert found, f"no face found in demo frame {index}"
        assert max(_iou(box, truth) for box in found) > 0.5, (index, found, truth)
        # And nothing else in the frame is taken for a face.
        assert all(_iou(box, truth) > 0.3 for box in found), (index, found, truth)


def test_loop_and_max_frames():
    source = open_source(SourceConfig(id=unique_id("demo-loop"), loop=True, max_frames=160))
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(160))
    assert (frames[150].image == frames[0].image).all()
