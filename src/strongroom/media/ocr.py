"""Finding and reading a DVR overlay: RapidOCR (PP-OCR detector and recogniser, ONNX models
shipped inside the `rapidocr-onnxruntime` wheel) for the clock, tesseract (Debian's
`tesseract-ocr-rus` data) for Cyrillic labels and as the clock's fallback.

Locating: a text detector, not stillness — on a fixed camera the walls, kerbs and lamp posts
are as still as the overlay. The detector runs on the first frame, whole at its own size and
the top and bottom quarters at 2× (small DVR fonts), and proposes text lines anywhere. The
clock is the line (or the pair of lines, date above time) whose text parses as a date-time;
only the recogniser then runs on that crop of every frame (about 25 ms a frame). A clip whose
clock the recogniser cannot read (Russian month names: its alphabet has no Cyrillic) falls back
to tesseract on the same lines and on lines made of thin bright strokes (`find_lines`).

Reading labels: the other lines in the top and bottom quarters are read by tesseract
(Russian+English) on several frames and by the recogniser; the reads are kept raw.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from strongroom.errors import MediaError
from strongroom.media.overlay import (
    AMBIGUOUS,
    date_shape,
    parse_clock,
    parse_clock_text,
    resolve_date_order,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from strongroom.media.labels import LabelRead

    Gray = npt.NDArray[np.uint8]

BAND = 0.25  # overlays live in the top or bottom quarter
#: Frames narrower or lower than this are not read at all: no overlay line fits.
MIN_FRAME_SIDE = 16
BRIGHT = 170
CONTRAST = 100
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
    engine: str | None = None  # which engine read the clock
    flags: list[str] = field(default_factory=list)  # multiple_clocks, style_changed
    other_clocks: list[list[str]] = field(default_factory=list)  # two clocks: what each said
    vetoed: list[float] = field(default_factory=list)  # times of readings dropped as unconfirmed
    label_confidence: float | None = None  # 0–1: how far the reads agreed, per character
    label_uncertain: bool = False  # kept, but a person should check it
    label_corrected: list[list[str]] = field(default_factory=list)  # [word read, vocabulary]
    date_ambiguous: bool = False  # readings dropped: day and month could be either way round
    date_shape: str | None = None  # such a clock's shape (`overlay.date_shape`)
    date_order: str | None = None  # the order the vault's other clips of that shape showed
    #: an ambiguous reading's clock both ways round, day first then month first
    date_either_way: list[str] = field(default_factory=list)


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


class _Rapid(threading.local):
    engine: Any = None


_RAPID = _Rapid()


def _rapid() -> Any:
    """One RapidOCR engine per thread, on one core (the pipeline runs a process per core);
    detector and recogniser are called separately (its own call drops reads scoring < 0.5)."""
    if _RAPID.engine is None:
        from rapidocr_onnxruntime import RapidOCR

        with _with_memory_arena():
            _RAPID.engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1,
                                     det_limit_type="max", det_limit_side_len=4000,
                                     use_cls=False)
    return _RAPID.engine


_ARENA_LOCK = threading.Lock()


@contextlib.contextmanager
def _with_memory_arena() -> Iterator[None]:
    """RapidOCR's ONNX sessions made with onnxruntime's CPU memory arena, which RapidOCR
    turns off: with it the detector runs ~25 % faster on a band (memory is reused across
    runs instead of allocated per operator), and every output is the same. Sessions are made
    by `OrtInferSession._init_sess_opts`; a RapidOCR without it is used as it comes."""
    from rapidocr_onnxruntime.utils import infer_engine

    cls = infer_engine.OrtInferSession
    plain = cls.__dict__.get("_init_sess_opts")
    if not isinstance(plain, staticmethod):
        yield
        return

    def with_arena(config: dict[str, Any]) -> Any:
        opts = plain.__func__(config)
        opts.enable_cpu_mem_arena = True
        return opts

    with _ARENA_LOCK:
        cls._init_sess_opts = staticmethod(with_arena)
        try:
            yield
        finally:
            cls._init_sess_opts = plain


#: The detector's passes: the whole frame at its size, then the top and bottom quarters at 2×
#: (a 12 px DVR font is below what it finds at 1×, and at 2× a whole frame is slow).
DETECT_PASSES = (("whole", 1.0), ("bands", 2.0))
#: The width the top and bottom quarters are enlarged to at least (3× a 352 px CIF frame).
BAND_WIDTH = 1056


def detect_lines(g: Gray, passes: tuple[tuple[str, float], ...] = DETECT_PASSES) -> list[Box]:
    """Text line boxes the detector finds on one frame, top to bottom; near-duplicates from
    the passes merged (the wider kept)."""
    boxes = [box for where, scale in passes for box in _detect_pass(g, where, scale)]
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b[0] - b[2]):
        if all(_iou(box, k) < 0.4 for k in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (b[1], b[0]))


def _detect_pass(g: Gray, where: str, scale: float) -> list[Box]:
    """One detector pass (a pass already made on this frame during this `read_overlay` is
    not made again)."""
    import cv2

    seen = _SEEN.passes if _SEEN.passes is not None else {}
    if (id(g), where, scale) in seen:
        return seen[(id(g), where, scale)]
    engine = _rapid()
    h, w = g.shape
    band = int(h * BAND)
    parts = [(0, g)] if where == "whole" else [(0, g[:band]), (h - band, g[h - band:])]
    enlarge = max(scale, BAND_WIDTH / w) if where == "bands" else scale  # a CIF frame's 7 px
    boxes: list[Box] = []
    for y_off, part in parts:
        if not part.size:
            continue
        img = cv2.cvtColor(part, cv2.COLOR_GRAY2BGR)
        if enlarge != 1.0:
            img = cv2.resize(img, None, fx=enlarge, fy=enlarge, interpolation=cv2.INTER_CUBIC)
        quads, _ = engine.text_det(img)
        for q in quads if quads is not None else []:
            x0, y0 = q[:, 0].min() / enlarge, q[:, 1].min() / enlarge
            x1, y1 = q[:, 0].max() / enlarge, q[:, 1].max() / enlarge
            pad = 0.1 * (y1 - y0)
            box = (int(max(0, x0 - pad)), int(max(0, y0 - pad)) + y_off,
                   int(min(w, x1 + pad)), int(min(part.shape[0], y1 + pad)) + y_off)
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                boxes.append(box)
    seen[(id(g), where, scale)] = boxes
    return boxes


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


class _Seen(threading.local):
    reads: dict[tuple[int, Box], tuple[str, float]] | None = None
    strokes: list[Box] | None = None  # find_lines of this read_overlay's frames
    passes: dict[tuple[int, str, float], list[Box]] | None = None  # detector boxes
    times: dict[int, float] | None = None  # the video time of each frame, by id


_SEEN = _Seen()


#: Crops lower than this are enlarged before the recogniser sees them (a 9 px CIF font).
SMALL_CROP = 24


def _upscaled(crop: Gray) -> Gray:
    import cv2

    if 0 < crop.shape[0] < SMALL_CROP:
        f = SMALL_CROP * 2 / crop.shape[0]
        return cv2.resize(crop, None, fx=f, fy=f,  # type: ignore[return-value]
                          interpolation=cv2.INTER_CUBIC)
    return crop


def recognise(g: Gray, boxes: list[Box]) -> list[tuple[str, float]]:
    """The recogniser's (text, score) for each crop of `g`, in order (a crop already read
    during this `read_overlay` is not read again)."""
    import cv2

    seen = _SEEN.reads if _SEEN.reads is not None else {}
    todo = [b for b in dict.fromkeys(boxes) if (id(g), b) not in seen]
    if todo:
        crops = [cv2.cvtColor(_upscaled(g[b[1]:b[3], b[0]:b[2]]), cv2.COLOR_GRAY2BGR)
                 for b in todo]
        res, _ = _rapid().text_rec(crops)
        for b, (text, score) in zip(todo, res, strict=True):
            seen[(id(g), b)] = (str(text), float(score))
    return [seen[(id(g), b)] for b in boxes]


def _below(a: Box, b: Box) -> bool:
    """`b` is the line right below `a` (a date above its time): centres 0.5–2 line heights
    apart, overlapping horizontally, of similar height."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    dy = (b[1] + b[3]) / 2 - (a[1] + a[3]) / 2
    return (0.4 * ha <= dy <= 2.0 * ha and min(a[2], b[2]) > max(a[0], b[0])
            and 0.5 <= hb / max(1, ha) <= 2)


