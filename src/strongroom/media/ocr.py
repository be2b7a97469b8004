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
        clock.SetVariable("tessedit_char_whitelist", "0123456789-/.: ")
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
    clock_line: Box | None = None
    # The clock may be unreadable on one frame (a digit mid-change): a second pass tries more.
    for tries in (frames[:1], frames[1:3]):
        for line in lines:
            if any(read_clock(clock_api, g, _grow(g, line)) for _, g in tries):
                clock_line = line
                break
        if clock_line is not None:
            break
    if clock_line is not None:
        for t, g in frames:
            parsed = read_clock(clock_api, g, _grow(g, clock_line))
            if parsed is not None:
                found.clocks.append((t, parsed[0], parsed[1]))
        found.clock_box = clock_line
    step = max(1, len(frames) // LABEL_READS)
    sample = [g for _, g in frames[::step][:LABEL_READS]]
    kept: list[tuple[Box, str]] = []
    for line in (b for b in lines if b != clock_line):
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
        found.label_box = (min(b[0] for b, _ in kept), min(b[1] for b, _ in kept),
                           max(b[2] for b, _ in kept), max(b[3] for b, _ in kept))
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


def find_lines(grays: list[Gray]) -> list[Box]:
    """Text lines that stay in place across the frames, top to bottom."""
    import numpy as np

    sample = grays if len(grays) <= 5 else [grays[i * (len(grays) - 1) // 4] for i in range(5)]
    h, w = sample[0].shape
    votes = np.zeros((h, w), np.uint8)
    for g in sample:
        if g.shape == (h, w):
            votes += _text_mask(g)
    need = max(2, -(-len(sample) * 3 // 5)) if len(sample) > 1 else 1
    static = votes >= need
    band = int(h * BAND)
    static[band:h - band] = False
    lines: list[Box] = []
    rows = static.sum(axis=1) >= 2
    for y0, y1 in _runs(rows, max_gap=2):
        th = y1 - y0
        if not (h * 0.012 <= th <= h * 0.1):
            continue
        cols = static[y0:y1].any(axis=0)
        for x0, x1 in _runs(cols, max_gap=int(th * 1.5)):
            if x1 - x0 >= 2 * th:
                lines.append((x0, y0, x1, y1))
    return lines


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


def _prepare(g: Gray, box: Box, *, boost: bool = False) -> Any:
    """Dark-on-light, scaled so the text is ~24 px tall (tesseract's sweet spot: no slower
    upscaling of text that is already big enough), with a white margin. `boost`: a retry,
    larger and thresholded."""
    from PIL import Image, ImageOps

    x0, y0, x1, y1 = box
    crop = g[y0:y1, x0:x1]
    img = Image.fromarray(crop)
    if crop.mean() < 128:  # light text on dark: tesseract wants dark on light
        img = ImageOps.invert(img)
    # crops have a 1/3-line margin; never below 2×: full-size clock digits misread at 1×
    scale = min(4.0, max(2.0, 24 / (0.6 * max(1, y1 - y0))))
    if boost:
        scale = min(6.0, scale * 1.5)
    if scale > 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.BICUBIC)
    if boost:
        img = img.point(lambda v: 255 if v > 140 else 0)
    return ImageOps.expand(img, border=10, fill=255)


def _read(api: Any, g: Gray, box: Box) -> str:
    api.SetImage(_prepare(g, box))
    return str(api.GetUTF8Text()).strip()


def read_clock(api: Any, g: Gray, box: Box) -> tuple[datetime, str] | None:
    """Read and parse a clock; when the plain crop does not parse (compression noise, a
    digit mid-change), try once more thresholded and larger."""
    parsed = parse_clock(_read(api, g, box))
    if parsed is None:
        api.SetImage(_prepare(g, box, boost=True))
        parsed = parse_clock(str(api.GetUTF8Text()).strip())
    return parsed


def _read_conf(api: Any, g: Gray, box: Box) -> tuple[str, float]:
    text = _read(api, g, box)
    return text, float(api.MeanTextConf())
