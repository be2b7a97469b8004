"""Fixed-camera DVR clips with per-clip truth, deterministic from a seed (issue 12, point 6).

`testmedia` draws its overlays over moving test patterns, which hides the hard case: on a
real prison camera the walls, kerbs and windows are as still as the clock. Here the background
is a *static real photograph* shipped inside scikit-image's wheel (never one that `skimage.data`
would download), cropped and scaled to the frame, optionally grey and flat like a night
picture; a few small blurred figures walk slowly across it; seeded Gaussian sensor noise and
optional interlacing (combing on whatever moves) come next; the DVR's on-screen display is
drawn last, crisp, as a recorder adds it digitally after the sensor. Frames are made with
numpy/Pillow and piped as rawvideo into one ffmpeg, which encodes (optionally scaling down to
640×480 or 352×288 at a low bitrate, as a re-encoded copy looks).

Every clip comes with a `Truth`: the clock at video time 0, every clock value with the exact
frames that show it and the text as drawn, the label, where each overlay block is, the style,
and the status a reader should report (`ok`, or one of the bad inputs: `no_overlay`,
`clock_backwards`, `multiple_clocks`, `style_changed`). `corpus(seed, n, out_dir)` builds many
varied clips; `slice_specs()` is the small set the unit tests use.

Generator version 3 (the default) shapes the corpus like a DVR export: a few clips per
`Camera`, which fixes what a recorder fixes (resolution, fps, codec, overlay style and place,
label, the view), recorded on different days over ~90 days, 5 s to 2 min long, some of them
re-encoded copies. The pipeline needs that shape: an MM/DD/YYYY clock whose day is ≤ 12 is
ambiguous in one clip and is settled by another clip of the same camera, and per-clip fixed
costs weigh on 5–8 s clips as they never do on a real export. Version 2 (one camera per clip,
5–8 s) stays reproducible: `corpus_specs(seed, n, version=2)`.

Same spec, same frames, byte for byte (`frames(spec)`); the encoded files are byte-identical
too with the same ffmpeg/x264 build when the spec pins `encoder_threads=1`, as every clip of
generator 3 does (generator 2's clips keep the encoder threads they had, and x264 then
writes a different file on most runs: the same frames and truth, other compression noise).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from strongroom.media.run import DEVNULL, PIPE, stream_tool, which

__all__ = [
    "BACKGROUNDS",
    "CLOCK_FORMATS",
    "FONTS",
    "POSITIONS",
    "Camera",
    "ClipSpec",
    "Figure",
    "Reading",
    "Style",
    "Truth",
    "camera_clip",
    "cameras",
    "corpus",
    "corpus_specs",
    "frames",
    "make_clip",
    "random_spec",
    "render_block",
    "slice_specs",
    "truth_for",
]

#: Bumped whenever the same spec would draw different pixels or a seed draws another corpus;
#: written into truth.json.
GENERATOR_VERSION = 3  # 2: Liberation and Terminus fonts; texts laid out apart
#                        3: clips grouped by camera, 5 s to 2 min (version 2 still drawable)
VERSIONS = (2, 3)

_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
_LIBERATION = "/usr/share/fonts/truetype/liberation2"
_TERMINUS = "/usr/share/fonts/opentype/terminus"
#: Fonts of Debian packages `make apt` installs: fonts-dejavu-core (Cyrillic, Georgian,
#: Armenian), fonts-liberation2 (Cyrillic) and fonts-terminus-otb, a bitmap font like the
#: ones cheap recorders draw with (Cyrillic; no Georgian or Armenian glyphs).
FONTS: dict[str, str] = {
    "DejaVuSans": f"{_FONT_DIR}/DejaVuSans.ttf",
    "DejaVuSans-Bold": f"{_FONT_DIR}/DejaVuSans-Bold.ttf",
    "DejaVuSansMono": f"{_FONT_DIR}/DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold": f"{_FONT_DIR}/DejaVuSansMono-Bold.ttf",
    "DejaVuSerif": f"{_FONT_DIR}/DejaVuSerif.ttf",
    "DejaVuSerif-Bold": f"{_FONT_DIR}/DejaVuSerif-Bold.ttf",
    "LiberationSans": f"{_LIBERATION}/LiberationSans-Regular.ttf",
    "LiberationSans-Bold": f"{_LIBERATION}/LiberationSans-Bold.ttf",
    "LiberationMono": f"{_LIBERATION}/LiberationMono-Regular.ttf",
    "LiberationSerif": f"{_LIBERATION}/LiberationSerif-Regular.ttf",
    "Terminus": f"{_TERMINUS}/terminus-normal.otb",
    "Terminus-Bold": f"{_TERMINUS}/terminus-bold.otb",
}
#: The first draw picks among these (as generator version 1 did, so most clips stay as they
#: were); a second stream of the clip's own swaps a third of them to the others.
_BASE_FONTS = tuple(FONTS)[:6]
_MORE_FONTS = tuple(FONTS)[6:]

#: Photographs inside the scikit-image wheel (checked to load with the network cut off). Some
#: `skimage.data` images are fetched with pooch on first use: those must never be listed here.
BACKGROUNDS: tuple[str, ...] = (
    "camera", "rocket", "brick", "gravel", "grass", "coffee", "astronaut", "chelsea",
    "coins", "hubble_deep_field", "moon", "clock",
)

Position = Literal["top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom"]
POSITIONS: tuple[Position, ...] = (
    "top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom",
)
Decoration = Literal["outline", "shadow", "box"]
Fill = Literal["white", "yellow"]
Status = Literal["ok", "no_overlay", "clock_backwards", "multiple_clocks", "style_changed"]
Codec = Literal["h264", "mpeg4"]

_FILL_RGB: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "yellow": (255, 235, 0)}

# --- clock formats -------------------------------------------------------------------------
# Written out by hand rather than with strftime: %b/%a follow the process locale, and a
# fixture must not change with the machine that makes it.

_RU_MONTHS = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RU_DAYS = ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс")
_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _date(pattern: str, d: datetime) -> str:
    ru_m, en_m = _RU_MONTHS[d.month - 1], _EN_MONTHS[d.month - 1]
    ru_d, en_d = _RU_DAYS[d.weekday()], _EN_DAYS[d.weekday()]
    table = {
        "DD-MM-YYYY": f"{d:%d-%m-%Y}",
        "YYYY-MM-DD": f"{d:%Y-%m-%d}",
        "DD.MM.YYYY": f"{d:%d.%m.%Y}",
        "YYYY/MM/DD": f"{d:%Y/%m/%d}",
        "MM/DD/YYYY": f"{d:%m/%d/%Y}",
        "YYYY-MM-DD Ddd": f"{d:%Y-%m-%d} {en_d}",
        "DD-MM-YYYY Дн": f"{d:%d-%m-%Y} {ru_d}",
        "DD мес YYYY": f"{d.day:02d} {ru_m} {d.year}",
        "Дн DD мес YYYY": f"{ru_d} {d.day:02d} {ru_m} {d.year}",
        "DD Mon YYYY": f"{d.day:02d} {en_m} {d.year}",
        "Ddd DD Mon YYYY": f"{en_d} {d.day:02d} {en_m} {d.year}",
    }
    return table[pattern]


def _time(pattern: str, d: datetime) -> str:
    if pattern == "HH:MM:SS":
        return f"{d:%H:%M:%S}"
    hour = d.hour % 12 or 12
    return f"{hour:02d}:{d:%M:%S} {'AM' if d.hour < 12 else 'PM'}"


#: Every clock format drawn, named by its pattern (date part, space, time part). A two-line
#: clock puts the date part on the first line and the time on the second.
CLOCK_FORMATS: tuple[str, ...] = (
    "DD-MM-YYYY HH:MM:SS",
    "YYYY-MM-DD HH:MM:SS",
    "DD.MM.YYYY HH:MM:SS",
    "YYYY/MM/DD HH:MM:SS",
    "MM/DD/YYYY hh:mm:ss AM/PM",
    "YYYY-MM-DD Ddd HH:MM:SS",
    "DD-MM-YYYY Дн HH:MM:SS",
    "DD мес YYYY HH:MM:SS",
    "Дн DD мес YYYY HH:MM:SS",
    "DD Mon YYYY HH:MM:SS",
    "Ddd DD Mon YYYY hh:mm:ss AM/PM",
    "YYYY-MM-DD hh:mm:ss AM/PM",
)


def _split_format(name: str) -> tuple[str, str]:
    if name.endswith(" hh:mm:ss AM/PM"):
        return name.removesuffix(" hh:mm:ss AM/PM"), "hh:mm:ss AM/PM"
    return name.removesuffix(" HH:MM:SS"), "HH:MM:SS"


def clock_text(fmt: str, when: datetime, *, two_lines: bool) -> list[str]:
    """The lines a DVR set to `fmt` draws at wall-clock time `when`."""
    date_part, time_part = _split_format(fmt)
    date, time = _date(date_part, when), _time(time_part, when)
    return [date, time] if two_lines else [f"{date} {time}"]


# --- specs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How a recorder draws its on-screen display: one style for clock and label alike."""

    clock_format: str = "DD-MM-YYYY HH:MM:SS"
    two_lines: bool = False
    font: str = "DejaVuSans"
    size: int = 20
    fill: Fill = "white"
    decoration: Decoration = "outline"
    #: False draws 1-bit glyphs, like the bitmap fonts of cheap recorders
    antialias: bool = True
    clock_position: Position = "top-left"
    label_position: Position = "bottom-left"
    #: when clock and label share a corner: which comes first, reading top down
    label_first: bool = False
    #: distance from the frame edge, in pixels
    margin: int = 12

    def __post_init__(self) -> None:
        if self.clock_format not in CLOCK_FORMATS:
            raise ValueError(f"unknown clock_format {self.clock_format!r}")
        if self.font not in FONTS:
            raise ValueError(f"unknown font {self.font!r}")
        if not 8 <= self.size <= 64:
            raise ValueError(f"size must be 8..64 px, got {self.size}")
        if self.fill not in _FILL_RGB:
            raise ValueError(f"unknown fill {self.fill!r}")
        if self.decoration not in ("outline", "shadow", "box"):
            raise ValueError(f"unknown decoration {self.decoration!r}")
        for pos in (self.clock_position, self.label_position):
            if pos not in POSITIONS:
                raise ValueError(f"unknown position {pos!r}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")