def _clock_crops(g: Gray, clock: tuple[Box, ...], others: list[Box]) -> list[Box]:
    """The clock's boxes grown a little to the right (the seconds' width changes from frame to
    frame: "11" is narrower than "48"), never into the next text on the same row, and over a
    box of the row that starts inside the clock's (the detector's "2AM" of "06:30:42 AM")."""
    out = []
    for b in clock:
        th = b[3] - b[1]
        x1 = b[2] + int(0.8 * th)
        row = [o for o in others if min(o[3], b[3]) - max(o[1], b[1]) > 0.5 * th]
        for o in row:
            if b[0] < o[0] < b[2] < o[2]:
                x1 = max(x1, o[2])
        for o in row:
            if o[0] >= b[2]:
                x1 = min(x1, o[0] - 1)
        out.append((max(0, b[0] - int(0.2 * th)), b[1], min(g.shape[1], max(x1, b[2])), b[3]))
    return out


def _find_clock_rapid(g: Gray, lines: list[Box]) -> tuple[Box, ...] | None:
    """The line, or the pair of lines (date above time), whose recognised text parses."""
    clocks = _clocks_rapid(g, lines)
    return clocks[0][0] if clocks else None


def _clocks_rapid(g: Gray, lines: list[Box]
                  ) -> list[tuple[tuple[Box, ...], tuple[datetime, str]]]:
    """Every line, or else every pair of lines (date above time), whose recognised text
    parses, with what it says: a recorder that stamps two clocks shows two."""
    texts = recognise(g, lines)
    out: list[tuple[tuple[Box, ...], tuple[datetime, str]]] = []
    for box, (text, _score) in zip(lines, texts, strict=True):
        parsed = parse_clock_text(text) or _with_tesseract_half(g, (box,), text, Counter())
        if parsed is not None:
            out.append(((box,), parsed))
    if out:
        return out
    for (a, (ta, _)), (b, (tb, _)) in itertools.permutations(zip(lines, texts, strict=True), 2):
        if not _below(a, b):
            continue
        text = ta + " " + tb
        parsed = parse_clock_text(text) or _with_tesseract_half(g, (a, b), text, Counter())
        if parsed is not None:
            out.append(((a, b), parsed))
    return out


def _with_tesseract_half(g: Gray, clock: tuple[Box, ...], text: str, votes: Counter[str]
                         ) -> tuple[datetime, str] | None:
    """`text` parsed with the AM/PM tesseract reads in the clock (`_halves`, added to
    `votes`), when the recogniser's did not read ("RM") and tesseract read one half of the
    day twice and never the other; else None."""
    from strongroom.media.overlay import half_unread, with_half

    if not half_unread(text):
        return None
    if _decided_half(votes) is None:
        votes.update(_halves(g, clock))
    half = _decided_half(votes)
    return parse_clock_text(with_half(text, half)) if half is not None else None


def _decided_half(votes: Counter[str]) -> str | None:
    """The half of the day tesseract read at least twice and the other never, or None."""
    return next(iter(votes)) if sum(votes.values()) >= 2 and len(votes) == 1 else None


def _tick(dense: list[tuple[float, Gray]], reader: Callable[[Gray], datetime | None],
          first: tuple[float, datetime, str], box: Box) -> list[tuple[float, datetime, str]]:
    """Two readings on consecutive frames either side of the clock's first tick after
    `first`, among `dense` (every frame of the first second or so): they pin where in its
    second the clock is to one frame, so that the partial seconds at a clip's ends are placed
    right too. The tick is where the clock's pixels (`box`) change most from the first frame
    (in any second of video the clock ticks exactly once); the recogniser then confirms the
    frames either side read `first` and one second later, or nothing is added: a misread
    never moves the tick."""
    import numpy as np

    seq = sorted((f for f in dense if first[0] < f[0] <= first[0] + 1.0), key=lambda f: f[0])
    start = next((g for t, g in dense if abs(t - first[0]) < 1e-6), None)
    if not seq or start is None:
        return []
    x0, y0, x1, y1 = box
    ref = start[y0:y1, x0:x1].astype(np.int16)
    change = [float(np.abs(g[y0:y1, x0:x1].astype(np.int16) - ref).mean()) for _, g in seq]
    lo, hi = min(change), max(change)
    after = first[1] + timedelta(seconds=1)
    # None: every frame changed alike (or the box is empty): the pixels cannot tell
    k = next((i for i, c in enumerate(change) if c > (lo + hi) / 2), None)
    if k is not None and hi - lo >= 2.0 and reader(seq[k][1]) == after and (
            k == 0 or reader(seq[k - 1][1]) == first[1]):
        before = first if k == 0 else (seq[k - 1][0], first[1], first[2])
        return [before, (seq[k][0], after, first[2])]
    # the pixels did not tell (noise, a figure behind the clock): bisect by reading
    last = reader(seq[-1][1])
    if last == first[1]:  # the tick falls after the last frame: that still bounds it
        return [(seq[-1][0], first[1], first[2])]
    if last != after:
        return []
    a, b = -1, len(seq) - 1  # seq[a] shows `first` (a = -1: `first` itself), seq[b] one later
    while b - a > 1:
        mid = (a + b) // 2
        value = reader(seq[mid][1])
        if value == first[1]:
            a = mid
        elif value == after:
            b = mid
        else:
            return []
    before = first if a < 0 else (seq[a][0], first[1], first[2])
    return [before, (seq[b][0], after, first[2])]


def _confirm_jumps(frames: list[tuple[float, Gray]], clock: tuple[Box, ...],
                   found: OverlayFound) -> None:
    """Readings that put the clock on another offset than most of the clip's (a recorder
    set back, or one digit misread the same way on several frames: "03:28:31" for
    "03:26:31") stand only if tesseract reads the same on one of their frames; otherwise
    they are dropped and the clip flagged `jump_unconfirmed`. Readings back on the main
    readings' offset, after some that left it, are the main clock again: they stand as
    those do (tesseract may read nothing there, or misread a frame alike: "20:47:16" for
    20:47:18 on a keyframe, in both engines)."""
    import statistics

    from strongroom.media.overlay import SAME_CLOCK_S, ClockReading, offset_groups, offset_of

    groups = offset_groups([ClockReading(*c) for c in found.clocks])
    if len(groups) < 2:
        return
    main = max(groups, key=len)
    at = statistics.median(offset_of(r) for r in main)
    engines = _engines()
    by_t = dict(frames)
    for group in groups:
        if group is main or abs(
                statistics.median(offset_of(r) for r in group) - at) <= SAME_CLOCK_S:
            continue
        probe = next((r for r in group if r.t in by_t), None)
        seen = read_clock(engines, by_t[probe.t], clock) if probe is not None else None
        if probe is None or seen is None or seen[0] != probe.clock:
            if probe is not None and _one_digit_apart(main, probe):
                # "13:50:41" against "13:58:37" on most frames (a bitmap font's 0 and 8):
                # the readings of most frames are no likelier right than the others
                found.vetoed += sorted(c[0] for c in found.clocks)
                found.clocks = []
                found.flags.append("digits_disagree")
                return
            drop = {(r.t, r.clock) for r in group}
            found.clocks = [c for c in found.clocks if (c[0], c[1]) not in drop]
            found.vetoed += sorted(t for t, _ in drop)  # frames that read otherwise
            if "jump_unconfirmed" not in found.flags:
                found.flags.append("jump_unconfirmed")


#: Digits OCR reads for one another on a clock (a bitmap 0 with a dot in it is an 8).
_LOOKALIKE_DIGITS = [set(p) for p in ("08", "38", "68", "98", "56", "06", "09", "17", "49")]


def _one_digit_apart(main: list[Any], other: Any) -> bool:
    """Whether `other` (a reading) differs from what the `main` group's readings put the
    clock at, at its video time, in one digit only, one that OCR reads for the other
    (`_LOOKALIKE_DIGITS`), and the main readings' date, hour or minute hold one of those two
    digits: the clip shows OCR confusing them, so that digits that never change in the clip
    may be misread on every frame ("13:58:37" for 13:50:37, its seconds' 40 read "48")."""
    near = min(main, key=lambda r: abs(r.t - other.t))
    expected = near.clock + timedelta(seconds=round(other.t - near.t))
    a, b = (x.strftime("%Y%m%d%H%M%S") for x in (expected, other.clock))
    apart = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return (len(apart) == 1 and set(apart[0]) in _LOOKALIKE_DIGITS
            and bool(set(apart[0]) & set(near.clock.strftime("%Y%m%d%H%M"))))


#: A clock line lower than this (pixels, as boxed) is read by the recogniser alone only if
#: it is confirmed (`_confirm_small`): digits 6–7 px tall misread the same way on every
#: frame ("14-09-2020 02:27:05" for 14-03-2020 02:17:05), and nothing else tells.
SMALL_CLOCK_PX = 14
#: Frames of a small clock on which a confirmation is sought, at most.
SMALL_CLOCK_FRAMES = 3


