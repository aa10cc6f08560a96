"""Decoding no more of a live stream than the pipeline uses.

An H.264/H.265 camera stream with B-frames has about half its frames marked non-reference: no other frame
is predicted from them, so the decoder may skip them (FFmpeg's ``skip_frame = NONREF``) and every other
frame still decodes correctly. At two 720p25 cameras on two cores the pipeline uses about one frame in
eight; the rest were decoded and converted (0.2 core per camera) only to be dropped as stale. Skipping the
non-reference ones halves that cost.

:class:`DecodePace` decides from what the next stage did with the frames (the shared-memory ring's tally,
pipeline/shm.py): skip while fewer than ``skip_below`` of the frames it got were used, decode all again once
more than ``full_above`` of the halved stream are (it could then use more than half). A source with the
lossless policy never skips.
"""

from __future__ import annotations

# 25 fps, skipping: ~13 frames/s decoded. Used fraction < 0.4 at full rate = the pipeline takes < 10/s: it
# keeps up with the halved stream. > 0.85 of the halved stream used = it may want more: decode all again.
SKIP_BELOW = 0.4
FULL_ABOVE = 0.85
WINDOW = 50  # frames accounted for (used + dropped) before a decision


class DecodePace:
    def __init__(self, skip_below: float = SKIP_BELOW, full_above: float = FULL_ABOVE, window: int = WINDOW):
        self.skip_below, self.full_above, self.window = skip_below, full_above, window
        self.skip = False
        self._used = self._dropped = 0

    def update(self, used: int, dropped: int) -> bool:
        """Add what the next stage did with frames since the last call; True if ``skip`` changed."""
        self._used += used
        self._dropped += dropped
        seen = self._used + self._dropped
        if seen < self.window:
            return False
        fraction = self._used / seen
        self._used = self._dropped = 0
        want = fraction < self.skip_below if not self.skip else fraction <= self.full_above
        changed, self.skip = want != self.skip, want
        return changed
