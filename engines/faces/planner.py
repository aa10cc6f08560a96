"""Where to look for faces in the next frame of one stream, so the expensive fine pyramid levels run only
where a face can be.

Each frame the fine detector (HOG upsampled once, the same as face_recognition's default) runs on:

1. **tracks**: every face found in the last ``track_keep`` frames, shifted by its velocity, grown by a margin;
2. **scan**: one item of a rolling scan over the whole frame: ``tiles_x`` x ``tiles_y`` overlapping tiles at
   full resolution and the whole frame at ``coarse_scale`` (faces larger than the tile overlap). The item
   searched next is the one that waited longest, weighted up by the motion inside it (grey frame difference
   on a small frame) and by the faces seen inside it lately (a fixed camera sees faces where people walk:
   on the street video three of 24 cells of the frame hold 90 % of the faces), so new faces are found
   sooner; every item waits at most ``scan_bound`` frames, so a face elsewhere is still found within it.
3. optionally (``motion``) every motion blob; off by default: on the street video (crowd, swaying camera)
   the blobs covered 1.3 frames' area per frame, dearer than the whole frame.

A full-frame pass replaces all of these on a stream's first frame and on a scene cut (the small frame's grey
histogram moved by more than ``scene_cut``). The bound: a face that appears anywhere and stays is found
within ``scan_bound`` frames (2 x 25 = 50 frames: 5 s at 10 processed frames/s, usually far sooner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .detector import Detection
from .regions import Box, grow, iou, merge


@dataclass
class PlannerConfig:
    tiles_x: int = 6
    tiles_y: int = 4
    tile_overlap: int = 96  # source pixels shared by neighbouring tiles: faces up to about this size fit one
    coarse_scale: float = 0.5  # the schedule's last item: the whole frame at this scale
    motion: bool = False  # also run the fine detector on every motion blob (street video: 1.3 frames/frame)
    motion_width: int = 320  # the grey frame motion is measured on
    motion_threshold: int = 18  # grey-level change that counts as motion
    motion_pad: int = 40  # source pixels added around each motion blob
    motion_min_pixels: int = 4  # blobs smaller than this (in small-frame pixels) are noise
    track_grow: float = 0.6  # fraction of a tracked face's side added on each side
    track_window: float = 40.0  # source pixels the detector's window covers at scale 1 (80 px / 2^upsample)
    track_keep: int = 8  # frames a face that was not found again is still searched for
    # A followed face is accepted in its own region at this much under the detector's score threshold, as
    # long as it scored over the threshold within the last ``track_keep`` frames (hysteresis, as ByteTrack
    # keeps low-score boxes that continue a track): a face turning or blurring for a few frames stays found,
    # and a weak box elsewhere never starts a face. In the detector's score units; 0 = off. The pipeline's
    # value comes from the detector's spec (HogSpec.track_margin 0.4, in HOG's SVM score units).
    track_margin: float = 0.0
    motion_weight: float = 20.0  # how much motion inside a scan item moves it up the queue
    # How much the faces seen inside a scan item lately (relative to the item where most were seen) move it
    # up the queue. Large on purpose: items where faces were seen come first, the rest at the bound. On the
    # street video 40 and 1000 gave the same recall (0.76 vs 0.66 without, one frame in 4 processed).
    prior_weight: float = 40.0
    prior_half_life: float = 250.0  # processed frames after which a face seen counts half (~a minute live)
    # A cut (another scene, a camera switched): Bhattacharyya distance between the grey histograms of this
    # and the last small frame. Ordinary motion, even a second apart, stays under 0.06 on the street video;
    # cuts to unrelated images measured 0.24-0.38. (A fraction-of-pixels-changed test fired on ordinary
    # crowd motion once frames were a few apart, and its whole-frame passes then made them further apart.)
    scene_cut: float = 0.15

    @property
    def schedule_length(self) -> int:
        return self.tiles_x * self.tiles_y + (1 if self.coarse_scale > 0 else 0)

    @property
    def scan_bound(self) -> int:
        """Frames within which every scan item is searched at least once."""
        return 2 * self.schedule_length


@dataclass
class Plan:
    regions: list[Box]
    scales: list[float]
    full: bool = False
    pixels: dict[str, int] = field(default_factory=dict)  # crop pixels per reason (tracks/motion/scan/full)
    followed: int = 0  # the first this many regions are followed faces (searched at the track margin)


@dataclass
class _Track:
    box: tuple[float, float, float, float]
    vx: float = 0.0
    vy: float = 0.0
    missed: int = 0
    weak: int = 0  # frames since the face last scored over the detector's threshold

    def predicted(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return x1 + self.vx, y1 + self.vy, x2 + self.vx, y2 + self.vy


def tile_grid(width: int, height: int, nx: int, ny: int, overlap: int) -> list[Box]:
    """nx x ny tiles covering the frame, neighbours sharing ``overlap`` pixels, row by row."""

    def cuts(size: int, n: int) -> list[tuple[int, int]]:
        step = (size - overlap) / n if n > 1 else size
        return [(int(round(i * step)), size if i == n - 1 else int(round(i * step + step + overlap)))
                for i in range(n)]

    return [(x1, y1, x2, y2) for y1, y2 in cuts(height, ny) for x1, x2 in cuts(width, nx)]


class DetectionPlanner:
    """Per-stream state: the previous small grey frame, the faces being followed, the scan position."""

    def __init__(self, cfg: PlannerConfig | None = None):
        self.cfg = cfg or PlannerConfig()
        self._grey: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self._tracks: list[_Track] = []
        self._scan: list[tuple[Box, float]] = []  # the rolling scan's items: (box, scale)
        self._age: list[int] = []  # frames since each item was last searched
        self._seen: np.ndarray = np.zeros(0)  # faces seen inside each item lately (decayed counts)

    def _small_grey(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        sw = min(w, self.cfg.motion_width)
        small = cv2.resize(frame, (sw, max(1, round(h * sw / w))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small

    def _motion(self, grey: np.ndarray, w: int, h: int) -> tuple[list[Box], float, np.ndarray]:
        """(motion blob boxes when ``motion`` is on, fraction of the small frame changed, dilated motion mask)"""
        assert self._grey is not None
        mask = cv2.absdiff(grey, self._grey) > self.cfg.motion_threshold
        changed = float(mask.mean())
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2)
        boxes: list[Box] = []
        if not self.cfg.motion:
            return boxes, changed, mask
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        k = w / grey.shape[1]
        for x, y, bw, bh, px in stats[1:n]:
            if px >= self.cfg.motion_min_pixels:
                boxes.append(grow((x * k, y * k, (x + bw) * k, (y + bh) * k), 0.0, self.cfg.motion_pad, w, h))
        return boxes, changed, mask

    def _next_scan(self, mask: np.ndarray) -> int:
        """The scan item to search now: the one that has waited longest, weighted up by the motion inside it;
        any item that has waited ``2 x schedule_length`` frames goes first (the stated bound)."""
        self._age = [a + 1 for a in self._age]
        h, w = self._shape or (1, 1)
        sy, sx = mask.shape[0] / h, mask.shape[1] / w
        bound = 2 * len(self._scan)
        top = float(self._seen.max()) if self._seen.size else 0.0
        prior = self._seen / top if top > 0 else np.zeros(len(self._scan))
        best, best_score = 0, -1.0
        for i, ((x1, y1, x2, y2), _) in enumerate(self._scan):
            if self._age[i] >= bound:
                score = 1e9 + self._age[i]
            else:
                cell = mask[int(y1 * sy): int(np.ceil(y2 * sy)), int(x1 * sx): int(np.ceil(x2 * sx))]
                score = self._age[i] * (1.0 + self.cfg.motion_weight * float(cell.mean() if cell.size else 0.0)
                                        + self.cfg.prior_weight * prior[i])
            if score > best_score:
                best, best_score = i, score
        self._age[best] = 0
        return best

    def plan(self, frame: np.ndarray) -> Plan:
        """The regions to run the fine detector on for this frame (RGB, BGR or grey: only its size and grey
        levels are used)."""
        h, w = frame.shape[:2]
        grey = self._small_grey(frame)
        if self._shape != (h, w) or self._grey is None:
            self._shape = (h, w)
            tiles = tile_grid(w, h, self.cfg.tiles_x, self.cfg.tiles_y, self.cfg.tile_overlap)
            self._scan = [(t, 1.0) for t in tiles]
            if self.cfg.coarse_scale > 0:
                self._scan.append(((0, 0, w, h), self.cfg.coarse_scale))
            self._age = [0] * len(self._scan)
            self._seen = np.zeros(len(self._scan))
            self._grey, self._tracks = grey, []
            return Plan([(0, 0, w, h)], [1.0], full=True, pixels={"full": w * h})
        motion, _, motion_cells = self._motion(grey, w, h)
        cut = _histogram_distance(grey, self._grey) > self.cfg.scene_cut
        self._grey = grey
        if cut:  # another scene: where faces were seen no longer says where they will be
            self._seen[:] = 0.0
            return Plan([(0, 0, w, h)], [1.0], full=True, pixels={"full": w * h})
        pixels: dict[str, int] = {}
        tracks = [grow(t.predicted(), self.cfg.track_grow, abs(t.vx) + abs(t.vy), w, h) for t in self._tracks]
        fine = merge(motion)
        pixels["tracks"] = sum((b[2] - b[0]) * (b[3] - b[1]) for b in tracks)
        pixels["motion"] = sum((b[2] - b[0]) * (b[3] - b[1]) for b in motion)
        # A followed face needs no finer level than makes 0.65 x its side fill the detector's window (80 px
        # after the detector's 2x upsampling): larger faces are searched on a smaller crop.
        track_scales = [min(1.0, self.cfg.track_window / (0.65 * max(1.0, t.box[2] - t.box[0])))
                        for t in self._tracks]
        regions, scales = tracks + list(fine), track_scales + [1.0] * len(fine)
        k = self._next_scan(motion_cells)
        box, scale = self._scan[k]
        regions.append(box)
        scales.append(scale)
        pixels["scan"] = int((box[2] - box[0]) * (box[3] - box[1]) * scale**2)
        return Plan(regions, scales, pixels=pixels, followed=len(tracks))

    def accept(self, detections: list[Detection], threshold: float) -> list[Detection]:
        """This frame's faces: those scoring at least ``threshold``, and weaker ones (found at the track margin)
        where a face that scored over it within ``track_keep`` frames is predicted (IoU > 0.3)."""
        recent = [t.predicted() for t in self._tracks if t.weak < self.cfg.track_keep]
        return [d for d in detections if d.score >= threshold or any(iou(d.box, b) > 0.3 for b in recent)]

    def update(self, detections: list[Detection], threshold: float | None = None) -> None:
        """Follow this frame's faces into the next: match to the faces followed so far (IoU), update velocity.
        ``threshold``: the detector's score threshold (a face under it only continues a track, see accept)."""
        self._note_seen(detections)
        old = self._tracks
        used: set[int] = set()
        new: list[_Track] = []
        for d in sorted(detections, key=lambda d: -d.score):
            best, best_iou = -1, 0.1
            for i, t in enumerate(old):
                v = iou(d.box, t.predicted())
                if i not in used and v > best_iou:
                    best, best_iou = i, v
            strong = threshold is None or d.score >= threshold
            if best < 0:
                new.append(_Track(tuple(d.box), weak=0 if strong else self.cfg.track_keep))
                continue
            used.add(best)
            t = old[best]
            cx = (d.box[0] + d.box[2] - t.box[0] - t.box[2]) / 2
            cy = (d.box[1] + d.box[3] - t.box[1] - t.box[3]) / 2
            new.append(_Track(tuple(d.box), 0.5 * t.vx + 0.5 * cx, 0.5 * t.vy + 0.5 * cy,
                              weak=0 if strong else t.weak + 1))
        for i, t in enumerate(old):
            if i not in used and t.missed < self.cfg.track_keep:
                new.append(_Track(t.predicted(), t.vx, t.vy, t.missed + 1, t.weak + 1))
        self._tracks = new

    def _note_seen(self, detections: list[Detection]) -> None:
        """Decay the per-item face counts and add this frame's faces to the items holding their centres."""
        if not self._seen.size or self.cfg.prior_weight <= 0:
            return
        self._seen *= 0.5 ** (1.0 / self.cfg.prior_half_life)
        for d in detections:
            cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            for i, ((x1, y1, x2, y2), scale) in enumerate(self._scan):
                # not the coarse whole-frame item: it holds every face, and would always be the busiest
                if scale == 1.0 and x1 <= cx < x2 and y1 <= cy < y2:
                    self._seen[i] += 1.0


def _histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two grey frames' 32-bin histograms (0 same, 1 disjoint)."""
    ha, hb = (cv2.normalize(h, h) for h in (cv2.calcHist([x], [0], None, [32], [0, 256]) for x in (a, b)))
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_BHATTACHARYYA))