def _confirm_small(frames: list[tuple[float, Gray]], clock: tuple[Box, ...],
                   found: OverlayFound) -> None:
    """A small clock's readings stand only if tesseract, or the recogniser on two other
    renderings (`_read_alike`), reads one of them the same, on one of `SMALL_CLOCK_FRAMES`
    of their frames; otherwise none stands (`small_clock_unconfirmed`, the frames vetoed):
    a misread on every frame would put the whole clip at a wrong time."""
    if not found.clocks or min(b[3] - b[1] for b in clock) >= SMALL_CLOCK_PX:
        return
    engines = _engines()
    by_t = dict(frames)
    read = [c for c in found.clocks if c[0] in by_t]
    for t, when, _fmt in read[::max(1, len(read) // SMALL_CLOCK_FRAMES)][:SMALL_CLOCK_FRAMES]:
        seen = read_clock(engines, by_t[t], clock)
        if (seen is not None and seen[0] == when) or _read_alike(by_t[t], clock, when):
            return
    found.vetoed += sorted(c[0] for c in found.clocks)
    found.clocks = []
    found.flags.append("small_clock_unconfirmed")


def _read_alike(g: Gray, clock: tuple[Box, ...], when: datetime) -> bool:
    """Whether the recogniser reads `when` on two other renderings of the clock's crops too:
    with a margin, and enlarged 3× by another filter (Lanczos). A small clock's digits that
    it misreads on every frame read otherwise on one of them (and a right reading does not)."""
    import cv2

    def text(crops: list[Gray]) -> str:
        res, _ = _rapid().text_rec([cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in crops])
        return " ".join(str(t) for t, _ in res)

    h, w = g.shape
    margin = [_upscaled(g[max(0, b[1] - 4):min(h, b[3] + 4), max(0, b[0] - 4):min(w, b[2] + 4)])
              for b in clock]
    lanczos = [cv2.resize(g[b[1]:b[3], b[0]:b[2]], None, fx=3, fy=3,
                          interpolation=cv2.INTER_LANCZOS4) for b in clock]
    for crops in (margin, lanczos):
        parsed = parse_clock_text(text(crops))  # type: ignore[arg-type]  # cv2's arrays
        if parsed is None or parsed[0] != when:
            return False
    return True


def _another_clock(g: Gray, lines: list[Box], clock: tuple[Box, ...],
                   reader: Callable[[Gray], tuple[datetime, str] | None]) -> bool:
    """Whether another line of the frame shows a time of day more than a second away from
    the clock's (a second clock whose date did not read is still a second clock), or part of
    one whose hours did not read (then nothing says the two agree)."""
    from strongroom.media.overlay import time_of_day

    mine = reader(g)
    rest = [b for b in lines if not any(_touch(b, c) for c in clock)]
    if mine is None or not rest:
        return False
    at = mine[0].hour * 3600 + mine[0].minute * 60 + mine[0].second
    for text, _ in recognise(g, rest):
        tod = time_of_day(text)
        if tod is None:
            if _PART_OF_TIME.search(text):  # "26:28": a clock whose hours did not read
                return True
            continue
        h, m, sec = _hms(tod)
        apart = abs(h * 3600 + m * 60 + sec - at) % 86400
        if min(apart, 86400 - apart) > 1:
            return True
    return False


def _hms(tod: str) -> tuple[int, int, int]:
    """The hour (24-hour), minute and second of a `time_of_day` ("HH:MM:SS", "… AM/PM")."""
    h, m, sec = (int(x) for x in tod[:8].split(":"))
    if tod.endswith("PM") and h < 12:
        h += 12
    elif tod.endswith("AM") and h == 12:
        h = 0
    return h, m, sec


def _when(reader: Callable[[Gray], tuple[datetime, str] | None], g: Gray) -> datetime | None:
    parsed = reader(g)
    return parsed[0] if parsed is not None else None


def _rapid_reader(clock: tuple[Box, ...], others: list[Box]
                  ) -> Callable[[Gray], tuple[datetime, str] | None]:
    """The recogniser on the clock's crops of a frame, parsed. An AM/PM it misreads ("RM":
    the bitmap Terminus's A) is tesseract's, when tesseract reads the same half of the day
    twice and never the other (`_halves`; asked on `HALF_FRAMES` frames at most)."""
    from strongroom.media.overlay import half_unread, with_half

    votes: Counter[str] = Counter()
    asked: list[int] = []
    whole: list[tuple[datetime, str]] = []  # what the whole clock read, until settled
    # the settled reading, the time's box, the frame's video time, and the clock's pixels
    # but the time's on it (`_date_pixels`)
    settled: list[tuple[datetime, str, Box, float, list[tuple[Box, Any]]]] = []
    tries: list[int] = []

    def read_whole(g: Gray) -> tuple[datetime, str] | None:
        text = " ".join(text for text, _ in recognise(g, _clock_crops(g, clock, others)))
        parsed = parse_clock_text(text)
        if parsed is None and half_unread(text):
            if (half := _decided_half(votes)) is not None:
                parsed = parse_clock_text(with_half(text, half))
            elif len(asked) < HALF_FRAMES:
                asked.append(1)
                parsed = _with_tesseract_half(g, clock, text, votes)
        return parsed

    def read(g: Gray) -> tuple[datetime, str] | None:
        t = (_SEEN.times or {}).get(id(g))
        if settled and t is not None:
            when, fmt, box, t0, date_pixels = settled[0]
            quick = None if _date_changed(g, date_pixels) else _time_only(g, when, fmt, box)
            # only a time as far from the settled reading as the video is: a clock set a
            # day (or 13 hours) off shows the same time of day, and its date is read whole
            if quick is not None and abs(
                    (quick[0] - when).total_seconds() - (t - t0)) <= TIME_ONLY_DRIFT_S:
                return quick
        parsed = read_whole(g)
        if parsed is not None and not settled and t is not None \
                and len(tries) < TIME_BOX_TRIES:
            if any(w[0].date() == parsed[0].date() and w[1] == parsed[1] for w in whole):
                tries.append(1)
                crops = _clock_crops(g, clock, others)
                time_box = _time_box(g, crops[-1], parsed)
                if time_box is not None:
                    settled.append((*parsed, time_box, t, _date_pixels(g, crops, time_box)))
            whole.append(parsed)
        return parsed
    return read


#: A time read alone stands only while the rest of the clock (its date) looks as it did:
#: pixels that moved by more than `DATE_PIXEL_STEP` grey levels are at most this share.
DATE_CHANGED_SHARE = 0.01
DATE_PIXEL_STEP = 48


def _date_pixels(g: Gray, crops: list[Box], time_box: Box) -> list[tuple[Box, Any]]:
    """The clock's crops without the time's box, as they look on the settled frame: the
    parts of a line left and right of the time, and the other lines whole."""
    parts = []
    for c in crops:
        if min(c[3], time_box[3]) - max(c[1], time_box[1]) <= 0:
            parts.append(c)  # the date's own line
            continue
        parts += [(c[0], c[1], time_box[0], c[3]), (time_box[2], c[1], c[2], c[3])]
    return [(b, g[b[1]:b[3], b[0]:b[2]].astype("int16"))
            for b in parts if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]


def _date_changed(g: Gray, ref: list[tuple[Box, Any]]) -> bool:
    """Whether the clock beside its time looks otherwise than on the settled frame (the
    date changed: a clock set a day off reads the same time of day; or something passed in
    front of it): then the whole clock is read."""
    import numpy as np

    changed = total = 0
    for (x0, y0, x1, y1), before in ref:
        diff = np.abs(g[y0:y1, x0:x1].astype(np.int16) - before) > DATE_PIXEL_STEP
        changed, total = changed + int(diff.sum()), total + diff.size
    return total > 0 and changed > DATE_CHANGED_SHARE * total


#: How far (seconds) a time read alone may be from where the video's time puts the settled
#: reading's clock (its second is a floor: ±1 s, and a little more): further is a jump, or
#: a recorder whose clock runs at another pace than its video, and the whole clock is read.
TIME_ONLY_DRIFT_S = 1.5


#: A time of day (and its AM/PM) as the recogniser's raw text holds it.
_TIME_SPAN = re.compile(r"\d{1,2}\s*:\s*\d{2}\s*:\s*\d{2}(?:\s*[AaPp]\.?\s?[Mm])?")
#: Whole readings that agree on the date at which the time's box is looked for, at most.
TIME_BOX_TRIES = 2


def _time_box(g: Gray, crop: Box, parsed: tuple[datetime, str],
              parse: Callable[[str | None], tuple[datetime, str] | None] | None = None
              ) -> Box | None:
    """The part of the clock's (last) crop that holds the time of day, where the recogniser
    puts its characters (`_char_positions`), a character and a half wider each side; None
    unless that box alone reads the time `parsed` holds on this frame (`parse`: how a time
    of day read alone is put on the clock's date; `_time_only` unless given). Once two whole
    readings agree on the date, the clip's other frames read only this box (`_time_only`;
    the hybrid reader's date is read once, so from its first reading on): a third to half
    of the clock's width, and the recogniser's time grows with the width."""
    text, xs = _char_positions(g, crop)
    m = next(reversed(list(_TIME_SPAN.finditer(text))), None)
    if m is None or m.end() - m.start() < 6:
        return None
    first, last = m.start(), m.end() - 1
    pitch = (xs[last] - xs[first]) / (last - first)
    x0 = max(crop[0], int(xs[first] - 1.5 * pitch))
    x1 = crop[2] if not text[m.end():].strip() else min(crop[2], int(xs[last] + 1.5 * pitch))
    box = (x0, crop[1], x1, crop[3])
    if parse is not None:  # a time of day `parse` puts on the clip's date
        from strongroom.media.overlay import time_of_day

        again = parse(time_of_day(recognise(g, [box])[0][0]))
    else:
        again = _time_only(g, parsed[0], parsed[1], box)
    return box if again is not None and again[0] == parsed[0] else None


def _time_only(g: Gray, when: datetime, fmt: str, box: Box) -> tuple[datetime, str] | None:
    """The time of day in `box` on the date of `when` (a settled whole reading of format
    `fmt`), the day before or after when that is nearer (midnight passed); None when the
    time does not read, its AM/PM does not match the format's, or the box shows a weekday
    that date does not fall on (the whole clock is read then)."""
    from strongroom.media.overlay import time_of_day, weekday_read

    text = recognise(g, [box])[0][0]
    tod = time_of_day(text)
    if tod is None or fmt.endswith("12h") != tod.endswith(("AM", "PM")):
        return None
    if fmt.endswith("12h") and not 1 <= int(tod[:2]) <= 12:
        return None
    h, m, sec = _hms(tod)
    got = datetime.combine(when.date(), datetime.min.time()).replace(
        hour=h, minute=m, second=sec)
    if (when - got).total_seconds() > 12 * 3600:
        got += timedelta(days=1)
    elif (got - when).total_seconds() > 12 * 3600:
        got -= timedelta(days=1)
    weekday = weekday_read(text)
    if weekday is not None and weekday != got.weekday():
        return None  # a weekday in the time's box that the date does not fall on: read whole
    return got, fmt


def _char_positions(g: Gray, box: Box) -> tuple[str, list[float]]:
    """The recogniser's text of one crop, and for each character the x in `g` of the column
    of the recogniser's output that wrote it (its greedy CTC decoding, as RapidOCR's own)."""
    import cv2
    import numpy as np

    rec = _rapid().text_rec
    crop = _upscaled(g[box[1]:box[3], box[0]:box[2]])
    img = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    norm = rec.resize_norm_img(img, img.shape[1] / max(1, img.shape[0]))
    idx = rec.session(norm[np.newaxis].astype(np.float32))[0][0].argmax(axis=1)
    chars = rec.postprocess_op.character
    per_step = norm.shape[2] / len(idx) * (box[2] - box[0]) / norm.shape[2]
    text, xs = [], []
    for t, i in enumerate(idx.tolist()):
        if i != 0 and (t == 0 or i != idx[t - 1]):
            text.append(chars[i])
            xs.append(box[0] + (t + 0.5) * per_step)
    return "".join(text), xs


#: Frames on which tesseract is asked for an AM/PM the recogniser misread.
HALF_FRAMES = 2


def _halves(g: Gray, clock: tuple[Box, ...]) -> list[str]:
    """The AM/PM tesseract reads in the clock's last line: one per engine, preparation and
    crop (with and without a margin) that shows one."""
    from strongroom.media.overlay import _AMPM

    box = clock[-1]
    return [("AM" if m.group(1) in "AaАа" else "PM")
            for api, how, crop in itertools.product(_engines(), PREPARATIONS,
                                                     (box, _margin(g, box)))
            for m in _AMPM.finditer(_read(api, g, crop, how))]


#: Frames of the first second read whole when the sampled frames give too few readings to
#: agree on the clip's date (`_times_on_the_clips_date`).
DENSE_EVIDENCE = 4
#: Frames whose spelt-out date is read by both engines (`_find_clock_hybrid`): tesseract on
#: the first `HYBRID_FIRST` of them, and on the others only when those did not settle it.
HYBRID_FRAMES = 4
HYBRID_FIRST = 2


def _find_clock_hybrid(frames: list[tuple[float, Gray]], lines: list[Box]
                       ) -> tuple[str, tuple[Box, ...]] | None:
    """A clock with a spelt-out Russian month (`18 апр 2023 22:39:34`, or the date above the
    time), whose month the recogniser cannot read (its alphabet has no Cyrillic): the date as
    the recogniser and tesseract together read it on the first frames (`spelt_date`), and
    the line whose time of day the recogniser reads."""
    from strongroom.media.overlay import may_be_spelt_date, spelt_date, time_of_day

    _clock_api, label_api = _engines()
    g = frames[0][1]
    texts = [text for text, _ in recognise(g, lines)]
    for box, text in zip(lines, texts, strict=True):
        if time_of_day(text) is None:
            continue
        for date_box in [box] + [a for a in lines if _below(a, box)]:
            recognised = [recognise(f, [date_box])[0][0] for _t, f in frames[:HYBRID_FRAMES]]
            if not may_be_spelt_date(recognised):
                continue  # no day, word and year: a label above the time, or a time alone
            # tesseract reads outlined text in some preparations and not others: all are
            # tried, with and without a margin; on the first frames, then on the rest too
            # (on both corpora, the first two frames settled every date all four did)
            tesseract: list[str] = []
            for some in (frames[:HYBRID_FIRST], frames[HYBRID_FIRST:HYBRID_FRAMES]):
                tesseract += [
                    _read(label_api, f, _margin(f, date_box) if margin else date_box, how)
                    for (_t, f), how, margin in itertools.product(
                        some, PREPARATIONS, (False, True))]
                date = spelt_date(recognised, tesseract)
                if date is not None:
                    return date, ((box,) if date_box == box else (date_box, box))
    return None


def _shows_time(g: Gray, lines: list[Box]) -> bool:
    """Whether the recogniser reads a time of day on one of `lines` (read already)."""
    from strongroom.media.overlay import time_of_day

    return any(time_of_day(text) is not None for text, _ in recognise(g, lines))


def _hybrid_reader(date: str, clock: tuple[Box, ...], others: list[Box]
                   ) -> Callable[[Gray], tuple[datetime, str] | None]:
    """The clip's date (read once) with the time of day the recogniser reads on a frame; a
    time more than 12 hours before the first one read is the next day (midnight passed).
    After the first reading, only the time's own box is read (`_time_box`), while what it
    reads is as far from that reading as the video's time (`TIME_ONLY_DRIFT_S`); else the
    line whole."""
    from strongroom.media.overlay import time_of_day

    first: list[datetime] = []
    time_box = clock[-1]
    # the time's own box, once a frame read: (box, that reading, its video time)
    narrow: list[tuple[Box, datetime, float]] = []

    def parsed_at(tod: str | None) -> tuple[datetime, str] | None:
        return parse_clock_text(f"{date} {tod}") if tod is not None else None

    def read(g: Gray) -> tuple[datetime, str] | None:
        t = (_SEEN.times or {}).get(id(g))
        parsed = None
        if narrow and t is not None:
            box, when0, t0 = narrow[0]
            parsed = parsed_at(time_of_day(recognise(g, [box])[0][0]))
            # only a time as far from the first one as the video is (else the line whole)
            if parsed is not None and abs(
                    (parsed[0] - when0).total_seconds() - (t - t0)) > TIME_ONLY_DRIFT_S:
                parsed = None
        if parsed is None:
            crops = _clock_crops(g, (time_box,), others)
            parsed = parsed_at(time_of_day(" ".join(text for text, _ in recognise(g, crops))))
            if parsed is not None and not narrow and t is not None:
                own = _time_box(g, crops[-1], parsed, parse=parsed_at)
                if own is not None:
                    narrow.append((own, parsed[0], t))
        if parsed is None:
            return None
        when, fmt = parsed
        if not first:
            first.append(when)
        elif (first[0] - when).total_seconds() > 12 * 3600:
            when += timedelta(days=1)
        return when, fmt
    return read


def read_overlay(frames: list[tuple[float, Gray]],
                 dense: list[tuple[float, Gray]] | None = None, *,
                 date_orders: dict[str, str] | None = None) -> OverlayFound:
    """Clock readings (video time, clock, format) and the label from greyscale frames;
    `dense`, every frame of the first second or so, pins the clock's tick to a frame;
    `date_orders`, the day/month order of slashed dates that the vault's other clips showed,
    by shape (`overlay.resolve_date_order`)."""
    # a frame a crafted file made 16384×2 holds no line of text (its quarter bands would be
    # empty, and OpenCV asserts on an empty picture: found by the fuzz campaign)
    frames = [(t, g) for t, g in frames if min(g.shape) >= MIN_FRAME_SIDE]
    if dense is not None:
        dense = [(t, g) for t, g in dense if min(g.shape) >= MIN_FRAME_SIDE]
    _SEEN.reads, _SEEN.strokes, _SEEN.passes = {}, None, {}
    _SEEN.times = {id(g): t for t, g in [*frames, *(dense or [])]}
    try:
        return _read_overlay(frames, dense, date_orders)
    finally:
        _SEEN.reads, _SEEN.strokes, _SEEN.passes, _SEEN.times = None, None, None, None


def _stroke_lines(frames: list[tuple[float, Gray]]) -> list[Box]:
    """`find_lines` of the frames, once per `read_overlay` (the clock's fallback and the
    label both use them)."""
    if _SEEN.strokes is None:
        _SEEN.strokes = find_lines([g for _, g in frames])
    return list(_SEEN.strokes)


def _read_overlay(frames: list[tuple[float, Gray]], dense: list[tuple[float, Gray]] | None,
                  date_orders: dict[str, str] | None) -> OverlayFound:
    found = OverlayFound()
    if not frames:
        return found
    lines: list[Box] = []
    tried: list[list[Box]] = []  # each frame's lines, when it showed no clock
    clock: tuple[Box, ...] | None = None
    hybrid: tuple[str, tuple[Box, ...]] | None = None
    for _t, g in frames[:2]:  # the second frame only when the first shows no clock
        # the bands at 2× first (where overlays are); the whole frame only when they show none
        lines = detect_lines(g, DETECT_PASSES[1:])
        clocks = _clocks_rapid(g, lines)
        if not clocks and _shows_time(g, lines):
            # a time of day on a line of the bands: the clock is there, with a date the
            # recogniser cannot read whole (a Russian month); neither the whole frame nor
            # the next frame is looked at when these lines read as a clock with tesseract
            hybrid = _find_clock_hybrid(frames, lines)
            if hybrid is not None:
                break
        if not clocks:
            lines = detect_lines(g)
            clocks = _clocks_rapid(g, lines)
        if clocks:
            clock = clocks[0][0]
            if any(abs((c[1][0] - clocks[0][1][0]).total_seconds()) > 1 for c in clocks):
                # two clocks that disagree: which one is the recorder's is for a person
                found.flags.append("multiple_clocks")
                found.other_clocks = [[c[1][0].isoformat(sep=" "), c[1][1]] for c in clocks]
                found.clock_box = _union(clock)
                _read_label(frames, [b for b in lines if not any(
                    _overlap(b, c) for cl, _ in clocks for c in cl)], clock, found)
                return found
            break
        tried.append(lines)
    reader: Callable[[Gray], tuple[datetime, str] | None] | None = None
    others: list[Box] = []
    if clock is not None:
        others = [b for b in lines if b not in clock]
        reader = _rapid_reader(clock, others)
        found.engine = "rapidocr"
    else:
        # the lines of either frame: a box a pixel wider or narrower reads otherwise
        hybrid = hybrid or next((h for found_lines in reversed(tried) if (
            h := _find_clock_hybrid(frames, found_lines)) is not None), None)
        if hybrid is not None:
            date, clock = hybrid
            reader = _hybrid_reader(date, clock, [b for b in lines if b not in clock])
            found.engine = "tesseract date + rapidocr time"
    if reader is not None and clock is not None and _another_clock(frames[0][1], lines, clock,
                                                                   reader):
        found.flags.append("multiple_clocks")
        found.clock_box = _union(clock)
        _read_label(frames, [b for b in lines if not any(_overlap(b, c) for c in clock)],
                    clock, found)
        return found
    if reader is not None and clock is not None:
        unread = []
        for i, (t, g) in enumerate(frames):
            parsed = reader(g)
            if parsed is not None:
                found.clocks.append((t, parsed[0], parsed[1]))
            else:
                unread.append(i)
        if found.engine == "rapidocr":
            if unread and len(found.clocks) < 2 and dense:
                # too few whole readings to agree on a date: the first second's frames, read
                # whole, are readings too (a low-bitrate clip's keyframe reads best)
                for t, g in dense[::max(1, len(dense) // DENSE_EVIDENCE)][:DENSE_EVIDENCE]:
                    parsed = reader(g)
                    if parsed is not None and all(abs(c[0] - t) > 1e-6 for c in found.clocks):
                        found.clocks.append((t, parsed[0], parsed[1]))
                found.clocks.sort(key=lambda c: c[0])
            _times_on_the_clips_date(frames, unread, _clock_crops(frames[0][1], clock, others),
                                     found)
        read_at = {c[0] for c in found.clocks}
        last_read = max((i for i, (t, _) in enumerate(frames) if t in read_at), default=-1)
        if 0 <= last_read < len(frames) - 2:
            # the clock stopped reading for the rest of the clip: the recorder's overlay
            # may have changed style or place; look for it again there
            moved = _find_clock_rapid(frames[last_read + 1][1],
                                      detect_lines(frames[last_read + 1][1]))
            if moved is not None and not any(_overlap(a, b) for a in moved for b in clock):
                found.flags.append("style_changed")
                again = _rapid_reader(moved, [])
                for t, g in frames[last_read + 1:]:
                    parsed = again(g)
                    if parsed is not None:
                        found.clocks.append((t, parsed[0], parsed[1]))
        _confirm_jumps(frames, clock, found)
        _confirm_small(frames, clock, found)
        if dense and found.clocks and found.clocks[0][0] > dense[-1][0]:
            # no reading of the first second stood (the first frame misread, and vetoed):
            # some of its frames, read, are readings (a misread again is dropped again)
            for t, g in dense[1::max(1, len(dense) // DENSE_EVIDENCE)][:DENSE_EVIDENCE]:
                parsed = reader(g)
                if parsed is not None:
                    found.clocks.append((t, parsed[0], parsed[1]))
            found.clocks.sort(key=lambda c: c[0])
            _confirm_jumps(frames, clock, found)
        if dense and found.clocks:
            first = found.clocks[0]
            found.clocks += [r for r in _tick(dense, lambda g: _when(reader, g), first,
                                              _union(clock))
                             if r not in found.clocks]
            found.clocks.sort(key=lambda r: r[0])
    else:
        clock = _read_clocks_tesseract(frames, lines, found)
        found.engine = "tesseract" if clock else None
    clock_lines: tuple[Box, ...] = clock or ()
    if clock_lines:
        found.clock_box = _union(clock_lines)
    _read_label(frames, [b for b in lines if not any(_overlap(b, c) for c in clock_lines)],
                clock_lines, found)
    _drop_weekday_disagreements(found)
    # the order other clips showed is taken only from clips of this camera label
    shapes = Counter(date_shape(c[2]) for c in found.clocks if AMBIGUOUS in c[2])
    found.date_shape = shapes.most_common(1)[0][0] if shapes else None
    either = next((c for c in found.clocks if AMBIGUOUS in c[2]), None)
    if either is not None:
        swapped = either[1].replace(month=either[1].day, day=either[1].month)
        found.date_either_way = [either[1].isoformat(sep=" "), swapped.isoformat(sep=" ")]
    found.clocks, found.date_ambiguous, found.date_order = resolve_date_order(
        found.clocks, date_orders, found.label)
    return found


def _drop_weekday_disagreements(found: OverlayFound) -> None:
    """Readings whose clock names a weekday its date does not fall on (`WEEKDAY_DISAGREES`:
    a recorder that writes the month first, read day first, or a digit misread) are placed
    nowhere, and neither is any reading of the same date (frames whose weekday was hidden,
    or misread, or not read at all once the date was settled: the clip showed that date
    wrong): dropped, their frames vetoed, the clip flagged `weekday_disagrees`."""
    from strongroom.media.overlay import WEEKDAY_DISAGREES

    wrong = {c[1].date() for c in found.clocks if WEEKDAY_DISAGREES in c[2]}
    if wrong:
        dropped = [c for c in found.clocks if c[1].date() in wrong]
        found.clocks = [c for c in found.clocks if c[1].date() not in wrong]
        found.vetoed += sorted(c[0] for c in dropped)
        found.flags.append("weekday_disagrees")


#: A time of day whose AM/PM did not read is put in the half of the day that places it
#: within this many seconds of the clip's other readings, or nowhere.
SAME_HALF_S = 1800


def _times_on_the_clips_date(frames: list[tuple[float, Gray]], unread: list[int],
                             crops: list[Box], found: OverlayFound) -> None:
    """Frames whose clock did not parse as a whole (a digit of its date misread: "08-61"),
    but whose time of day reads: that time on the date most of the clip's readings agree on
    (two at least), on the day that puts it nearest them (a clip may pass midnight). A
    12-hour clock whose AM/PM did not read ("RM": A or P?) takes the half of the day that
    puts it within `SAME_HALF_S` of the readings, when they agree on it; else nothing.
    `fit_segments` still checks each against the others."""
    import statistics
    from collections import Counter
    from datetime import time

    from strongroom.media.overlay import time_of_day

    dates = Counter(c[1].date() for c in found.clocks)
    if not unread or not dates:
        return
    date, n = dates.most_common(1)[0]
    if n < 2 or 2 * n <= len(found.clocks):
        return
    fmt = Counter(c[2] for c in found.clocks if c[1].date() == date).most_common(1)[0][0]
    offset = statistics.median((c[1] - datetime.min).total_seconds() - c[0]
                               for c in found.clocks)
    halves = {c[1].hour >= 12 for c in found.clocks if c[1].date() == date}
    for i in unread:
        t, g = frames[i]
        tod = time_of_day(" ".join(text for text, _ in recognise(g, crops)), unknown_half=True)
        if tod is None:
            continue
        h, m, sec = (int(x) for x in tod[:8].split(":"))
        if tod.endswith(("AM", "PM")):
            if h == 0 or h > 12:
                continue
            hours = [h % 12 + (12 if tod.endswith("PM") else 0)]
        elif tod.endswith("?M") or fmt.endswith("12h"):
            if h == 0 or h > 12 or len(halves) != 1:
                continue
            hours = [h % 12, h % 12 + 12]  # which half: the one near the readings
        else:
            hours = [h]
        # a date whose day and month could be either way round is not known to be the next
        # day's neighbour: 12/11 + 1 is 13/11 read one way and nothing the other
        days = [datetime.combine(date + timedelta(days=d), time(hour, m, sec))
                for d in ((0,) if AMBIGUOUS in fmt else (-1, 0, 1)) for hour in hours]
        when = min(days, key=lambda w: abs((w - datetime.min).total_seconds() - t - offset))
        if len(hours) == 2 and abs((when - datetime.min).total_seconds() - t - offset
                                   ) > SAME_HALF_S:
            continue
        found.clocks.append((t, when, fmt))
    found.clocks.sort(key=lambda c: c[0])


def _read_clocks_tesseract(frames: list[tuple[float, Gray]], detected: list[Box],
                           found: OverlayFound) -> tuple[Box, ...] | None:
    """The fallback: tesseract on the detected lines and the stroke lines, two agreeing reads
    per frame (`read_clock`)."""
    clock_api, label_api = _engines()
    lines = _stroke_lines(frames)
    lines += [b for b in detected if _in_band(b, frames[0][1].shape[0])
              and not any(_overlap(b, o) for o in lines)]
    candidates = [(line,) for line in lines] + [(a, b) for a, b in _stacked(lines)]
    engines = (clock_api, label_api)
    clock: tuple[Box, ...] | None = None
    for tries in (frames[:1], frames[1:3]):
        clock = next((c for c in candidates
                      if any(read_clock(engines, g, c, min_digits=6) for _, g in tries)),
                     None)
        if clock is not None:
            break
    if clock is not None:
        for t, g in frames:
            parsed = read_clock(engines, g, clock)
            if parsed is not None:
                found.clocks.append((t, parsed[0], parsed[1]))
    return clock


def _in_band(box: Box, height: int) -> bool:
    band = height * BAND
    return box[3] <= band or box[1] >= height - band


#: Frames whose label is read (tesseract, and the recogniser): enough for a per-character vote.
LABEL_FRAMES = 4
#: When the engines disagree on a label, tesseract reads it again on these preparations
#: (`PREPARATIONS`) of the tight box ("tight") or of the detector's ("line").
SECOND_LOOK = (("boost", "tight"), ("plain", "line"), ("strokes", "line"))
#: A line whose reads agree less than this is picture, not a label (static background that
#: happens to look like letters reads differently on every frame). Between this and
#: `labels.UNCERTAIN_BELOW` a label is kept and marked uncertain.
MIN_LABEL_AGREEMENT = 0.3
#: Cyrillic letters with no Latin look-alike: a label holding one is read by tesseract's
#: Russian model, whatever the recogniser (which has no Cyrillic) made of it.
_ONLY_CYRILLIC = set("БГДЖЗИЙЛПФЦЧШЩЪЫЬЭЮЯ")
#: A camera number as the recogniser reads it best: digits, or a short prefix and digits
#: ("15", "D15", "CH26", "10-2").
_YEAR = re.compile(r"(?<!\d)(?:19[89]\d|20\d\d)(?!\d)")
_INNER_PUNCTUATION = re.compile(r"(?<=\w)[:.`'’,;](?=\w)")
_DATE = re.compile(r"(?<!\d)\d{1,4}([-./])\d{1,2}\1\d{2,4}(?!\d)")
_PART_OF_TIME = re.compile(r"\d{1,2}\s*:\s*\d{2}")
_NUMBERED = re.compile(r"[A-Z]{0,3}\d+(?:-\d+)?")


def _read_label(frames: list[tuple[float, Gray]], detected: list[Box],
                clock_lines: tuple[Box, ...], found: OverlayFound) -> None:
    """The camera label: the other text lines in the top and bottom quarters, each read on a
    few frames by tesseract (Russian+English) and by the recogniser, and voted on character by
    character (`labels.consensus`), then word by word across the engines (`_merge_words`):
    tesseract reads Cyrillic, the recogniser Latin and digits. When the engines disagree,
    tesseract reads the line again on more preparations (`SECOND_LOOK`). Raw reads are kept;
    a label the engines disagree on, or whose reads agree little, is kept as uncertain."""
    from strongroom.media.labels import UNCERTAIN_BELOW, consensus

    _clock_api, label_api = _engines()
    h = frames[0][1].shape[0]
    rows = _rows([b for b in detected if _in_band(b, h)])
    lines = list(rows)
    strokes = [b for b in _stroke_lines(frames)
               if not any(_touch(b, c) for c in clock_lines)]
    if not lines:  # the detector found nothing beside the clock: thin bright strokes
        lines = strokes
    step = max(1, len(frames) // LABEL_FRAMES)
    sample = [g for _, g in frames[::step][:LABEL_FRAMES]]
    kept: list[tuple[Box, str, float, bool, tuple[tuple[str, str], ...]]] = []
    for row in lines:  # grows: the parts of a row that read as a clock
        line = _with_number_after(sample[0], row, [*clock_lines, *detected])
        # tesseract reads small text best in a tight box: the stroke line inside the detector's
        tight = next((b for b in strokes if _overlap(b, line)), line)
        tess = [_read_conf(label_api, g, _margin(g, tight)) for g in sample]
        rapid = [(text, 100 * score) for g in sample for text, score in recognise(g, [line])]
        found.label_reads += [text for text, _ in tess]
        t_read, r_read = consensus(tess), consensus(rapid)
        reads = [r for r in (t_read, r_read) if r is not None]
        if not reads or max(r.confidence for r in reads) < MIN_LABEL_AGREEMENT:
            continue
        text, uncertain = _merge_words(t_read, r_read)
        if any(_clock_like(r.text) for r in reads) or _clock_like(text):
            # a clock or a date (or part of one) that did not parse is no label; a row
            # made of several boxes may be a clock and a label beside it ("Вт 23 июл 2019
            # 13:58:38  CAM 25 КАМЕРА 14", no clock read): its boxes are read one by one
            lines += [p for p in rows.get(row, ()) if p != row and p not in lines]
            continue
        if uncertain and r_read is not None:
            # the engines disagree: tesseract again, on more preparations of the crop; the
            # pooled reads replace its first ones only if the engines then agree
            more = [(_read(label_api, g, _margin(g, tight if on == "tight" else line), how),
                     float(label_api.MeanTextConf()))
                    for how, on in SECOND_LOOK for g in sample]
            again = consensus(tess + more)
            text2, uncertain2 = _merge_words(again, r_read)
            if text2 and not uncertain2:
                text, uncertain, t_read = text2, False, again
                reads = [r for r in (t_read, r_read) if r is not None]
        if text:
            best = max(reads, key=lambda r: r.confidence)
            kept.append((line, text, best.confidence, uncertain,
                         tuple(c for r in reads for c in r.corrected)))
    if any(not k[3] for k in kept):
        # background read as letters: reads that agree little (a label line the engines
        # read alike on every frame but not alike each other stays, uncertain)
        kept = [k for k in kept if not k[3] or k[2] >= UNCERTAIN_BELOW]
    elif kept:
        kept = [max(kept, key=lambda k: k[2])]
    if kept:
        kept.sort(key=lambda k: (k[0][1], k[0][0]))
        found.label = " ".join(k[1] for k in kept)
        found.label_box = _union(tuple(k[0] for k in kept))
        found.label_confidence = round(min(k[2] for k in kept), 3)
        # "CAMERA" alone names no camera: its number was most likely not read
        found.label_uncertain = (any(k[3] for k in kept)
                                 or set(found.label.split()) <= _NAMES_NO_CAMERA)
        found.label_corrected = [list(c) for k in kept for c in k[4]]


def _with_number_after(g: Gray, line: Box, others: list[Box]) -> Box:
    """`line` grown to the right over a short number the detector left out ("Camera" of
    "Camera 1": a lone narrow digit a space away is often not boxed), when the recogniser
    reads the grown box as the line's text and a number more, surely; else `line`."""
    import unicodedata

    text = unicodedata.normalize("NFKC", recognise(g, [line])[0][0]).replace(" ", "")
    if text.upper() not in _CAMERA_WORDS_READ:
        # only a label that names no camera lost its number: beside a label that does
        # ("CAM 6 КАРАНТИН"), the picture may read as one (a "4" in the background)
        return line  # (the line's own read is wanted anyway: `_read_label` reads it too)
    h = line[3] - line[1]
    right = min(g.shape[1], line[2] + round(1.6 * h))
    for o in others:  # never into the next text on the row
        if o[0] >= line[2] and min(o[3], line[3]) > max(o[1], line[1]):
            right = min(right, o[0] - 1)
    if right - line[2] < h // 3:
        return line
    grown = (line[0], line[1], right, line[3])
    more, score = recognise(g, [grown])[0]
    more = unicodedata.normalize("NFKC", more).replace(" ", "")
    head, extra = more[:len(text)], more[len(text):]
    if (1 <= len(extra) <= 3 and extra.isdigit()
            and sum(a != b for a, b in zip(head, text, strict=True)) <= 1 and score >= 0.8):
        return grown  # (one letter read otherwise in the grown box: "Canera 1", "Camera")
    return line


#: Words that name no camera by themselves (a label of only these lost its number or name).
_NAMES_NO_CAMERA = frozenset({"CAM", "CAMERA", "КАМ", "КАМЕРА", "CH", "КАНАЛ", "CHANNEL"})
#: The same as the recogniser reads them (no Cyrillic: Latin look-alikes), without spaces.
_CAMERA_WORDS_READ = frozenset({"CAM", "CAMERA", "CANERA", "KAM", "KAMEPA", "KAMERA", "CH",
                                "CHANNEL"})


def _clock_like(text: str) -> bool:
    """A clock or a date (or part of one): a time of day, a year, or three numbers with date
    separators (a year misread: "2819-11-27")."""
    return ((sum(c.isdigit() for c in text) >= 6 and ":" in text)
            or _YEAR.search(text) is not None or _DATE.search(text) is not None)


def _rows(boxes: list[Box]) -> dict[Box, tuple[Box, ...]]:
    """Line boxes on one row that overlap or nearly touch, merged into one: the detector's two
    passes may each find part of a line, or cut it at a wide space ("CAM 28" | "YARD").
    Each row with the boxes it was made of."""
    out: dict[Box, tuple[Box, ...]] = {b: (b,) for b in boxes}
    merged = True
    while merged:
        merged = False
        for a, b in itertools.combinations(out, 2):
            ha, hb = a[3] - a[1], b[3] - b[1]
            rows = min(a[3], b[3]) - max(a[1], b[1])
            gap = max(a[0], b[0]) - min(a[2], b[2])
            if rows >= 0.6 * min(ha, hb) and gap <= max(ha, hb) and 0.5 <= ha / max(1, hb) <= 2:
                parts = out.pop(a) + out.pop(b)
                out[_union((a, b))] = parts
                merged = True
                break
    return out


def _merge_words(t_read: LabelRead | None, r_read: LabelRead | None) -> tuple[str, bool]:
    """One label from tesseract's read (it reads Cyrillic) and the recogniser's (it reads
    Latin and digits better, and Cyrillic as Latin look-alikes: "KAMEPA", "KIII"), and whether
    it is uncertain.

    The words of the read that agreed better across frames are the base (tesseract's unless
    its reads disagree and the recogniser's do not, or the recogniser's agree much better);
    the other read's words are paired with them through a character alignment (look-alikes
    equal; the recogniser drops spaces, and a word it runs into a number, "FL00R3", is parted
    when the letters spell a vocabulary word: `_split_runs`). For each pair `_choose` picks
    the word; a number the recogniser read after tesseract's last word is added.

    The label is uncertain when only one engine read it, when the base read is uncertain,
    when a word is not `_confirmed` by both engines (a different word, a different number,
    nothing there), or when the other engine read more words. Punctuation between two words
    read as one parts them; words with no letter or digit are dropped."""
    from strongroom.media.labels import canonical

    if t_read is None or r_read is None:
        only = t_read or r_read
        if only is None:
            return "", True
        words = only.text.split() if only is t_read else _split_runs(only.text.split())[0]
        words = [w for w in words if any(c.isalnum() for c in w)]
        return _finish(words), True  # the other engine read nothing like a label
    t_words = t_read.text.split()
    r_words, loose = _split_runs(r_read.text.split())
    r_base = not r_read.uncertain and (
        t_read.uncertain or r_read.confidence > t_read.confidence + 0.25)
    base, other = (r_words, t_words) if r_base else (t_words, r_words)
    paired = _pair(base, other)
    uncertain = (r_read if r_base else t_read).uncertain
    words = []
    for n, (b, o) in enumerate(zip(base, paired, strict=True)):
        t, r = (o, b) if r_base else (b, o)
        if not any(c.isalnum() for c in b):
            continue
        t_sure = not t_read.uncertain
        r_sure = not r_read.uncertain and not (
            n in loose if r_base else r in {r_words[i] for i in loose})
        word = _choose(t, r, t_sure=t_sure, r_sure=r_sure)
        if not _confirmed(word, t, r, t_sure=t_sure, r_sure=r_sure):
            uncertain = True  # the engines disagree on it
        elif _corrected_by_both(word, t_read, r_read, r):
            uncertain = True
        words.append(word)
    if not r_base and paired and not r_read.uncertain:
        # a number the certain recogniser read after tesseract's last word ("КОРИД" of a box
        # cut short, "KOPMIOP2"): the label's too
        tail = _split_runs([paired[-1]])[0][1:]
        if tail and all(w.isdigit() for w in tail):
            words += tail
            uncertain = True
    text = _finish(words)
    if len(_finish((r_read if not r_base else t_read).text.split()).split()) \
            > len(text.split()):
        uncertain = True  # the other engine read a word more
    return text, uncertain or not text or canonical(text) != text


def _corrected_by_both(word: str, t_read: LabelRead, r_read: LabelRead, r: str) -> bool:
    """Whether neither engine spelt `word`: tesseract's read was corrected to it (its
    `corrected` pairs: "ДВР" → ДВОР) and the recogniser's is no exact look-alike of it
    ("BIP"): the Ukrainian ДВІР, no Russian word, read as one."""
    from strongroom.media.labels import _look_cost

    fixed = {v for _, v in t_read.corrected} | {v for _, v in r_read.corrected}
    r_alnum = "".join(c for c in r if c.isalnum())
    return word in fixed and not (r_alnum and _look_cost(r_alnum, word) == 0)


def _finish(words: list[str]) -> str:
    from strongroom.media.labels import canonical, correct, spelt_as

    # punctuation between two words read as one ("КАМЕРА:21", "КАМ.05") parts them
    words = [p for w in words for p in _INNER_PUNCTUATION.sub(" ", w).split()]
    words = [w.strip(_WORD_EDGE) for w in words]
    words = [w for w in words if any(c.isalnum() for c in w)]
    # a word read in two ("ПРОГ УЛОЧНЫЙ"): two parts that are no words, together exactly
    # one (look-alikes aside: "УЧ ВОСТОК" is two words, not a misread УЧАСТОК)
    i = 0
    while i + 1 < len(words):
        a, b = words[i], words[i + 1]
        if (a.isalpha() and b.isalpha() and correct(a) is None and correct(b) is None
                and spelt_as(a + b) is not None):
            words[i:i + 2] = [a + b]
        else:
            i += 1
    return canonical(" ".join(correct(w) or w for w in words))


#: Marks OCR leaves at either end of a word.
_WORD_EDGE = "^°”“\"'‚‘’`,.;:«»<>‹›|!?()[]{}"
_LETTERS_NUMBER = re.compile(r"(.*[^\W\d_])(\d+)")
_RUNS = re.compile(r"\d+|[^\W\d_]+")
_NUMBER_LETTERS = re.compile(r"([^\W\d_]{0,2}\d+)([^\W\d_].*)")


def _vocabulary_word(word: str) -> str | None:
    """The vocabulary word `word` is, as read by either engine."""
    from strongroom.media.labels import correct, correct_look

    word = word.strip(_WORD_EDGE) or word  # OCR's leaves at the edges (">XKN[AA")
    return correct(word) or correct_look(word)


def _look_distance(read: str, word: str) -> int:
    from strongroom.media.labels import _look_cost, key

    if "".join(map(key, read)) == "".join(map(key, word)):
        return 0
    return _look_cost(read, word)


def _digits(word: str) -> str:
    return "".join(c for c in word if c.isdigit())


def _split_runs(words: list[str]) -> tuple[list[str], set[int]]:
    """A vocabulary word run into a number ("CAMERA6", "FL00R3", "KOPMIOP2", "D15KAMEPA",
    "CAM3KT") parted, and which of the words came from a run of three or more: the words
    and the numbers the recogniser runs together (its "KAM101IEPHMETP" is КАМ 10 ПЕРИМЕТР,
    П read "1I") are less sure than those it spaced. A word is parted at its last number, or
    else at its first, when that leaves a vocabulary word of 3 letters or more nearer than
    the whole word is to one ("AEX4PHA9" is ДЕЖУРНАЯ whole, Я read "9"); a word that is no
    vocabulary word whole, at every number when a part of 3 letters is one."""
    out: list[str] = []
    loose: set[int] = set()
    for w in words:
        whole = _vocabulary_word(w)
        parts = [w]
        if whole is None or w[-1:].isdigit():
            for m in (_LETTERS_NUMBER.fullmatch(w), _NUMBER_LETTERS.fullmatch(w)):
                word = m.group(1) if m and m.re is _LETTERS_NUMBER else m.group(2) if m else ""
                spelt = _vocabulary_word(word) if word else None
                if m and spelt is not None and len(spelt) >= 3 and (
                        whole is None or _look_distance(word, spelt) < _look_distance(w, whole)):
                    parts = [m.group(1), m.group(2)]
                    break
            else:
                runs = _RUNS.findall(w)
                if (len(runs) > 2 and runs[1].isdigit() and len(runs[0]) <= 2
                        and runs[0].isascii() and runs[0].isupper()
                        and _vocabulary_word(runs[0]) is None):
                    # a camera number with its prefix ("D15", "CH26"), read as sure as if
                    # spaced: a letter and digits are no run of words
                    runs[:2] = [runs[0] + runs[1]]
                    first = 1
                else:
                    first = 0
                if whole is None and any(len(_vocabulary_word(p) or "") >= 3 for p in runs
                                         if len(p) >= 3):
                    parts = runs
                    loose |= set(range(len(out) + first, len(out) + len(parts)))
        out += parts
    return out, loose


def _pair(base: list[str], other: list[str]) -> list[str]:
    """For each word of `base`, what `other` read at its place ("" when nothing; what it read
    before the first word or after the last goes with that word)."""
    from difflib import SequenceMatcher

    from strongroom.media.labels import key

    if len(base) == len(other):
        return list(other)
    b_flat, o_flat = "".join(base), "".join(other)
    where = _aligned(SequenceMatcher(None, [key(c) for c in b_flat], [key(c) for c in o_flat],
                                     autojunk=False), len(b_flat))
    where[0], where[-1] = 0, len(o_flat)  # what `other` has before or after: the ends' words
    ends = list(itertools.accumulate(len(b) for b in base))
    return [o_flat[where[e - len(b)]:where[e]] for b, e in zip(base, ends, strict=True)]


def _choose(t: str, r: str, *, t_sure: bool, r_sure: bool) -> str:
    """Tesseract's word `t` or the recogniser's `r` (either may be ""): a camera number
    (`_NUMBERED`) is the recogniser's unless it is tesseract's vocabulary word through the
    recogniser's look-alikes ("WV30" for ШИЗО, whose letters it has not), or tesseract's
    word, certain, has its digits and a letter only Cyrillic has ("D15", not "015"), or the
    recogniser is unsure of it and tesseract read a number too; a Latin vocabulary word is
    a certain recogniser's ("GATE", not "CAME"); a vocabulary word beats a word that is none
    (the recogniser's read through its look-alikes: "KIII" is КПП), and of two vocabulary
    words the one of the engine whose reads agreed (tesseract's when both did); a word with
    a letter only Cyrillic has is tesseract's; otherwise a certain recogniser's Latin word."""
    from strongroom.media.labels import _look_cost

    if not r:
        return t
    if not t:
        return _vocabulary_word(r) or r
    if "-" in t and t.count("-") == r.count("-"):  # "ИК-13" and "WK-10": part by part
        return "-".join(_choose(a, b, t_sure=t_sure, r_sure=r_sure)
                        for a, b in zip(t.split("-"), r.split("-"), strict=True))
    t_word, r_word = _vocabulary_word(t), _vocabulary_word(r)
    if (t_word is not None and not any(c.isdigit() for c in t_word) and r.isascii()
            and _look_cost(r, t_word) == 0):
        return t_word  # the recogniser's look-alikes of a word it has no letters for (ШИЗО)
    if ((r_sure or not t_sure or _NUMBERED.fullmatch(t) is None) and r.isascii()
            and _NUMBERED.fullmatch(r) is not None
            and not (t_sure and _ONLY_CYRILLIC & set(t) and _digits(t) == _digits(r))):
        return r
    if r_sure and r_word is not None and r_word.isascii():
        return r_word  # a Latin word, the recogniser's
    if t_word is not None and r_word is not None and t_word != r_word:
        return r_word if r_sure and not t_sure else t_word
    if t_word is not None:
        return t_word
    if r_word is not None:
        return r_word
    if _ONLY_CYRILLIC & set(t):
        return t
    return r if r_sure and r.isascii() else t


def _confirmed(word: str, t: str, r: str, *, t_sure: bool, r_sure: bool) -> bool:
    """Whether both engines read `word`: tesseract's `t` is it, digits and letters it confuses
    aside ("022" for "D22"), and the recogniser's `r` is it or a read of it through look-alikes
    ("KIII" for "КПП"). A vocabulary word one engine read with certainty stands unless the
    other read another vocabulary word there or nothing at all (a number always needs both)."""
    from strongroom.media.labels import VOCABULARY, _look_cost, canonical

    if (word != r and r.isascii() and _NUMBERED.fullmatch(r) is not None
            and not any(c.isdigit() for c in word)):
        return False  # "WV30" for ШИЗО, "CH30" for СИЗО: that word, or a camera's number?
    if "-" in word and word.count("-") == t.count("-") == r.count("-"):
        return all(_confirmed(*parts, t_sure=t_sure, r_sure=r_sure) for parts in zip(
            word.split("-"), t.split("-"), r.split("-"), strict=True))

    def same(read: str, *, look: bool) -> bool:
        read = "".join(c for c in read if c.isalnum())
        if not read:
            return False
        if canonical(_vocabulary_word(read) or read) == word:
            return True
        if not look:
            # confusions count as the same ("022" for "D22"), but not all of a word ("D"
            # for "0": the camera's letter or its number?)
            return len(read) == len(word) and all(
                a == b or {a, b} in _TESSERACT_CONFUSES for a, b in zip(read, word, strict=True)
            ) and any(a == b for a, b in zip(read, word, strict=True))
        return not any(c.isdigit() for c in word) and _look_cost(read, word) <= len(word) // 4

    if same(t, look=False) and same(r, look=True):
        return True
    if word not in VOCABULARY or not t or not r:
        return False
    t_word, r_word = _vocabulary_word(t), _vocabulary_word(r)
    return ((t_sure and same(t, look=False) and (r_word is None or r_word == word))
            or (r_sure and same(r, look=True) and (t_word is None or t_word == word)))


#: Characters tesseract reads for one another in labels (a camera number's "D" as "0").
_TESSERACT_CONFUSES = [{"D", "0"}, {"O", "0"}, {"О", "0"}, {"I", "1"}, {"З", "3"}]


def _aligned(matcher: Any, n: int) -> list[int]:
    """For each position 0..n of the first sequence, the position in the second that lines
    up with it (monotone; replaced runs share out their length, deleted runs take none)."""
    where = [0] * (n + 1)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2 + 1):
            where[i] = j1 + (round((i - i1) * (j2 - j1) / (i2 - i1)) if i2 > i1 else j2 - j1)
    return where


def _touch(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


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
