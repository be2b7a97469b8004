"""Finding and reading a DVR overlay with tesseract (Debian's `tesseract-ocr-rus` data).

Locating: overlay text is bright, sharp-edged, and *stays put* while the picture changes, so
pixels that are bright with strong local contrast in most of the sampled frames, in the top or
bottom quarter of the frame, are grouped into text lines. The seconds of a clock change between
samples, so each line is grown per frame over the bright pixels that continue it.

Reading: each line is cropped, inverted to dark-on-light when needed, scaled to ~24 px text
and read as a single line — clocks with a digits-and-separators whitelist (English model),
labels with Russian+English. A line whose text parses as a date-time is the clock; other
readable lines form the camera label.
"""

from __future__ import annotations

import glob
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from strongroom.errors import MediaError
from strongroom.media.overlay import normalise_label, parse_clock

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Gray = npt.NDArray[np.uint8]

BAND = 0.25  # overlays live in the top or bottom quarter
BRIGHT = 170
CONTRAST = 100
LABEL_READS = 3
#: A text stroke: brighter than this, with pixels darker by STROKE_CONTRAST within STROKE
#: pixels on both sides (strokes up to ~2×STROKE wide: 32 px DVR fonts).
STROKE = 5
STROKE_BRIGHT = 150
STROKE_CONTRAST = 90
MIN_LABEL_CONFIDENCE = 60.0

Box = tuple[int, int, int, int]  # x0, y0, x1, y1


@dataclass
class OverlayFound:
    clocks: list[tuple[float, datetime, str]] = field(default_factory=list)
    label: str | None = None
    label_reads: list[str] = field(default_factory=list)
    clock_box: Box | None = None
    label_box: Box | None = None


def tessdata() -> str:
    for path in sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True):
        if glob.glob(f"{path}/rus.traineddata"):
            return path + "/"
    raise MediaError("tesseract's Russian data is missing (Debian: apt install "
                     "tesseract-ocr tesseract-ocr-rus)")


class _Engines(threading.local):
    clock: Any = None
    label: Any = None


_ENGINES = _Engines()


def _engines() -> tuple[Any, Any]:
    """One tesseract instance per thread for clocks, one for labels (init ≈ 0.2 s each)."""
    if _ENGINES.clock is None:
        from tesserocr import OEM, PSM, PyTessBaseAPI

        path = tessdata()
        clock = PyTessBaseAPI(path=path, lang="eng", psm=PSM.SINGLE_LINE, oem=OEM.LSTM_ONLY)
        # AM/PM letters too: without them a 12-hour clock reads as a 24-hour one, 12 h off
        clock.SetVariable("tessedit_char_whitelist", "0123456789-/.: APMapm")
        label = PyTessBaseAPI(path=path, lang="rus+eng", psm=PSM.SINGLE_LINE,
                              oem=OEM.LSTM_ONLY)
        _ENGINES.clock, _ENGINES.label = clock, label
    return _ENGINES.clock, _ENGINES.label