@dataclass(frozen=True)
class Figure:
    """A small dark blurred person walking in a straight line (positions in source pixels,
    the figure's top-left corner; speed in pixels per second)."""

    x: float
    y: float
    vx: float
    vy: float
    height: int
    shade: int = 40


@dataclass(frozen=True)
class ClipSpec:
    """One fixed-camera recording; with `bad` one of the broken cases a leak contains."""

    name: str
    seed: int = 0
    size: tuple[int, int] = (768, 576)
    #: frames per second as a string, so that 12.5 (25/2) stays exact
    fps: str = "10"
    duration: float = 6.0
    background: str = "camera"
    #: crop of the photograph, as fractions of its width and height: x, y, w, h
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    night: bool = False
    noise: float = 3.0
    interlaced: bool = False
    figures: tuple[Figure, ...] = ()
    #: the DVR clock at the first frame; `clock_phase` of a second has already gone by
    clock_start: datetime = datetime(2020, 3, 14, 2, 17, 5)
    clock_phase: float = 0.0
    label: str = "КАМ 03 ПРОГУЛОЧНЫЙ ДВОР"
    style: Style = field(default_factory=Style)
    bad: Status = "ok"
    #: clock_backwards: the clock jumps back by `jump_seconds` at tick number `event_tick`;
    #: style_changed: `style2` starts at that tick
    event_tick: int = 3
    jump_seconds: int = 3600
    style2: Style | None = None
    #: multiple_clocks: the second clock's style and its offset from the first, in seconds
    second_clock: Style | None = None
    second_clock_offset: int = 0
    codec: Codec = "h264"
    #: bits per second of the encode, e.g. 300_000
    bitrate: int = 1_000_000
    #: scale to this size while encoding: a re-encoded copy (640×480, 352×288); None = native
    output_size: tuple[int, int] | None = None
    #: 1: both encoders in one thread, the same bytes on every run (generator 3). None: as
    #: generator 2 encoded, x264 in 2 threads (a new file on most runs, the same truth) and
    #: mpeg4 in as many as ffmpeg picks for the machine
    encoder_threads: int | None = None
    #: the camera that recorded it (a `Camera` id such as "cam07"); "" = a camera of its own
    camera: str = ""

    def __post_init__(self) -> None:
        if not self.name or Path(self.name).name != self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain file name, got {self.name!r}")
        width, height = self.size
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"size must be positive and even, got {self.size}")
        if self.output_size is not None and (
                self.output_size[0] <= 0 or self.output_size[1] <= 0
                or self.output_size[0] % 2 or self.output_size[1] % 2):
            raise ValueError(f"output_size must be positive and even, got {self.output_size}")
        if self.fps_fraction <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.duration <= 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")
        if not 0.0 <= self.clock_phase < 1.0:
            raise ValueError(f"clock_phase must be in [0, 1), got {self.clock_phase}")
        if self.bad not in ("ok", "no_overlay", "clock_backwards", "multiple_clocks",
                            "style_changed"):
            raise ValueError(f"unknown bad {self.bad!r}")
        if self.bad == "style_changed" and self.style2 is None:
            raise ValueError("style_changed needs style2")
        if self.bad == "multiple_clocks" and self.second_clock is None:
            raise ValueError("multiple_clocks needs second_clock")
        if self.codec not in ("h264", "mpeg4"):
            raise ValueError(f"unknown codec {self.codec!r}")
        if self.encoder_threads is not None and self.encoder_threads < 1:
            raise ValueError(f"encoder_threads must be >= 1, got {self.encoder_threads}")

    @property
    def fps_fraction(self) -> Fraction:
        return Fraction(self.fps)

    @property
    def frame_count(self) -> int:
        return max(1, round(self.duration * self.fps_fraction))

    @property
    def out_size(self) -> tuple[int, int]:
        return self.output_size or self.size


