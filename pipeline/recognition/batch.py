"""One engine call per batch of frames: update every frame, embed every chip asked for, complete them all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from facestream.engines.faces.vectors import EMBEDDING_SIZE

from .results import FrameResult

if TYPE_CHECKING:
    from .stream_recognizer import StreamRecognizer


def recognise_frames(
    recognizer: StreamRecognizer,
    frames: Sequence[tuple[str, int, int, Sequence[object]]],
    embed: Callable[[np.ndarray], np.ndarray],
) -> list[FrameResult]:
    """Update, embed every requested chip of every frame (and the best shots of short tracks that ended
    there) in ONE ``embed`` call, complete. Frames are ``(stream_id, seq, ts_ns, faces)``; faces need ``chip``."""
    asked = [recognizer.update(s, q, t, faces) for s, q, t, faces in frames]
    wanted = [[frames[k][3][i].chip for i in idx] + recognizer.late_chips(frames[k][0], frames[k][1])
              for k, idx in enumerate(asked)]
    chips = [c for w in wanted for c in w]
    all_emb = np.asarray(embed(np.stack(chips)), np.float32) if chips else np.zeros((0, EMBEDDING_SIZE), np.float32)
    out, start = [], 0
    for (s, q, _, _), w in zip(frames, wanted, strict=True):
        out.append((s, q, all_emb[start : start + len(w)]))
        start += len(w)
    return recognizer.complete_many(out)