def read_overlay(frames: list[tuple[float, Gray]]) -> OverlayFound:
    """Clock readings (video time, clock, format) and the label from greyscale frames."""
    found = OverlayFound()
    if not frames:
        return found
    clock_api, label_api = _engines()
    lines = find_lines([g for _, g in frames])
    clock: tuple[Box, ...] | None = None
    # The clock may be unreadable on one frame (a digit mid-change): a second pass tries more.
    # A clock on two lines (date above time) is a pair of lines, one below the other.
    candidates = [(line,) for line in lines] + [(a, b) for a, b in _stacked(lines)]
    engines = (clock_api, label_api)
    for tries in (frames[:1], frames[1:3]):
        clock = next((c for c in candidates
                      if any(read_clock(engines, g, c, min_digits=6) for _, g in tries)),
                     None)
        if clock is not None:
            break
    clock_lines: tuple[Box, ...] = ()
    if clock is not None:
        for t, g in frames:
            parsed = read_clock(engines, g, clock)
            if parsed is not None:
                found.clocks.append((t, parsed[0], parsed[1]))
        clock_lines = clock
        found.clock_box = _union(clock)
    step = max(1, len(frames) // LABEL_READS)
    sample = [g for _, g in frames[::step][:LABEL_READS]]
    kept: list[tuple[Box, str]] = []
    for line in (b for b in lines if b not in clock_lines):
        reads = []
        for g in sample:
            text, conf = _read_conf(label_api, g, _margin(g, line))
            text = normalise_label(text)
            if conf >= MIN_LABEL_CONFIDENCE and sum(c.isalnum() for c in text) >= 3:
                reads.append(text)
            found.label_reads.append(text)
        if reads:
            text, votes = Counter(reads).most_common(1)[0]
            # background that happens to look like letters does not read the same twice
            if votes >= min(2, len(sample)):
                kept.append((line, text))
    if kept:
        kept.sort(key=lambda k: (k[0][1], k[0][0]))
        found.label = " ".join(text for _, text in kept)
        found.label_box = _union(tuple(b for b, _ in kept))
    return found


def _text_mask(g: Gray) -> npt.NDArray[np.bool_]:
    """Bright pixels with a strong local contrast (text strokes, not bright flat areas)."""
    import numpy as np

    p = np.pad(g, 1, mode="edge")
    h, w = g.shape
    shifts = [p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    hi = np.maximum.reduce(shifts)
    lo = np.minimum.reduce(shifts)
    mask: npt.NDArray[np.bool_] = (g > BRIGHT) & ((hi.astype(np.int16) - lo) > CONTRAST)
    return mask


def _stroke_mask(g: Gray) -> npt.NDArray[np.bool_]:
    """Bright pixels inside a thin stroke: darker by `CONTRAST` within `STROKE` pixels on
    both sides, left and right or above and below. Overlay text is thin bright strokes with
    an outline, a shadow or a box around them; a fixed camera's static background (walls,
    windows, kerbs) is mostly edges, bright on one side only."""
    import numpy as np

    g16 = g.astype(np.int16)
    h, w = g.shape
    p = np.pad(g16, STROKE, mode="edge")
    darker = g16 - STROKE_CONTRAST
    sides = []
    for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        side = np.zeros((h, w), bool)
        for r in range(1, STROKE + 1):
            y, x = STROKE + dy * r, STROKE + dx * r
            side |= p[y:y + h, x:x + w] < darker
        sides.append(side)
    left, right, up, down = sides
    mask: npt.NDArray[np.bool_] = (g > STROKE_BRIGHT) & ((left & right) | (up & down))
    return mask


def find_lines(grays: list[Gray]) -> list[Box]:
    """Text lines that stay in place across the frames, top to bottom.

    Stillness alone cannot find them: on a fixed camera the whole scene is as still as the
    overlay. So only pixels inside thin bright strokes vote (`_stroke_mask`), and the bands
    are cut recursively, rows then columns (an XY cut), until each piece is one line of
    text-height: a label in one corner and a lamp post in another share rows, not a box."""
    import numpy as np

    sample = grays if len(grays) <= 5 else [grays[i * (len(grays) - 1) // 4] for i in range(5)]
    h, w = sample[0].shape
    need = max(2, -(-len(sample) * 3 // 5)) if len(sample) > 1 else 1
    band = int(h * BAND)
    lines: list[Box] = []
    # Bright high-contrast pixels first (a moving picture leaves only the overlay still),
    # then thin bright strokes (a still picture: only text is made of them).
    for mask in (_text_mask, _stroke_mask):
        votes = np.zeros((h, w), np.uint8)
        for g in sample:
            if g.shape == (h, w):
                votes += mask(g)
        static = votes >= need
        static[band:h - band] = False
        found: list[Box] = []
        _cut(static, (0, 0, w, h), h, 3 if mask is _stroke_mask else 0, found)
        lines += [b for b in found if not any(_overlap(b, o) for o in lines)]
    return sorted(lines, key=lambda b: (b[1], b[0]))


def _trim(m: Any, box: Box) -> Box:
    """A line's rows where its strokes are: a box or shadow edge makes sparse rows above or
    below the text, which tesseract would read as part of it."""
    import numpy as np

    x0, y0, x1, y1 = box
    rows = m[y0:y1, x0:x1].sum(axis=1)
    keep = np.flatnonzero(rows >= 0.2 * rows.max())
    return (x0, y0 + int(keep[0]), x1, y0 + int(keep[-1]) + 1) if len(keep) else box


def _stacked(lines: list[Box]) -> list[tuple[Box, Box]]:
    """Pairs of lines one right below the other, overlapping horizontally: a DVR that prints
    the date above the time."""
    pairs = []
    for a in lines:
        for b in lines:
            th = a[3] - a[1]
            if (b is not a and 0 <= b[1] - a[3] <= th and min(a[2], b[2]) > max(a[0], b[0])
                    and 0.6 <= (b[3] - b[1]) / max(1, th) <= 1.6):
                pairs.append((a, b))
    return pairs


def _union(boxes: tuple[Box, ...]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _overlap(a: Box, b: Box) -> bool:
    """Whether two line boxes share more than half of the smaller one's rows and columns."""
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    return (dx > 0 and dy > 0
            and dx * dy > 0.5 * min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def _cut(m: Any, box: Box, h: int, depth: int, out: list[Box]) -> None:
    x0, y0, x1, y1 = box
    rows = m[y0:y1, x0:x1].sum(axis=1) >= 2
    for a, b in _runs(rows, max_gap=2):
        a, b = a + y0, b + y0
        th = b - a
        if th < h * 0.012:
            continue
        line = th <= h * 0.1
        cols = m[a:b, x0:x1].any(axis=0)
        for c0, c1 in _runs(cols, max_gap=int(th * 1.5) if line else int(h * 0.03)):
            c0, c1 = c0 + x0, c1 + x0
            if line:
                if c1 - c0 >= 2 * th:
                    out.append(_trim(m, (c0, a, c1, b)))
            elif depth > 0 and (c0, a, c1, b) != box:
                _cut(m, (c0, a, c1, b), h, depth - 1, out)


def _runs(flags: Any, *, max_gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True, joining runs separated by at most `max_gap` False."""
    import numpy as np

    idx = np.flatnonzero(flags)
    if len(idx) == 0:
        return []
    out = []
    start = prev = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - prev > max_gap + 1:
            out.append((start, prev + 1))
            start = i
        prev = i
    out.append((start, prev + 1))
    return out


def _grow(g: Gray, line: Box) -> Box:
    """The clock line's box on this frame: its static part (date, hours, minutes) extended
    over the text pixels that continue it to the right — the seconds change between samples,
    so they are not static — by at most a few character widths, plus a margin."""
    x0, y0, x1, y1 = line
    w = g.shape[1]
    th = y1 - y0
    cols: Any = _text_mask(g[y0:y1]).any(axis=0)
    limit = min(w, x1 + 3 * th)
    gap, x = 0, x1
    while x < limit and gap <= th // 2:
        gap = 0 if cols[x] else gap + 1
        x += 1
        if gap == 0:
            x1 = x
    return _margin(g, (x0, y0, x1, y1))


def _margin(g: Gray, box: Box) -> Box:
    x0, y0, x1, y1 = box
    h, w = g.shape
    m = max(2, (y1 - y0) // 3)
    return max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)


#: How a crop is shown to tesseract, in the order they are tried: the plain crop (inverted
#: when light on dark), the thin bright strokes only (an outline, shadow, box or photograph
#: behind does not reach tesseract: what rescues a fixed camera's busy background), and the
#: plain crop larger and thresholded.
PREPARATIONS = ("plain", "strokes", "boost")


def _prepare(g: Gray, box: Box, how: str = "plain") -> Any:
    """Black glyphs on white, scaled so the text is ~24 px tall (tesseract's sweet spot: no
    slower upscaling of text that is already big enough), with a white margin."""
    import numpy as np
    from PIL import Image, ImageOps

    x0, y0, x1, y1 = box
    crop = g[y0:y1, x0:x1]
    if how == "strokes":
        img = Image.fromarray(np.where(_stroke_mask(crop), 0, 255).astype(np.uint8))
    else:
        img = Image.fromarray(crop)
        if crop.mean() < 128:  # light text on dark: tesseract wants dark on light
            img = ImageOps.invert(img)
    # crops have a 1/3-line margin; never below 2×: full-size clock digits misread at 1×
    scale = min(4.0, max(2.0, 24 / (0.6 * max(1, y1 - y0))))
    if how == "boost":
        scale = min(6.0, scale * 1.5)
    if scale > 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.BICUBIC)
    if how == "boost":
        img = img.point(lambda v: 255 if v > 140 else 0)
    return ImageOps.expand(img, border=10, fill=255)


def _read(api: Any, g: Gray, box: Box, how: str = "plain") -> str:
    api.SetImage(_prepare(g, box, how))
    return str(api.GetUTF8Text()).strip()


def read_clock(apis: tuple[Any, ...], g: Gray, lines: tuple[Box, ...], *,
               min_digits: int = 0) -> tuple[datetime, str] | None:
    """Read and parse a clock on one line or two (date above time).

    Each engine (digits only; Russian+English, which also reads month names and AM/PM in
    Cyrillic look-alikes) reads the plain crop, then its strokes, then the boosted crop,
    until two reads have parsed. At least two must parse and every read that parses must
    give the same date-time: a digit misread the same way on every frame (a 6 for an 8
    in the date) would otherwise put the whole clip at a wrong time, which is worse than no
    time. The seconds change between samples, so each line is grown on this frame.

    `min_digits`: a candidate whose first read (the first engine, plain) holds fewer digits
    is no clock, and not worth the further reads."""
    boxes = [_grow(g, line) for line in lines]
    got: list[tuple[datetime, str]] = []
    for how in PREPARATIONS:
        if len(got) >= 2:  # two agreeing reads settle it; a disagreement cannot be undone
            break
        for api in apis:
            text = " ".join(_read(api, g, box, how) for box in boxes)
            if not got and how == PREPARATIONS[0] and api is apis[0] \
                    and sum(c.isdigit() for c in text) < min_digits:
                return None
            parsed = parse_clock(text)
            if parsed is not None:
                got.append(parsed)
    if len(got) < 2 or any(p[0] != got[0][0] for p in got):
        return None
    digits_only = [p for p in got if not p[1].startswith(("DD Mon", "Mon DD"))]
    return (digits_only or got)[0]


def _read_conf(api: Any, g: Gray, box: Box) -> tuple[str, float]:
    """The plain reading, or the stroke reading when that is more confident than a plain
    one below MIN_LABEL_CONFIDENCE."""
    best = ("", -1.0)
    for how in PREPARATIONS[:2]:
        text = _read(api, g, box, how)
        conf = float(api.MeanTextConf())
        if conf > best[1]:
            best = (text, conf)
        if best[1] >= MIN_LABEL_CONFIDENCE:
            break
    return best