# --- truth -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One clock value as drawn: frames `first_frame`..`last_frame` (inclusive) show `text`,
    i.e. video time [t0, t1)."""

    clock: str  # ISO wall-clock time, to the second
    text: list[str]
    first_frame: int
    last_frame: int
    t0: float
    t1: float


@dataclass(frozen=True)
class OverlayTruth:
    """One block of text on screen for part of the clip (box in output pixels, x0 y0 x1 y1,
    x1/y1 exclusive, outline, shadow or box included)."""

    role: Literal["clock", "label", "second_clock"]
    first_frame: int
    last_frame: int
    box: list[int]
    #: the same box in the source frame, before any re-encode's scaling
    source_box: list[int]
    #: the font size as it lands in the output (a 352×288 re-encode halves it): below ~10 px
    #: a clock may be unreadable, and a benchmark should count it apart
    output_font_px: float
    style: dict[str, Any]
    text: list[str] | None = None  # a label's lines
    clock_format: str | None = None
    readings: list[Reading] | None = None


@dataclass(frozen=True)
class Truth:
    """What a perfect reader would report for one clip; `asdict` gives its JSON."""

    name: str
    #: the camera id; a clip without one (generator version 2) is its own camera, by name
    camera: str
    status: Status
    width: int
    height: int
    fps: str
    frames: int
    duration: float
    #: the primary clock's reading at video time 0, fraction of a second included (ISO)
    clock_at_zero: str | None
    clock_format: str | None
    #: the primary clock, one entry per displayed value, in video order (a backwards jump
    #: shows up as a reading earlier than the one before it)
    readings: list[Reading]
    label: str | None
    overlays: list[OverlayTruth]
    #: where the figures move (output pixels, x0 y0 x1 y1), None without figures
    moving_box: list[int] | None
    spec: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _spec_json(spec: ClipSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["clock_start"] = spec.clock_start.isoformat()
    return data


# --- text rendering ------------------------------------------------------------------------


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """The font at `size` px; a bitmap font (Terminus) has a few sizes only: the nearest."""
    if not FONTS[name].endswith(".otb"):
        return ImageFont.truetype(FONTS[name], size)
    for near in sorted(range(8, 40), key=lambda n: (abs(n - size), n)):
        try:
            return ImageFont.truetype(FONTS[name], near)
        except OSError:  # "invalid pixel size": no strike of that size
            continue
    raise ValueError(f"no size of {name} near {size} px")


def _pads(style: Style) -> tuple[int, int]:
    """Extra pixels around the text for outline/shadow (all sides) or box padding."""
    stroke = max(1, style.size // 12)
    if style.decoration == "outline":
        return stroke, stroke
    if style.decoration == "shadow":
        return 0, max(1, style.size // 14)
    return max(2, style.size // 6), 0


def _block_size(lines_set: Sequence[Sequence[str]], style: Style) -> tuple[int, int]:
    """Width and height of a block big enough for every text in `lines_set`, so that a clock
    whose width changes with the digits still sits at one fixed place, as on a DVR."""
    font = _font(style.font, style.size)
    ascent, descent = font.getmetrics()
    line_h = ascent + descent
    width = max(math.ceil(font.getlength(line)) for lines in lines_set for line in lines)
    rows = max(len(lines) for lines in lines_set)
    pad, shadow = _pads(style)
    return width + 2 * pad + shadow, rows * line_h + 2 * pad + shadow


def render_block(lines: Sequence[str], style: Style, size: tuple[int, int]
                 ) -> NDArray[np.uint8]:
    """The overlay block as RGBA (height × width × 4): what the DVR stamps on the picture.

    Public so that tests can draw a truth text again and compare it with the clip."""
    width, height = size
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.fontmode = "L" if style.antialias else "1"
    font = _font(style.font, style.size)
    ascent, descent = font.getmetrics()
    pad, shadow = _pads(style)
    fill = (*_FILL_RGB[style.fill], 255)
    if style.decoration == "box":
        draw.rectangle((0, 0, width - 1, height - 1), fill=(16, 16, 16, 255))
    for i, line in enumerate(lines):
        xy = (pad, pad + i * (ascent + descent))
        if style.decoration == "shadow":
            draw.text((xy[0] + shadow, xy[1] + shadow), line, font=font, fill=(0, 0, 0, 255))
            draw.text(xy, line, font=font, fill=fill)
        elif style.decoration == "outline" and FONTS[style.font].endswith(".otb"):
            # a bitmap font cannot be stroked: the outline is the glyphs drawn around them
            for dx in range(-pad, pad + 1):
                for dy in range(-pad, pad + 1):
                    if dx or dy:
                        draw.text((xy[0] + dx, xy[1] + dy), line, font=font,
                                  fill=(0, 0, 0, 255))
            draw.text(xy, line, font=font, fill=fill)
        elif style.decoration == "outline":
            draw.text(xy, line, font=font, fill=fill, stroke_width=pad,
                      stroke_fill=(0, 0, 0, 255))
        else:
            draw.text(xy, line, font=font, fill=fill)
    return np.asarray(img, dtype=np.uint8)


def _anchor(position: Position, block: tuple[int, int], frame: tuple[int, int],
            margin: int) -> tuple[int, int]:
    (bw, bh), (fw, fh) = block, frame
    if position in ("top", "bottom"):
        x = (fw - bw) // 2
    elif position.endswith("left"):
        x = margin
    else:
        x = fw - margin - bw
    y = margin if position.startswith("top") else fh - margin - bh
    return max(0, x), max(0, y)


# --- the plan: what is drawn where and when -------------------------------------------------


@dataclass
class _Block:
    role: Literal["clock", "label", "second_clock"]
    style: Style
    first_frame: int
    last_frame: int
    #: frame index → lines (clocks), or fixed lines (labels)
    texts: list[list[str]]
    frame_text: NDArray[np.int32]  # per frame in [first, last]: index into texts
    size: tuple[int, int] = (0, 0)
    xy: tuple[int, int] = (0, 0)
    readings: list[Reading] = field(default_factory=list)
    clock_format: str | None = None


def _ticks(spec: ClipSpec) -> NDArray[np.int64]:
    """The tick number (whole seconds since the clock's first value) shown on each frame."""
    fps = spec.fps_fraction
    phase = Fraction(spec.clock_phase).limit_denominator(1000)
    return np.array([math.floor(phase + Fraction(i) / fps) for i in range(spec.frame_count)],
                    dtype=np.int64)


def _clock_block(spec: ClipSpec, role: Literal["clock", "second_clock"], style: Style,
                 first: int, last: int, offset: int) -> _Block:
    ticks = _ticks(spec)
    texts: list[list[str]] = []
    index = np.zeros(last - first + 1, dtype=np.int32)
    readings: list[Reading] = []
    fps = spec.fps_fraction
    current: tuple[int, int] | None = None  # (seconds shown, start frame)
    for i in range(first, last + 1):
        seconds = int(ticks[i]) + offset
        if spec.bad == "clock_backwards" and role == "clock" and ticks[i] >= spec.event_tick:
            seconds -= spec.jump_seconds
        if current is None or current[0] != seconds:
            when = spec.clock_start + timedelta(seconds=seconds)
            texts.append(clock_text(style.clock_format, when, two_lines=style.two_lines))
            readings.append(Reading(clock=when.isoformat(), text=texts[-1], first_frame=i,
                                    last_frame=i, t0=float(Fraction(i) / fps), t1=0.0))
            current = (seconds, i)
        index[i - first] = len(texts) - 1
        readings[-1] = replace(readings[-1], last_frame=i, t1=float(Fraction(i + 1) / fps))
    return _Block(role=role, style=style, first_frame=first, last_frame=last, texts=texts,
                  frame_text=index, readings=readings, clock_format=style.clock_format)


def _label_block(spec: ClipSpec, style: Style, first: int, last: int) -> _Block:
    return _Block(role="label", style=style, first_frame=first, last_frame=last,
                  texts=[[spec.label]], frame_text=np.zeros(last - first + 1, dtype=np.int32))


def _place(blocks: list[_Block], frame: tuple[int, int]) -> None:
    """Size every block and put it in its corner; blocks sharing a corner (in the same time
    span) are stacked with a small gap, in the order given."""
    for b in blocks:
        b.size = _block_size(b.texts, b.style)
    groups: dict[tuple[Position, int], list[_Block]] = {}
    for b in blocks:
        pos: Position = (b.style.label_position if b.role == "label"
                         else b.style.clock_position)
        groups.setdefault((pos, b.first_frame), []).append(b)
    placed: list[_Block] = []
    for (where, first), members in groups.items():
        style = members[0].style
        if style.label_first:
            members.sort(key=lambda b: b.role != "label")
        gap = max(2, style.size // 5)
        width = max(b.size[0] for b in members)
        height = sum(b.size[1] for b in members) + gap * (len(members) - 1)
        x0, y0 = _anchor(where, (width, height), frame, style.margin)
        # a recorder lays its texts out apart: a group that would cover one already placed
        # (a wide label in one top corner, the clock in the other) moves away from its edge
        down = 1 if where.startswith("top") else -1
        for _ in range(len(placed)):
            box = (x0, y0, x0 + width, y0 + height)
            hit = [o for o in placed if o.first_frame == first and _intersects(box, o)]
            if not hit:
                break
            y0 = (max(o.xy[1] + o.size[1] for o in hit) + gap if down > 0
                  else min(o.xy[1] for o in hit) - gap - height)
        y = y0
        for b in members:
            bx = x0 + (width - b.size[0]) if where.endswith("right") else x0
            if where in ("top", "bottom"):
                bx = x0 + (width - b.size[0]) // 2
            b.xy = (bx, y)
            y += b.size[1] + gap
        placed += members


def _intersects(box: tuple[int, int, int, int], b: _Block) -> bool:
    x0, y0 = b.xy
    return (min(box[2], x0 + b.size[0]) > max(box[0], x0)
            and min(box[3], y0 + b.size[1]) > max(box[1], y0))


def _plan(spec: ClipSpec) -> list[_Block]:
    last = spec.frame_count - 1
    if spec.bad == "no_overlay":
        return []
    if spec.bad == "style_changed":
        style2 = spec.style2
        if style2 is None:  # checked in ClipSpec; keeps mypy's narrowing honest
            raise ValueError("style_changed needs style2")
        ticks = _ticks(spec)
        cut = int(np.searchsorted(ticks, spec.event_tick))
        if not 0 < cut <= last:
            raise ValueError(f"event_tick {spec.event_tick} is outside the clip")
        blocks = [
            _clock_block(spec, "clock", spec.style, 0, cut - 1, 0),
            _label_block(spec, spec.style, 0, cut - 1),
            _clock_block(spec, "clock", style2, cut, last, 0),
            _label_block(spec, style2, cut, last),
        ]
    else:
        if spec.bad == "clock_backwards" and not 0 < spec.event_tick <= int(_ticks(spec)[-1]):
            raise ValueError(f"event_tick {spec.event_tick} is outside the clip")
        blocks = [_clock_block(spec, "clock", spec.style, 0, last, 0),
                  _label_block(spec, spec.style, 0, last)]
        if spec.bad == "multiple_clocks" and spec.second_clock is not None:
            blocks.append(_clock_block(spec, "second_clock", spec.second_clock, 0, last,
                                       spec.second_clock_offset))
    _place(blocks, spec.size)
    return blocks


# --- pictures ------------------------------------------------------------------------------


@cache
def _photo(name: str) -> NDArray[np.uint8]:
    """A bundled photograph as RGB uint8. Imported here: skimage is slow to import and only
    fixtures need it."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = np.clip(img * 255 if img.max() <= 1.0 else img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _background(spec: ClipSpec) -> NDArray[np.uint8]:
    photo = Image.fromarray(_photo(spec.background))
    pw, ph = photo.size
    cx, cy, cw, ch = spec.crop
    box = (round(cx * pw), round(cy * ph), round((cx + cw) * pw), round((cy + ch) * ph))
    frame = photo.crop(box).resize(spec.size, Image.Resampling.BICUBIC)
    if spec.night:
        grey = np.asarray(frame.convert("L"), dtype=np.float32)
        # the flat, dim picture of an IR camera at night: contrast squeezed around a low mean
        grey = 70.0 + (grey - float(grey.mean())) * 0.45
        frame = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(0.8)).convert("RGB")
    return np.array(frame, dtype=np.uint8)


@cache
def _sprite(height: int) -> NDArray[np.float32]:
    """Alpha mask of a blurred standing person, `height` pixels tall."""
    width = max(4, round(height * 0.4))
    img = Image.new("L", (width + 4, height + 4), 0)
    draw = ImageDraw.Draw(img)
    head = max(2, round(height * 0.16))
    cx = (width + 4) / 2
    draw.ellipse((cx - head / 2, 2, cx + head / 2, 2 + head), fill=230)
    draw.ellipse((2, 2 + head * 0.8, width + 2, height + 2), fill=230)
    img = img.filter(ImageFilter.GaussianBlur(max(0.8, height / 30)))
    return np.asarray(img, dtype=np.float32) / 255.0


def _figure_xy(fig: Figure, t: float) -> tuple[int, int]:
    bob = 0.04 * fig.height * math.sin(2 * math.pi * 1.8 * t)  # a walker's gait
    return round(fig.x + fig.vx * t), round(fig.y + fig.vy * t + bob)


def _draw_figures(frame: NDArray[np.uint8], figures: Sequence[Figure], t: float) -> None:
    fh, fw = frame.shape[:2]
    for fig in figures:
        alpha = _sprite(fig.height)
        x, y = _figure_xy(fig, t)
        sh, sw = alpha.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + sw), min(fh, y + sh)
        if x0 >= x1 or y0 >= y1:
            continue
        a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = (region * (1 - a) + fig.shade * a + 0.5).astype(np.uint8)


def _moving_box(spec: ClipSpec) -> list[int] | None:
    if not spec.figures:
        return None
    fps = float(spec.fps_fraction)
    fw, fh = spec.size
    xs0, ys0, xs1, ys1 = [], [], [], []
    for fig in spec.figures:
        sh, sw = _sprite(fig.height).shape
        for i in range(spec.frame_count):
            for t in (i / fps, (i + 0.5) / fps):
                x, y = _figure_xy(fig, t)
                xs0.append(x)
                ys0.append(y)
                xs1.append(x + sw)
                ys1.append(y + sh)
    box = [max(0, min(xs0)), max(0, min(ys0)), min(fw, max(xs1)), min(fh, max(ys1))]
    return _scale_box(box, spec)


def _scale_box(box: list[int], spec: ClipSpec) -> list[int]:
    """A box in source pixels as a box in output pixels (rounded outwards)."""
    (sw, sh), (ow, oh) = spec.size, spec.out_size
    return [math.floor(box[0] * ow / sw), math.floor(box[1] * oh / sh),
            math.ceil(box[2] * ow / sw), math.ceil(box[3] * oh / sh)]


#: Noise comes from a few pre-drawn Gaussian fields, read at a fresh random offset each frame:
#: every pixel of every frame is still N(0, σ), at ~1.5 ms a 768×576 frame against ~6 ms for
#: fresh draws (measured on 2 cores) — most of a clip's generation time otherwise.
_NOISE_FIELDS = 4
_NOISE_SLACK = 64


def frames(spec: ClipSpec) -> Iterator[NDArray[np.uint8]]:
    """Every frame of `spec` as RGB uint8 (height × width × 3) at the source size, before
    encoding. The same spec gives the same bytes on any machine with the same numpy and Pillow.
    Each yielded array is reused for the next frame: copy it to keep it."""
    width, height = spec.size
    rng = np.random.default_rng([spec.seed, 0x0CC7])
    base = _background(spec)
    fields = [
        np.rint(rng.standard_normal((height + _NOISE_SLACK, width + _NOISE_SLACK),
                                    dtype=np.float32) * spec.noise).astype(np.int16)
        for _ in range(_NOISE_FIELDS)
    ] if spec.noise > 0 else []
    blocks = _plan(spec)
    tiles: dict[tuple[int, int], tuple[NDArray[np.float32], NDArray[np.float32]]] = {}
    fps = float(spec.fps_fraction)
    scene = np.empty_like(base)
    second = np.empty_like(base)
    work = np.empty(base.shape, dtype=np.int16)
    out = np.empty_like(base)
    for i in range(spec.frame_count):
        t = i / fps
        np.copyto(scene, base)
        _draw_figures(scene, spec.figures, t)
        if spec.interlaced:
            # the odd field is exposed half a frame later: whatever moves is combed
            np.copyto(second, base)
            _draw_figures(second, spec.figures, t + 0.5 / fps)
            scene[1::2] = second[1::2]
        if fields:
            k, dy, dx = rng.integers(0, (_NOISE_FIELDS, _NOISE_SLACK, _NOISE_SLACK))
            noise = fields[int(k)][dy:dy + height, dx:dx + width]
            np.add(scene, noise[:, :, None], out=work, dtype=np.int16)
            np.clip(work, 0, 255, out=work)
            out[...] = work
        else:
            np.copyto(out, scene)
        for bi, block in enumerate(blocks):
            if not block.first_frame <= i <= block.last_frame:
                continue
            ti = int(block.frame_text[i - block.first_frame])
            tile = tiles.get((bi, ti))
            if tile is None:
                rgba = render_block(block.texts[ti], block.style, block.size).astype(np.float32)
                a = rgba[:, :, 3:] / 255.0
                tile = (rgba[:, :, :3] * a, 1.0 - a)
                tiles[(bi, ti)] = tile
            premult, keep = tile
            x, y = block.xy
            bh, bw = keep.shape[:2]
            bh, bw = min(bh, height - y), min(bw, width - x)
            region = out[y:y + bh, x:x + bw]
            region[...] = (region * keep[:bh, :bw] + premult[:bh, :bw] + 0.5).astype(np.uint8)
        yield out


def truth_for(spec: ClipSpec) -> Truth:
    """The truth of `spec` without rendering a frame."""
    blocks = _plan(spec)
    boxes = [[b.xy[0], b.xy[1], min(spec.size[0], b.xy[0] + b.size[0]),
              min(spec.size[1], b.xy[1] + b.size[1])] for b in blocks]
    overlays = [
        OverlayTruth(
            role=b.role, first_frame=b.first_frame, last_frame=b.last_frame,
            box=_scale_box(box, spec), source_box=box, style=asdict(b.style),
            output_font_px=round(b.style.size * spec.out_size[1] / spec.size[1], 1),
            text=b.texts[0] if b.role == "label" else None,
            clock_format=b.clock_format,
            readings=b.readings or None,
        )
        for b, box in zip(blocks, boxes, strict=True)
    ]
    clocks = [b for b in blocks if b.role == "clock"]
    readings = [r for b in clocks for r in b.readings]
    at_zero = None
    if clocks:
        at_zero = (spec.clock_start + timedelta(seconds=spec.clock_phase)).isoformat(
            timespec="milliseconds")
    width, height = spec.out_size
    return Truth(
        name=spec.name, camera=spec.camera or Path(spec.name).stem, status=spec.bad,
        width=width, height=height, fps=spec.fps, frames=spec.frame_count,
        duration=float(spec.frame_count / spec.fps_fraction),
        clock_at_zero=at_zero, clock_format=clocks[0].clock_format if clocks else None,
        readings=readings, label=spec.label if blocks else None, overlays=overlays,
        moving_box=_moving_box(spec), spec=_spec_json(spec),
    )


# --- encoding ------------------------------------------------------------------------------


def _encoder_args(spec: ClipSpec) -> list[str]:
    rate = str(spec.bitrate)
    gop = str(max(1, round(2 * spec.fps_fraction)))  # DVRs put a keyframe every 1–2 s
    # x264 (ffmpeg 5.1, Debian 12) in 2 frame threads with VBV wrote a different file on every
    # run for 5 of 8 unscaled clips tried; in one thread, the same bytes every time, at about
    # the same speed (a 768×576 8 s clip: 1.17 s against 1.19 s on a busy 2-core machine), and
    # `corpus` runs one clip per core. ffmpeg's mpeg4 cuts a frame into a slice per thread,
    # and picks its threads by the machine's cores. Generator 2's clips keep their old
    # threads: the OCR tests' fixtures were tuned on those encodes (clip 126 of seed 7 loses
    # its later clock readings when encoded in one thread).
    pin = [] if spec.encoder_threads is None else ["-threads", str(spec.encoder_threads)]
    if spec.codec == "mpeg4":
        return ["-c:v", "mpeg4", "-b:v", rate, "-g", gop, *pin]
    return ["-c:v", "libx264", "-preset", "superfast", "-b:v", rate, "-maxrate", rate,
            "-bufsize", str(2 * spec.bitrate), "-g", gop, *(pin or ["-threads", "2"])]


def make_clip(spec: ClipSpec, path: Path) -> Truth:
    """Render `spec` into the MP4 `path` (replaced only once complete) and return its truth."""
    truth = truth_for(spec)
    width, height = spec.size
    argv = [which("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", spec.fps, "-i", "-"]
    vf = []
    if spec.output_size is not None:
        vf.append(f"scale={spec.output_size[0]}:{spec.output_size[1]}:flags=bicubic")
    vf.append("format=yuv420p")
    argv += ["-vf", ",".join(vf), *_encoder_args(spec), "-an",
             "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    tmp.unlink(missing_ok=True)
    try:
        with stream_tool([*argv, "-f", "mp4", str(tmp)], stdin=PIPE, stdout=DEVNULL,
                         stall=60, what=f"cctv fixture {spec.name}") as tool:
            for frame in frames(spec):
                tool.stdin.write(frame.data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return truth


# --- corpus --------------------------------------------------------------------------------

_PLACES_RU = (
    "ПРОГУЛОЧНЫЙ ДВОР", "КОРИДОР 2", "ШИЗО", "ПКТ", "ДЕЖУРНАЯ ЧАСТЬ", "КПП", "ПЛАЦ",
    "СТОЛОВАЯ", "ЛОКАЛЬНЫЙ УЧАСТОК", "ОТРЯД 3", "КАРАНТИН", "ПФРСИ", "ЕПКТ", "ПЕРИМЕТР",
    "ЖИЛАЯ ЗОНА", "КОРПУС 1 ЭТАЖ 2", "КАМЕРА 14", "ИК-10",
)
_PLACES_EN = ("YARD", "CORRIDOR 2", "GATE", "ENTRANCE", "BLOCK A", "FLOOR 3")
_OTHER_SCRIPTS = ("კამერა 3 ეზო", "ՏԵՍԱԽՑԻԿ 2", "КАМЕРА 5 ҚАҚПА", "Камера 7 Двір")


def _label(rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 33))
    ru = str(rng.choice(_PLACES_RU))
    en = str(rng.choice(_PLACES_EN))
    choices = [
        f"КАМ {n:02d} {ru}", f"CAM {n} {ru}", f"Камера {n}", f"КАМЕРА {n:02d} {ru}",
        f"CH{n:02d} {ru}", f"CAM {n:02d} {en}", f"Camera {n}", f"D{n} {ru}",
    ]
    if rng.random() < 0.05:
        return str(rng.choice(_OTHER_SCRIPTS))
    return choices[int(rng.integers(len(choices)))]


def _style(rng: np.random.Generator, height: int) -> Style:
    lo, hi = (12, 16) if height <= 288 else (14, 32)
    clock_pos = POSITIONS[int(rng.integers(len(POSITIONS)))]
    label_pos = clock_pos if rng.random() < 0.35 else POSITIONS[int(rng.integers(len(POSITIONS)))]
    decorations: tuple[Decoration, ...] = ("outline", "shadow", "box")
    fills: tuple[Fill, ...] = ("white", "white", "yellow")
    return Style(
        clock_format=CLOCK_FORMATS[int(rng.integers(len(CLOCK_FORMATS)))],
        two_lines=bool(rng.random() < 0.25),
        font=_BASE_FONTS[int(rng.integers(len(_BASE_FONTS)))],
        size=int(rng.integers(lo, hi + 1)),
        fill=fills[int(rng.integers(len(fills)))],
        decoration=decorations[int(rng.integers(len(decorations)))],
        antialias=bool(rng.random() < 0.7),
        clock_position=clock_pos,
        label_position=label_pos,
        label_first=bool(rng.random() < 0.5),
        margin=int(rng.integers(4, 25)),
    )


def _figures(rng: np.random.Generator, size: tuple[int, int], duration: float
             ) -> tuple[Figure, ...]:
    width, height = size
    out = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3, 4]))):
        h = int(rng.integers(height // 14, height // 7))
        speed = float(rng.uniform(0.2, 0.8)) * h  # a person covers ~0.8 heights a second
        angle = float(rng.uniform(0, 2 * math.pi))
        vx, vy = speed * math.cos(angle), 0.35 * speed * math.sin(angle)  # ground seen obliquely
        x = float(rng.uniform(0.15, 0.85)) * width - vx * duration / 2
        y = float(rng.uniform(0.3, 0.7)) * height - h / 2 - vy * duration / 2
        out.append(Figure(x=x, y=y, vx=vx, vy=vy, height=h, shade=int(rng.integers(15, 70))))
    return tuple(out)


def random_spec(seed: int, index: int, *, bad: Status | None = None,
                duration: float | None = None) -> ClipSpec:
    """Clip number `index` of the corpus of `seed`: every choice drawn from its own stream,
    so adding clips never changes the earlier ones."""
    rng = np.random.default_rng([seed, index])
    if bad is None:
        roll = float(rng.random())
        kinds: tuple[Status, ...] = ("no_overlay", "clock_backwards", "multiple_clocks",
                                     "style_changed")
        bad = kinds[int(roll * 20)] if roll < 0.2 else "ok"
    cif = rng.random() < 0.12
    size = (352, 288) if cif else ((768, 576), (704, 576), (720, 576))[int(rng.integers(3))]
    output_size: tuple[int, int] | None = None
    reencode = not cif and rng.random() < 0.3
    if reencode:
        output_size = ((640, 480), (352, 288))[int(rng.integers(2))]
    fps = ("25", "25/2", "10", "15", "6")[int(rng.integers(5))]
    if duration is None:
        duration = float(rng.integers(5, 9))
    night = bool(rng.random() < 0.35)
    scale = float(rng.uniform(0.55, 1.0))
    style = _style(rng, size[1])
    phase = round(float(rng.uniform(0, 1)), 1) % 1.0
    frame_count = max(1, round(duration * Fraction(fps)))
    last_tick = math.floor(Fraction(phase).limit_denominator(1000)
                           + Fraction(frame_count - 1) / Fraction(fps))
    if bad in ("clock_backwards", "style_changed") and last_tick < 1:
        raise ValueError(f"a {bad} clip needs more than one clock value; duration {duration}")
    lo = max(1, last_tick // 3)
    event_tick = int(rng.integers(lo, max(lo, last_tick - 1) + 1))
    start = datetime(2018, 1, 1) + timedelta(seconds=int(rng.integers(0, 6 * 365 * 86400)))
    style2 = _style(rng, size[1]) if bad == "style_changed" else None
    second, offset = (_second_clock(rng, style, size[1]) if bad == "multiple_clocks"
                      else (None, 0))
    spec = ClipSpec(
        name=f"cctv_{index:04d}.mp4",
        seed=int(rng.integers(2**31)),
        size=size,
        fps=fps,
        duration=duration,
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        crop=(float(rng.uniform(0, 1 - scale)), float(rng.uniform(0, 1 - scale)), scale, scale),
        night=night,
        noise=float(rng.uniform(4, 10) if night else rng.uniform(1, 4)),
        interlaced=bool(rng.random() < 0.25),
        figures=_figures(rng, size, duration),
        clock_start=start,
        clock_phase=phase,
        label=_label(rng),
        style=style,
        bad=bad,
        event_tick=event_tick,
        jump_seconds=int(rng.choice([3600, 3600, int(rng.integers(2, 900))])),
        codec="mpeg4" if rng.random() < 0.15 else "h264",
        bitrate=int(rng.integers(150, 500) if (cif or reencode) else rng.integers(400, 1500))
        * 1000,
        output_size=output_size,
        style2=style2,
        second_clock=second,
        second_clock_offset=offset,
    )
    return replace(spec, style=_more_fonts(np.random.default_rng([seed, index, 1]), spec.style,
                                           spec.label))


def _more_fonts(more: np.random.Generator, style: Style, label: str) -> Style:
    """A third of the styles in a Liberation or the bitmap Terminus font (which lack Georgian
    and Armenian: those labels keep DejaVu), drawn from `more`, a stream of their own."""
    if more.random() < 0.35 and all(ord(c) < 0x0530 for c in label):
        return replace(style, font=_MORE_FONTS[int(more.integers(len(_MORE_FONTS)))])
    return style


def _second_clock(rng: np.random.Generator, style: Style, height: int
                  ) -> tuple[Style, int]:
    """A second clock for `multiple_clocks`: its own style in another corner, and how many
    seconds it is off the first."""
    second = _style(rng, height)
    second = replace(second, clock_position=_other_position(rng, style.clock_position))
    return second, int(rng.choice([3 * 3600, -3600, int(rng.integers(-600, 600))]))


def _other_position(rng: np.random.Generator, taken: Position) -> Position:
    rest = [p for p in POSITIONS if p != taken and p[:3] != taken[:3]]
    return rest[int(rng.integers(len(rest)))]


# --- version 3: a DVR export, a few clips per camera -----------------------------------------

#: Clips of one camera in an export, and how often (mean 3.55).
_CLIPS_PER_CAMERA = (1, 2, 3, 4, 5, 6, 8)
_CLIPS_WEIGHTS = (0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.1)
#: Clip lengths in whole seconds (both ends included), with their shares: real exports run for
#: minutes; two minutes at most keeps the corpus and its benchmark to minutes too.
_DURATIONS: tuple[tuple[int, int, float], ...] = ((5, 8, 0.55), (15, 40, 0.30), (60, 120, 0.15))
#: A camera's clips fall on days within this many days of its first.
_SPAN_DAYS = 90
_CIF = (352, 288)


@dataclass(frozen=True)
class Camera:
    """One camera of a DVR: what every clip it recorded shares (generator version 3).

    `bad` is a camera's own: `no_overlay` (its OSD switched off) or `multiple_clocks` (a
    second clock on every clip, `second_clock` drawn `second_clock_offset` seconds apart)."""

    id: str
    index: int
    size: tuple[int, int]
    fps: str
    codec: Codec
    background: str
    crop: tuple[float, float, float, float]
    night: bool
    interlaced: bool
    style: Style
    label: str
    bad: Literal["ok", "no_overlay", "multiple_clocks"]
    second_clock: Style | None
    second_clock_offset: int
    #: midnight of the first day its clips can fall on
    first_day: datetime
    #: its clips in the corpus (the last camera of a corpus may hold fewer than it drew)
    clips: int


def _camera(seed: int, index: int, taken: set[str]) -> Camera:
    """Camera number `index` of the corpus of `seed`, from a stream of its own. Its label is
    redrawn while one of `taken` (the earlier cameras') has it: on one DVR no two cameras share
    a label, and the pipeline groups a camera's clips by label."""
    rng = np.random.default_rng([seed, 3, index])
    roll = float(rng.random())
    bad: Literal["ok", "no_overlay", "multiple_clocks"] = (
        "no_overlay" if roll < 0.05 else "multiple_clocks" if roll < 0.10 else "ok")
    cif = rng.random() < 0.12
    size = _CIF if cif else ((768, 576), (704, 576), (720, 576))[int(rng.integers(3))]
    fps = ("25", "25/2", "10", "15", "6")[int(rng.integers(5))]
    codec: Codec = "mpeg4" if rng.random() < 0.15 else "h264"
    night = bool(rng.random() < 0.35)
    interlaced = bool(rng.random() < 0.25)
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    scale = float(rng.uniform(0.55, 1.0))
    crop = (float(rng.uniform(0, 1 - scale)), float(rng.uniform(0, 1 - scale)), scale, scale)
    style = _style(rng, size[1])
    label = _label(rng)
    clips = int(rng.choice(_CLIPS_PER_CAMERA, p=_CLIPS_WEIGHTS))
    first_day = datetime(2018, 1, 1) + timedelta(
        days=int(rng.integers(0, 6 * 365 - _SPAN_DAYS)))
    second, offset = (_second_clock(rng, style, size[1]) if bad == "multiple_clocks"
                      else (None, 0))
    attempt = 0
    while label in taken:
        label = _label(np.random.default_rng([seed, 3, index, 2, attempt]))
        attempt += 1
    style = _more_fonts(np.random.default_rng([seed, 3, index, 1]), style, label)
    return Camera(id=f"cam{index:02d}", index=index, size=size, fps=fps, codec=codec,
                  background=background, crop=crop, night=night, interlaced=interlaced,
                  style=style, label=label, bad=bad, second_clock=second,
                  second_clock_offset=offset, first_day=first_day, clips=clips)


def cameras(seed: int, n: int) -> list[Camera]:
    """The cameras of a version-3 corpus of `n` clips, in order. A camera never depends on
    `n` or on later cameras: a larger corpus has the same cameras first, the last one of the
    smaller corpus perhaps with more clips."""
    out: list[Camera] = []
    taken: set[str] = set()
    total = 0
    while total < n:
        camera = _camera(seed, len(out), taken)
        camera = replace(camera, clips=min(camera.clips, n - total))
        taken.add(camera.label)
        total += camera.clips
        out.append(camera)
    return out


def camera_clip(seed: int, camera: Camera, take: int, name: str) -> ClipSpec:
    """Clip number `take` of `camera`, named `name`; its own stream, so that neither `n` nor
    the other clips change it. Per clip: the day and time, length, noise, figures, a
    re-encoded copy or not, the bitrate, and the bad inputs of one clip (`clock_backwards`,
    `style_changed`, ~5 % each of the clips of a camera that is otherwise fine)."""
    rng = np.random.default_rng([seed, 3, camera.index, 3, take])
    roll = float(rng.random())
    bad: Status = camera.bad
    if bad == "ok" and roll < 0.10:
        bad = "clock_backwards" if roll < 0.05 else "style_changed"
    pick = float(rng.random())
    lo, hi = next(((a, b) for a, b, share in _accumulate(_DURATIONS) if pick < share),
                  _DURATIONS[-1][:2])
    duration = float(rng.integers(lo, hi + 1))
    cif = camera.size == _CIF
    reencode = not cif and rng.random() < 0.3
    output_size = ((640, 480), _CIF)[int(rng.integers(2))] if reencode else None
    bitrate = int(rng.integers(150, 500) if (cif or reencode) else rng.integers(400, 1500))
    phase = round(float(rng.uniform(0, 1)), 1) % 1.0
    frame_count = max(1, round(duration * Fraction(camera.fps)))
    last_tick = math.floor(Fraction(phase).limit_denominator(1000)
                           + Fraction(frame_count - 1) / Fraction(camera.fps))
    first = max(1, last_tick // 3)
    event_tick = int(rng.integers(first, max(first, last_tick - 1) + 1))
    jump = int(rng.choice([3600, 3600, int(rng.integers(2, 900))]))
    start = camera.first_day + timedelta(days=int(rng.integers(0, _SPAN_DAYS)),
                                         seconds=int(rng.integers(0, 86400)))
    noise = float(rng.uniform(4, 10) if camera.night else rng.uniform(1, 4))
    figures = _figures(rng, camera.size, duration)
    style2 = _style(rng, camera.size[1]) if bad == "style_changed" else None
    return ClipSpec(
        name=name, seed=int(rng.integers(2**31)), size=camera.size, fps=camera.fps,
        duration=duration, background=camera.background, crop=camera.crop,
        night=camera.night, noise=noise, interlaced=camera.interlaced, figures=figures,
        clock_start=start, clock_phase=phase, label=camera.label, style=camera.style,
        bad=bad, event_tick=event_tick, jump_seconds=jump, style2=style2,
        second_clock=camera.second_clock, second_clock_offset=camera.second_clock_offset,
        codec=camera.codec, bitrate=bitrate * 1000, output_size=output_size,
        encoder_threads=1, camera=camera.id)


def _accumulate(buckets: Sequence[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """(lo, hi, share) → (lo, hi, cumulative share)."""
    out, total = [], 0.0
    for lo, hi, share in buckets:
        total += share
        out.append((lo, hi, total))
    return out


def corpus_specs(seed: int, n: int, version: int = GENERATOR_VERSION) -> list[ClipSpec]:
    """The `n` clips of the corpus of `seed`, in name order (cctv_0000.mp4, ...).

    Version 2: clip i is `random_spec(seed, i)`, each its own camera. Version 3: the clips of
    `cameras(seed, n)`, their names shuffled over the cameras (seeded by `seed` and `n`), so
    that a name does not tell the camera. What stays when `n` grows: in version 2 every clip;
    in version 3 every clip's content (all of it but its name), not its name."""
    if version == 2:
        return [random_spec(seed, i) for i in range(n)]
    if version != 3:
        raise ValueError(f"unknown generator version {version} (known: {VERSIONS})")
    order = np.random.default_rng([seed, 3]).permutation(n)
    specs: list[ClipSpec] = []
    for camera in cameras(seed, n):
        for take in range(camera.clips):
            name = f"cctv_{int(order[len(specs)]):04d}.mp4"
            specs.append(camera_clip(seed, camera, take, name))
    return sorted(specs, key=lambda s: s.name)


def slice_specs(seed: int = 12) -> list[ClipSpec]:
    """Eight short clips for unit tests: every bad input once, and the awkward styles
    (night, interlaced, two-line clock, AM/PM, Russian month names, a 352×288 re-encode,
    12.5 fps, a box and an outline)."""
    bads: list[Status] = ["ok", "ok", "ok", "ok", "no_overlay", "clock_backwards",
                          "multiple_clocks", "style_changed"]
    specs = [random_spec(seed, i, bad=b, duration=float(5 + i % 4)) for i, b in enumerate(bads)]
    specs[0] = replace(specs[0], size=(768, 576), output_size=None, fps="10", night=False,
                       background="camera", codec="h264", interlaced=False, noise=3.0,
                       figures=(Figure(x=300, y=330, vx=20, vy=4, height=70),
                                Figure(x=560, y=280, vx=-14, vy=-3, height=56, shade=60)),
                       style=replace(specs[0].style, clock_format="DD-MM-YYYY HH:MM:SS",
                                     two_lines=False, decoration="outline", size=24,
                                     fill="white", font="DejaVuSans"),
                       label="КАМ 03 ПРОГУЛОЧНЫЙ ДВОР")
    specs[1] = replace(specs[1], size=(768, 576), night=True, interlaced=True, fps="25/2",
                       output_size=(352, 288), background="rocket",
                       style=replace(specs[1].style, clock_format="DD мес YYYY HH:MM:SS",
                                     two_lines=True, decoration="box", size=28),
                       label="CAM 7 КОРИДОР 2")
    specs[2] = replace(specs[2], size=(768, 576), output_size=(640, 480), fps="25",
                       background="brick",
                       style=replace(specs[2].style, clock_format="MM/DD/YYYY hh:mm:ss AM/PM",
                                     decoration="shadow", fill="yellow", size=18,
                                     font="DejaVuSansMono", antialias=False),
                       label="Камера 12")
    specs[3] = replace(specs[3], size=(352, 288), output_size=None, fps="10",
                       background="gravel", codec="mpeg4",
                       style=replace(specs[3].style, clock_format="Дн DD мес YYYY HH:MM:SS",
                                     size=12, font="DejaVuSerif"),
                       label="CAM 02 YARD")
    return specs


def corpus(seed: int, n: int, out_dir: Path, *, specs: Sequence[ClipSpec] | None = None,
           version: int = GENERATOR_VERSION, workers: int | None = None) -> list[Truth]:
    """Write `n` clips of `corpus_specs(seed, n, version)` (or `specs`) and `truth.json` into
    `out_dir`, `workers` clips at a time (default: one per CPU); truths in spec order."""
    if version not in VERSIONS:
        raise ValueError(f"unknown generator version {version} (known: {VERSIONS})")
    plan = list(specs) if specs is not None else corpus_specs(seed, n, version)
    paths = [out_dir / spec.name for spec in plan]
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = min(workers or os.cpu_count() or 1, len(plan))
    if workers <= 1:
        truths = [make_clip(spec, path) for spec, path in zip(plan, paths, strict=True)]
    else:
        truths = _make_clips(plan, paths, workers)
    doc = {"generator": "strongroom.cctv", "version": version, "seed": seed,
           "clips": [t.to_json() for t in truths]}
    tmp = out_dir / ".partial-truth.json"
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / "truth.json")
    return truths


def _make_clips(plan: Sequence[ClipSpec], paths: Sequence[Path], workers: int) -> list[Truth]:
    """`make_clip` of every spec in a pool of `workers` processes, the largest clips first (a
    long clip started last would keep one worker busy alone at the end). A clip is frames
    drawn in Python piped into one ffmpeg encoding in one or two threads: one process per
    core is what keeps the cores busy."""
    order = sorted(range(len(plan)), key=lambda i: -plan[i].frame_count
                   * plan[i].size[0] * plan[i].size[1])
    with ProcessPoolExecutor(workers) as pool:
        futures: dict[int, Future[Truth]] = {
            i: pool.submit(make_clip, plan[i], paths[i]) for i in order}
        try:
            return [futures[i].result() for i in range(len(plan))]
        except BaseException:
            for future in futures.values():  # leave nothing queued behind a failure
                future.cancel()
            raise
