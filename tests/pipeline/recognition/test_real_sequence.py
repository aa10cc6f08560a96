"""A short real-image sequence identified end to end: facestream.engines.faces -> StreamRecognizer -> events.

Two LFW people pass in front of a "camera" (their photos pasted on a moving canvas, one at a time per side);
one is enrolled from a DIFFERENT photo than those in the sequence, the other is not enrolled.
"""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
LFW = DATA / "lfw_subset_10x10"

pytestmark = [
    pytest.mark.needs_data,
    pytest.mark.skipif(not LFW.is_dir(), reason=f"real face data not found at {LFW}"),
]


def rgb(path: Path) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def test_enrolled_person_is_named_and_stranger_gets_an_anonymous_id(tmp_path, monkeypatch):
    pytest.importorskip(
        "facestream.engines.faces.analyzer", reason="facestream.engines.faces (the face API) is not in this checkout"
    )
    monkeypatch.setenv("FACESTREAM_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    from facestream.engines.faces.analyzer import FaceAnalyzer
    from facestream.pipeline.recognition.batch import recognise_frames
    from facestream.pipeline.recognition.events import EventKind
    from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
    from facestream.pipeline.recognition.stream_recognizer import RecognizerConfig, StreamRecognizer

    analyzer = FaceAnalyzer(detector="hog")
    blair = sorted((LFW / "Tony_Blair").iterdir())
    powell = sorted((LFW / "Colin_Powell").iterdir())
    enrol_face = analyzer.analyze(rgb(blair[0]))[0]
    gallery = Gallery(tmp_path / "g.db")
    gallery.enrol("Tony Blair", [EnrolItem(enrol_face.embedding, enrol_face.quality.score, "blair-0")])

    rec = StreamRecognizer(gallery, config=RecognizerConfig(n_init=2), crop_dir=tmp_path / "crops")
    left, right = rgb(blair[3]), rgb(powell[2])
    events = []
    for f in range(8):
        canvas = np.zeros((300, 700, 3), np.uint8)
        dx = 4 * f  # both walk a little to the right
        canvas[25:275, 10 + dx : 260 + dx] = left
        canvas[25:275, 400 + dx : 650 + dx] = right
        faces = analyzer.analyze(canvas, embed=False)
        assert len(faces) == 2
        for r in recognise_frames(rec, [("door", f, f * 40_000_000, faces)], analyzer.embedder.embed):
            events += r.events
    identified = {e.track_id: e for e in events if e.kind == EventKind.IDENTIFIED}
    assert len(identified) == 2
    names = sorted(e.identity for e in identified.values())
    assert names[0] == "Tony Blair" and names[1].startswith("unknown#")
    blair_event = next(e for e in identified.values() if e.name == "Tony Blair")
    assert blair_event.score > 0.9 and Path(blair_event.best_shot_path).is_file()
    assert not any(e.kind == EventKind.IDENTITY_CHANGED for e in events)
