"""Timeline pictures: an SVG, drawn on the server, of cameras' segments on the DVR clock axis.

One row per camera (a facility's picture: one per camera of it). In a row: each segment as a
bar linking to its clip at that offset, gaps between recordings (hatched), stretches that two
clips cover at once (an ochre band: the same camera time twice, usually a copy), incidents
(outlined over the segments they cover), and ticks that follow the zoom (years, months, days,
hours, minutes, seconds). The first child is a text `<title>` with the clip count and the
window, for screen readers and for whoever opens the file alone.

Camera labels are OCR text and incident titles are typed by people: both are hostile input.
The XML is built with ElementTree (every text and attribute escaped) after dropping the
characters XML cannot hold and those that reorder or hide text. No chart library: the picture
is a few hundred elements whatever the archive holds, because bars narrower than a few pixels
that touch are drawn as one cluster (a link that zooms into it), gaps and overlaps narrower
than a pixel are left out, and a row has at most `MAX_LANES` lanes. The catalogue is read for
the window only (and one segment either side). Measured on a camera with 20,000 segments over
two years (a shared 2-core machine): a day's window reads in ~130 ms and draws in ~10 ms; the
whole two years read in ~1.5 s and draw in ~0.5 s, as 51 elements.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import Camera, Facility, Incident, IncidentOriginal, Segment
from strongroom.catalogue.timeline import GAP_SECONDS, OVERLAP_SECONDS, UNKNOWN_CAMERA, Entry
from strongroom.errors import StrongroomError

SVG_NS = "http://www.w3.org/2000/svg"
#: The picture's user units: 1000 wide, so one unit is about one pixel on a laptop screen.
WIDTH = 1000.0
LABEL_W = 180.0
RIGHT_PAD = 28.0
PLOT_W = WIDTH - LABEL_W - RIGHT_PAD
TOP = 8.0
STRIP_H = 6.0  # above a row's lanes: incidents and overlaps are marked here
LANE_H = 18.0
LANE_GAP = 3.0
ROW_PAD = 10.0
AXIS_H = 38.0
MAX_LANES = 4
#: A bar narrower than this (in units) that touches its neighbour joins it in a cluster.
MIN_ALONE = 4.0
MIN_BAR = 2.0
#: Ticks are at least this far apart.
TICK_SPACING = 80.0
MAX_LABEL = 26
MIN_WINDOW = timedelta(minutes=1)
#: Times asked for lie in these years (a reset DVR shows 1970 or 2000): a window's zoom and
#: pan stay far inside what `datetime` can hold.
FIRST_YEAR, LAST_YEAR = 1900, 2199
MAX_WINDOW = timedelta(days=366 * 50)

FILL = {"segment": "#35586b", "partial": "#8aa3b0", "cluster": "#4d6f80", "gap": "#b9b9b9",
        "overlap": "#a67c2e", "incident": "#5b3f6b", "axis": "#666666", "grid": "#e2e0da",
        "text": "#222222", "muted": "#666666"}

#: The picture's words (the review app passes them translated; the export per language).
WORDS: dict[str, str] = {
    "title": "{label}: {clips}, {start} – {end} (DVR clock)",
    "clips": "{n} clip(s)",
    "segment": "{start} – {end} (DVR clock): clip {sha}… from {offset}",
    "partial": "partial clip: {why}",
    "cluster": "{n} clips, {start} – {end}: open to zoom in",
    "gap": "gap of {length} ({start} – {end}): no recording of this camera in the archive",
    "overlap": "{n} clips cover the same camera time ({start} – {end}): possibly copies",
    "incident": "incident #{id}: {title} ({start} – {end})",
    "empty": "no clips in this window",
    "more": "{n} more overlapping clips drawn in the last lane",
    "s": "{n} s", "min": "{n} min", "h": "{n} h", "d": "{n} d",
}


# -- what is drawn -------------------------------------------------------------------------------
@dataclass
class Row:
    """One camera's row: its label, its segments in clock order, and where its label links."""

    label: str
    entries: list[Entry]
    href: str | None = None


@dataclass
class Mark:
    """An incident's stretch on one camera, on the DVR clock, and the clip time it starts at."""

    incident: int
    title: str
    row: str
    start: datetime
    end: datetime
    original: str
    offset: float


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def centre(self) -> datetime:
        return self.start + (self.end - self.start) / 2

    def query(self) -> str:
        return f"from={self.start:%Y-%m-%dT%H:%M:%S}&to={self.end:%Y-%m-%dT%H:%M:%S}"


@dataclass
class Tick:
    at: datetime
    label: str
    context: str | None = None  # the date (or year) above it, shown where it changes


@dataclass
class _Group:
    entries: list[Entry]
    x0: float
    x1: float
    tiny: bool
    start: datetime
    end: datetime


# -- the window and its ticks ------------------------------------------------------------------
def parse_when(text: str | None, what: str) -> datetime | None:
    """A DVR clock time from a link or a form: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (or with
    a space). The DVR clock has no zone, so a time with one is refused."""
    if text is None or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StrongroomError(f"{what} {text!r} is not a DVR clock time "
                              "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)") from None
    if when.tzinfo is not None:
        raise StrongroomError(f"{what} {text!r} has a time zone; the DVR clock has none")
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        raise StrongroomError(f"{what} {text!r} is outside the years a DVR clock shows "
                              f"({FIRST_YEAR}–{LAST_YEAR})")
    return when.replace(microsecond=0)


def end_of(e: Entry) -> datetime:
    """Where a segment's bar ends: its last second shown lasts a second (a 3 s clip read
    02:17:05–02:17:07 covers 02:17:05 to 02:17:08)."""
    return max(e.clock_end + timedelta(seconds=1),
               e.clock_start + timedelta(seconds=max(0.0, e.end_s - e.start_s)))


def full_window(rows: Sequence[Row]) -> Window | None:
    """Every segment of the rows, with a little room either side (None: no segments)."""
    starts = [e.clock_start for r in rows for e in r.entries]
    if not starts:
        return None
    return _padded(min(starts), max(end_of(e) for r in rows for e in r.entries))


def span_window(infos: Sequence[CameraInfo]) -> Window | None:
    """The cameras' whole span on the DVR clock, with a little room (None: no segments)."""
    firsts = [c.first for c in infos if c.first is not None]
    lasts = [c.last for c in infos if c.last is not None]
    if not firsts or not lasts:
        return None
    return _padded(min(firsts), max(lasts) + timedelta(seconds=1))


def _padded(lo: datetime, hi: datetime) -> Window:
    pad = max((hi - lo) * 0.03, timedelta(seconds=5))
    return _bounded(Window(lo - pad, hi + pad))


def window_of(whole: Window | None, start: datetime | None, end: datetime | None) -> Window:
    """The window asked for (either end may be left out: `whole`'s, the rows' own span), at
    least a minute and at most 50 years long."""
    if start is not None and end is not None and end <= start:
        raise StrongroomError("the window ends before it starts (`to` must come after `from`)")
    if start is None and end is None:
        if whole is None:  # nothing on the clock yet: some day, drawn empty
            return Window(datetime(2000, 1, 1), datetime(2000, 1, 2))
        return whole
    if start is None:
        base = whole.start if whole is not None and end is not None and whole.start < end \
            else None
        start = base if base is not None else (end or datetime(2000, 1, 1)) - timedelta(days=1)
    if end is None:
        base = whole.end if whole is not None and whole.end > start else None
        end = base if base is not None else start + timedelta(days=1)
    if end - start > MAX_WINDOW:
        raise StrongroomError("the window is longer than 50 years: narrow it")
    return _bounded(Window(start, end))


def _bounded(w: Window) -> Window:
    if w.end - w.start < MIN_WINDOW:
        half = MIN_WINDOW / 2
        return Window(w.centre - half, w.centre + half)
    return w


def zoomed(w: Window, factor: float) -> Window:
    """The window `factor` times as long, about the same centre (at least a minute)."""
    span = min((w.end - w.start) * factor, MAX_WINDOW)
    return _bounded(Window(w.centre - span / 2, w.centre + span / 2))


def panned(w: Window, fraction: float) -> Window:
    shift = (w.end - w.start) * fraction
    return Window(w.start + shift, w.end + shift)


def around(centre: datetime, span: timedelta) -> Window:
    return _bounded(Window(centre - span / 2, centre + span / 2))


_UNITS: list[tuple[str, int, float]] = [
    ("second", 5, 5), ("second", 10, 10), ("second", 15, 15), ("second", 30, 30),
    ("minute", 1, 60), ("minute", 2, 120), ("minute", 5, 300), ("minute", 10, 600),
    ("minute", 15, 900), ("minute", 30, 1800), ("hour", 1, 3600), ("hour", 2, 7200),
    ("hour", 3, 10800), ("hour", 6, 21600), ("hour", 12, 43200), ("day", 1, 86400),
    ("day", 2, 172800), ("day", 7, 604800), ("month", 1, 2629800), ("month", 3, 7889400),
    ("month", 6, 15778800), ("year", 1, 31557600), ("year", 2, 63115200),
    ("year", 5, 157788000), ("year", 10, 315576000)]


def ticks(w: Window, width: float = PLOT_W) -> tuple[str, list[Tick]]:
    """The tick unit for this window (second, minute, hour, day, month or year) and the ticks inside
    it, at round times, at least `TICK_SPACING` apart."""
    most = max(2, int(width // TICK_SPACING))
    unit, step, _sec = next((u for u in _UNITS if w.seconds / u[2] <= most), _UNITS[-1])
    out: list[Tick] = []
    for at in _tick_times(w, unit, step):
        if unit == "second":
            out.append(Tick(at, f"{at:%H:%M:%S}", f"{at:%Y-%m-%d}"))
        elif unit in ("minute", "hour"):
            out.append(Tick(at, f"{at:%H:%M}", f"{at:%Y-%m-%d}"))
        elif unit == "day":
            out.append(Tick(at, f"{at:%d}", f"{at:%Y-%m}"))
        elif unit == "month":
            out.append(Tick(at, f"{at:%m}", f"{at:%Y}"))
        else:
            out.append(Tick(at, f"{at:%Y}"))
    shown = None
    for t in out:  # the context only where it changes
        if t.context == shown:
            t.context = None
        else:
            shown = t.context
    return unit, out


def _tick_times(w: Window, unit: str, step: int) -> Iterable[datetime]:
    if unit in ("second", "minute", "hour", "day"):
        seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit] * step
        day0 = datetime(w.start.year, w.start.month, w.start.day)
        if unit == "day":
            day0 -= timedelta(days=day0.toordinal() % step)
        k = math.ceil((w.start - day0).total_seconds() / seconds)
        at = day0 + timedelta(seconds=k * seconds)
        while at <= w.end:
            yield at
            at += timedelta(seconds=seconds)
        return
    if unit == "month":
        y, m = w.start.year, w.start.month
        m -= (m - 1) % step
        while True:
            at = datetime(y, m, 1)
            if at > w.end:
                return
            if at >= w.start:
                yield at
            m += step
            y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    y = w.start.year - w.start.year % step
    while y <= 9999:
        at = datetime(y, 1, 1)
        if at > w.end:
            return
        if at >= w.start:
            yield at
        y += step


# -- drawing ---------------------------------------------------------------------------------
#: Characters XML 1.0 cannot hold, and those that reorder, join or hide text (one label made to
#: look like another): dropped from every text and attribute.
_INVISIBLE = {0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF,
              *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def clean(text: str) -> str:
    return "".join(c for c in text if (c in "\t\n" or 0x20 <= ord(c) <= 0xD7FF
                                       or 0xE000 <= ord(c) <= 0xFFFD
                                       or 0x10000 <= ord(c) <= 0x10FFFF)
                   and ord(c) not in _INVISIBLE and not 0x7F <= ord(c) <= 0x9F)


def _el(tag: str, attrs: Mapping[str, Any] | None = None, text: str | None = None,
        children: Iterable[ET.Element] = ()) -> ET.Element:
    e = ET.Element(tag, {k: clean(_num(v)) for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        e.text = clean(text)
    e.extend(children)
    return e


def _num(v: Any) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _titled(tag: str, attrs: Mapping[str, Any], title: str) -> ET.Element:
    return _el(tag, attrs, children=[_el("title", text=title)])


def _link(href: str | None, child: ET.Element, cls: str) -> ET.Element:
    return child if href is None else _el("a", {"href": href, "class": cls}, children=[child])


def _short(label: str) -> str:
    label = " ".join(clean(label).split())
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def _fmt(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}"


def length_text(seconds: float, words: Mapping[str, str] = WORDS) -> str:
    s = round(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [(d, words["d"]), (h, words["h"]), (m, words["min"]), (s, words["s"])]
    shown = [u.format(n=n) for n, u in parts if n][:2]
    return " ".join(shown) or words["s"].format(n=0)


def offset_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:d}:{whole % 3600 // 60:02d}:{whole % 60:02d}" \
        + (f".{round((seconds - whole) * 10) % 10}" if seconds - whole >= 0.05 else "")


def offset_at(e: Entry, w: Window) -> float:
    """The clip time a segment's bar opens at: its start, or where the window starts when
    the segment began before it."""
    into = max(0.0, (w.start - e.clock_start).total_seconds())
    return round(min(e.start_s + into, e.end_s), 3)


Href = Callable[[str, float], str | None]


def clip_href(sha256: str, offset: float) -> str:
    """The review app's clip page, opening the player at `offset` seconds."""
    return f"/clips/{sha256}?t={_num(float(offset))}"


def render(rows: Sequence[Row], w: Window, *, label: str, href: Href = clip_href,
           marks: Sequence[Mark] = (), words: Mapping[str, str] = WORDS,
           zoom_href: Callable[[Window], str | None] | None = None, ident: str = "tl",
           standalone: bool = False) -> str:
    """The picture of `rows` in window `w`. `href(sha256, offset)` is where a segment links
    (None: no link); `zoom_href(window)` where a cluster links (None: no link); `ident`
    prefixes the element ids (two pictures on one page). `standalone` adds the XML
    declaration (a file of its own)."""
    words = {**WORDS, **words}
    x_of = _scale(w)
    defs = _defs(ident)
    body: list[ET.Element] = []
    unit, tick_list = ticks(w)
    y = TOP
    heights = []
    clips: set[str] = set()
    for row in rows:
        ends = {id(e): end_of(e) for e in row.entries if e.clock_start <= w.end}
        visible = sorted((e for e in row.entries if id(e) in ends and ends[id(e)] >= w.start),
                         key=lambda e: (e.clock_start, e.original))
        # the recordings either side of the window, so a gap the window lies in shows
        before = max((e for e in row.entries if id(e) in ends and ends[id(e)] < w.start),
                     key=lambda e: ends[id(e)], default=None)
        after = min((e for e in row.entries if e.clock_start > w.end),
                    key=lambda e: e.clock_start, default=None)
        if before is not None:
            ends[id(before)] = end_of(before)
        if after is not None:
            ends[id(after)] = end_of(after)
        neighbours = ([before] if before else []) + visible + ([after] if after else [])
        clips.update(e.original for e in visible)
        end = _Ends(ends)
        lanes, extra = _lanes(visible, end)
        n_lanes = max(1, len(lanes))
        h = STRIP_H + n_lanes * (LANE_H + LANE_GAP) + ROW_PAD
        heights.append((y, h))
        body.append(_row(row, visible, lanes, extra, y, h, w, x_of, href, zoom_href,
                         [m for m in marks if m.row == row.label], words, ident, end,
                         neighbours))
        y += h
    plot_h = y - TOP
    total_h = y + AXIS_H
    title = words["title"].format(
        label=label, clips=words["clips"].format(n=len(clips)), start=_fmt(w.start),
        end=_fmt(w.end))
    root = _el("svg", {
        "xmlns": SVG_NS, "viewBox": f"0 0 {_num(WIDTH)} {_num(total_h)}", "width": "100%",
        "class": "timeline", "role": "group", "aria-labelledby": f"{ident}-title",
        "data-clips": len(clips), "data-unit": unit,
        "data-from": f"{w.start:%Y-%m-%dT%H:%M:%S}", "data-to": f"{w.end:%Y-%m-%dT%H:%M:%S}",
        "font-family": "DejaVu Sans, sans-serif", "font-size": "12"})
    root.append(_el("title", {"id": f"{ident}-title"}, title))
    root.append(defs)
    root.append(_grid(tick_list, x_of, TOP, plot_h))
    root.extend(body)
    if not clips:
        root.append(_el("text", {"x": LABEL_W + PLOT_W / 2, "y": TOP + plot_h / 2 + 4,
                                 "text-anchor": "middle", "fill": FILL["muted"],
                                 "class": "empty"}, words["empty"]))
    root.append(_axis(unit, tick_list, x_of, y))
    xml = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n") if standalone else xml


def _scale(w: Window) -> Callable[[datetime], float]:
    seconds = max(w.seconds, 1.0)

    def x_of(t: datetime) -> float:
        return LABEL_W + PLOT_W * (t - w.start).total_seconds() / seconds

    return x_of


def _clip_x(x: float) -> float:
    return min(max(x, LABEL_W), LABEL_W + PLOT_W)


def _defs(ident: str) -> ET.Element:
    def hatch(name: str, colour: str) -> ET.Element:
        return _el("pattern", {"id": f"{ident}-{name}", "width": 6, "height": 6,
                               "patternUnits": "userSpaceOnUse",
                               "patternTransform": "rotate(45)"},
                   children=[_el("rect", {"width": 6, "height": 6, "fill": "#ffffff",
                                          "fill-opacity": "0"}),
                             _el("line", {"x1": 0, "y1": 0, "x2": 0, "y2": 6,
                                          "stroke": colour, "stroke-width": 2})])
    return _el("defs", children=[hatch("gap", FILL["gap"]), hatch("overlap", FILL["overlap"])])


class _Ends:
    """Each visible entry's `end_of`, worked out once per picture (it is asked for often)."""

    def __init__(self, ends: dict[int, datetime]) -> None:
        self.ends = ends

    def __call__(self, e: Entry) -> datetime:
        return self.ends[id(e)]


def _lanes(entries: list[Entry], end_of: Callable[[Entry], datetime]
           ) -> tuple[list[list[Entry]], int]:
    """Entries in lanes: one lane while clips follow each other, a lane more for each clip
    covering time another already covers (at most MAX_LANES; the rest share the last)."""
    lanes: list[list[Entry]] = []
    ends: list[datetime] = []
    extra = 0
    slack = timedelta(seconds=OVERLAP_SECONDS)
    for e in entries:
        for i, until in enumerate(ends):
            if e.clock_start + slack >= until:
                lanes[i].append(e)
                ends[i] = end_of(e)
                break
        else:
            if len(lanes) < MAX_LANES:
                lanes.append([e])
                ends.append(end_of(e))
            else:
                extra += 1
                lanes[-1].append(e)
                ends[-1] = max(ends[-1], end_of(e))
    for lane in lanes:
        lane.sort(key=lambda e: e.clock_start)
    return lanes, extra


def _groups(lane: list[Entry], x_of: Callable[[datetime], float],
            end_of: Callable[[Entry], datetime]) -> list[_Group]:
    groups: list[_Group] = []
    for e in lane:
        end = end_of(e)
        x0, x1 = _clip_x(x_of(e.clock_start)), _clip_x(x_of(end))
        tiny = x1 - x0 < MIN_ALONE
        last = groups[-1] if groups else None
        if last is not None and tiny and last.tiny and x0 <= last.x1 + 1.0:
            last.entries.append(e)
            last.x1 = max(last.x1, x1)
            last.end = max(last.end, end)
        else:
            groups.append(_Group([e], x0, x1, tiny, e.clock_start, end))
    return groups


def _row(row: Row, visible: list[Entry], lanes: list[list[Entry]], extra: int, y: float,
         h: float, w: Window, x_of: Callable[[datetime], float], href: Href,
         zoom_href: Callable[[Window], str | None] | None, marks: list[Mark],
         words: Mapping[str, str], ident: str, end_of: Callable[[Entry], datetime],
         neighbours: list[Entry]) -> ET.Element:
    g = _el("g", {"class": "row", "data-camera": row.label})
    name = _el("text", {"x": 6, "y": y + STRIP_H + LANE_H - 2, "fill": FILL["text"],
                        "class": "camera"}, _short(row.label))
    name.append(_el("title", text=row.label))
    g.append(_link(row.href, name, "camera-link"))
    g.append(_el("line", {"x1": LABEL_W, "x2": LABEL_W + PLOT_W, "y1": y + h - ROW_PAD / 2,
                          "y2": y + h - ROW_PAD / 2, "stroke": FILL["grid"]}))
    lanes_h = max(1, len(lanes)) * (LANE_H + LANE_GAP)
    top = y + STRIP_H
    for start, end in _gaps(neighbours, end_of):
        x0, x1 = _clip_x(x_of(start)), _clip_x(x_of(end))
        if x1 - x0 < 1.0:
            continue
        length = length_text((end - start).total_seconds(), words)
        tip = words["gap"].format(length=length, start=_fmt(start), end=_fmt(end))
        gap = _titled("rect", {"x": x0, "y": top, "width": x1 - x0, "height": lanes_h,
                               "fill": f"url(#{ident}-gap)", "class": "gap",
                               "data-seconds": int((end - start).total_seconds())}, tip)
        g.append(gap)
        if x1 - x0 > 70:
            g.append(_el("text", {"x": (x0 + x1) / 2, "y": top + LANE_H - 4,
                                  "text-anchor": "middle", "fill": FILL["muted"],
                                  "font-size": "10", "class": "gap-length"}, length))
    merged: list[tuple[float, float, datetime, datetime, set[str]]] = []
    for start, end, shas in _overlaps(visible, end_of):
        x0, x1 = _clip_x(x_of(start)), _clip_x(x_of(end))
        if end < w.start or start > w.end:
            continue
        if merged and x0 <= merged[-1][1] + 1.0:  # closer than a pixel: one band
            a0, a1, s0, _e0, seen = merged[-1]
            merged[-1] = (a0, max(a1, x1), s0, end, seen | shas)
        else:
            merged.append((x0, x1, start, end, set(shas)))
    for x0, x1, start, end, shas in merged:
        listed = sorted(shas)
        tip = words["overlap"].format(n=len(shas), start=_fmt(start), end=_fmt(end)) \
            + ": " + ", ".join(s[:12] + "…" for s in listed[:6]) \
            + (" …" if len(listed) > 6 else "")
        g.append(_titled("rect", {"x": x0, "y": y, "width": max(x1 - x0, MIN_BAR),
                                  "height": STRIP_H + lanes_h, "fill": f"url(#{ident}-overlap)",
                                  "class": "overlap", "data-clips": len(shas)}, tip))
        g.append(_el("rect", {"x": x0, "y": y, "width": max(x1 - x0, MIN_BAR),
                              "height": STRIP_H / 2, "fill": FILL["overlap"]}))
    for i, lane in enumerate(lanes):
        ly = top + i * (LANE_H + LANE_GAP)
        for grp in _groups(lane, x_of, end_of):
            g.append(_bar(grp, ly, w, href, zoom_href, words))
    if extra:
        g.append(_el("text", {"x": LABEL_W - 6, "y": top + lanes_h - 4, "text-anchor": "end",
                              "fill": FILL["muted"], "font-size": "9"},
                     f"+{extra}", children=[]))
        g[-1].append(_el("title", text=words["more"].format(n=extra)))
    for m in marks:
        if m.end < w.start or m.start > w.end:
            continue
        x0, x1 = _clip_x(x_of(m.start)), _clip_x(x_of(m.end))
        tip = words["incident"].format(id=m.incident, title=m.title, start=_fmt(m.start),
                                       end=_fmt(m.end))
        mark = _el("g", {"class": "incident", "data-incident": m.incident}, children=[
            _el("title", text=tip),
            _el("rect", {"x": x0, "y": y, "width": max(x1 - x0, MIN_BAR),
                         "height": STRIP_H + lanes_h, "fill": FILL["incident"],
                         "fill-opacity": "0.15", "stroke": FILL["incident"],
                         "stroke-width": 1.5}),
            _el("rect", {"x": x0, "y": y, "width": max(x1 - x0, MIN_BAR), "height": STRIP_H,
                         "fill": FILL["incident"]})])
        g.append(_link(href(m.original, m.offset), mark, "incident-link"))
    return g


def _bar(grp: _Group, y: float, w: Window, href: Href,
         zoom_href: Callable[[Window], str | None] | None, words: Mapping[str, str]
         ) -> ET.Element:
    width = max(grp.x1 - grp.x0, MIN_BAR)
    if len(grp.entries) == 1:
        e = grp.entries[0]
        offset = offset_at(e, w)
        tip = words["segment"].format(start=_fmt(e.clock_start), end=_fmt(e.clock_end),
                                      sha=e.original[:12], offset=offset_text(offset))
        if e.partial:
            tip += " · " + words["partial"].format(why=e.partial)
        rect = _titled("rect", {
            "x": grp.x0, "y": y, "width": width, "height": LANE_H,
            "fill": FILL["partial" if e.partial else "segment"], "class": "segment",
            "data-sha": e.original, "data-offset": _num(float(offset)),
            "stroke": FILL["segment"] if e.partial else None,
            "stroke-dasharray": "3 2" if e.partial else None}, tip)
        return _link(href(e.original, offset), rect, "segment-link")
    tip = words["cluster"].format(n=len({e.original for e in grp.entries}),
                                  start=_fmt(grp.start), end=_fmt(grp.end))
    rect = _titled("rect", {"x": grp.x0, "y": y, "width": width, "height": LANE_H,
                            "fill": FILL["cluster"], "class": "cluster",
                            "data-segments": len(grp.entries)}, tip)
    zoom = zoomed(Window(grp.start, grp.end), 1.2)
    return _link(zoom_href(zoom) if zoom_href is not None else None, rect, "cluster-link")


def _gaps(entries: list[Entry], end_of: Callable[[Entry], datetime]
          ) -> list[tuple[datetime, datetime]]:
    """Stretches between recordings of this row longer than GAP_SECONDS (whole: the picture
    clips them to its window, their title keeps their length)."""
    out = []
    covered: datetime | None = None
    for e in entries:  # in clock order
        if covered is not None and (e.clock_start - covered).total_seconds() > GAP_SECONDS:
            out.append((covered, e.clock_start))
        covered = end_of(e) if covered is None else max(covered, end_of(e))
    return out


def _overlaps(entries: list[Entry], end_of: Callable[[Entry], datetime]
              ) -> list[tuple[datetime, datetime, set[str]]]:
    """Stretches covered by two or more different clips (at least OVERLAP_SECONDS long),
    merged where they touch."""
    points: list[tuple[datetime, int, str]] = []
    for e in entries:
        points.append((e.clock_start, 1, e.original))
        points.append((end_of(e), -1, e.original))
    points.sort(key=lambda p: (p[0], p[1]))
    active: dict[str, int] = {}
    out: list[tuple[datetime, datetime, set[str]]] = []
    since: datetime | None = None
    seen: set[str] = set()
    for at, delta, sha in points:
        before = len(active)
        active[sha] = active.get(sha, 0) + delta
        if active[sha] <= 0:
            del active[sha]
        if before < 2 <= len(active):
            since, seen = at, set(active)
        elif len(active) >= 2:
            seen |= set(active)
        elif before >= 2 > len(active) and since is not None:
            if (at - since).total_seconds() >= OVERLAP_SECONDS:
                if out and out[-1][1] >= since:
                    out[-1] = (out[-1][0], at, out[-1][2] | seen)
                else:
                    out.append((since, at, seen))
            since = None
    return out


def _grid(tick_list: list[Tick], x_of: Callable[[datetime], float], y: float,
          h: float) -> ET.Element:
    return _el("g", {"class": "grid"}, children=[
        _el("line", {"x1": x_of(t.at), "x2": x_of(t.at), "y1": y, "y2": y + h,
                     "stroke": FILL["grid"]}) for t in tick_list])


def _axis(unit: str, tick_list: list[Tick], x_of: Callable[[datetime], float],
          y: float) -> ET.Element:
    g = _el("g", {"class": "axis", "data-unit": unit}, children=[
        _el("line", {"x1": LABEL_W, "x2": LABEL_W + PLOT_W, "y1": y, "y2": y,
                     "stroke": FILL["axis"]})])
    for t in tick_list:
        x = x_of(t.at)
        g.append(_el("line", {"x1": x, "x2": x, "y1": y, "y2": y + 5, "stroke": FILL["axis"]}))
        g.append(_el("text", {"x": x, "y": y + 16, "text-anchor": "middle",
                              "fill": FILL["text"], "class": "tick",
                              "data-at": f"{t.at:%Y-%m-%dT%H:%M:%S}"}, t.label))
        if t.context:
            g.append(_el("text", {"x": x, "y": y + 30, "text-anchor": "middle",
                                  "fill": FILL["muted"], "font-size": "10",
                                  "class": "tick-context"}, t.context))
    return g


# -- what the catalogue holds --------------------------------------------------------------------
@dataclass
class CameraInfo:
    """One camera (as it stands: merged cameras show under the one they were merged into)
    with its DVR-clock span and how many clips it has on the clock."""

    id: int
    label: str
    facility_id: int | None
    facility: str | None
    clips: int = 0
    segments: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "facility_id": self.facility_id,
                "facility": self.facility, "clips": self.clips, "segments": self.segments,
                "dvr_clock_first": None if self.first is None else self.first.isoformat(sep=" "),
                "dvr_clock_last": None if self.last is None else self.last.isoformat(sep=" ")}


def cameras(session: Session) -> list[CameraInfo]:
    """Every camera standing on its own (not merged into another), with its span and clip
    count on the DVR clock, and the clock-read segments under no camera as id 0."""
    from strongroom.catalogue.places import canonical

    canon, to_canon = canonical()
    out = {c.id: CameraInfo(c.id, c.label, c.facility_id, name) for c, name in session.execute(
        select(Camera, Facility.name).outerjoin(Facility, Camera.facility_id == Facility.id)
        .where(Camera.merged_into.is_(None)).order_by(Camera.label))}
    stats = session.execute(
        select(canon.id, func.count(func.distinct(Segment.original_sha256)),
               func.count(Segment.id), func.min(Segment.clock_start), func.max(Segment.clock_end))
        .select_from(Segment).outerjoin(Camera, Segment.camera_id == Camera.id)
        .outerjoin(canon, to_canon)
        .where(Segment.clock_start.is_not(None), Segment.clock_end.is_not(None))
        .group_by(canon.id))
    for cam_id, clips, segs, first, last in stats:
        if cam_id is None:
            info = CameraInfo(0, UNKNOWN_CAMERA, None, None)
            out[0] = info
        else:
            found = out.get(cam_id)
            if found is None:
                continue
            info = found
        info.clips, info.segments, info.first, info.last = clips, segs, first, last
    return sorted(out.values(), key=lambda c: (c.id == 0, c.facility is None,
                                               c.facility or "", c.label))


def camera_rows(session: Session, camera_id: int, start: datetime | None = None,
                end: datetime | None = None
                ) -> tuple[CameraInfo, list[Row], Window] | None:
    """The row of one camera (id 0: segments with a clock but no camera label) in the
    window asked for (see `window_of`). A camera merged into another answers with that one;
    None: no such camera."""
    if camera_id == 0:
        info = CameraInfo(0, UNKNOWN_CAMERA, None, None)
    else:
        cam = session.get(Camera, camera_id)
        if cam is None:
            return None
        if cam.merged_into is not None:
            target = session.get(Camera, cam.merged_into)
            if target is None:
                return None
            cam = target
        fac = session.get(Facility, cam.facility_id) if cam.facility_id is not None else None
        info = CameraInfo(cam.id, cam.label, cam.facility_id, fac.name if fac else None)
    _span(session, info)
    window = window_of(span_window([info]), start, end)
    return info, [Row(info.label, _entries(session, info.id, window),
                      f"/timelines/camera/{info.id}")], window


def facility_rows(session: Session, facility_id: int, start: datetime | None = None,
                  end: datetime | None = None
                  ) -> tuple[Facility, list[CameraInfo], list[Row], Window] | None:
    """One row per camera of the facility (cameras merged into another show under that
    one's facility), in the window asked for. None: no such facility."""
    fac = session.get(Facility, facility_id)
    if fac is None:
        return None
    infos = [CameraInfo(cam.id, cam.label, fac.id, fac.name) for cam in session.scalars(
        select(Camera).where(Camera.facility_id == facility_id, Camera.merged_into.is_(None))
        .order_by(Camera.label))]
    for info in infos:
        _span(session, info)
    window = window_of(span_window(infos), start, end)
    rows = [Row(i.label, _entries(session, i.id, window), f"/timelines/camera/{i.id}")
            for i in infos]
    return fac, infos, rows, window


def _on_camera(camera_id: int) -> ColumnElement[bool]:
    """Segments standing under this camera (merged cameras' included); 0: no camera."""
    if camera_id == 0:
        return Segment.camera_id.is_(None)
    return func.coalesce(Camera.merged_into, Camera.id) == camera_id


def _span(session: Session, info: CameraInfo) -> None:
    clips, segs, first, last = session.execute(
        select(func.count(func.distinct(Segment.original_sha256)), func.count(Segment.id),
               func.min(Segment.clock_start), func.max(Segment.clock_end))
        .select_from(Segment).outerjoin(Camera, Segment.camera_id == Camera.id)
        .where(Segment.clock_start.is_not(None), Segment.clock_end.is_not(None),
               _on_camera(info.id))).one()
    info.clips, info.segments, info.first, info.last = clips, segs, first, last


#: How far before a window a segment may start and still reach into it (a clip's length
#: on the clock; a frozen clock makes it longer than its clock range).
REACH = timedelta(days=1)


def _entries(session: Session, camera_id: int, w: Window) -> list[Entry]:
    """The camera's segments that reach into the window, and the last one before it and the
    first after it (so a gap the window lies in shows), as plain rows: drawing a window of a
    camera with 20,000 segments reads only what it draws."""
    from strongroom.catalogue.queries import partial_clips

    cols = (Segment.id, Segment.original_sha256, Segment.start_s, Segment.end_s,
            Segment.clock_start, Segment.clock_end, Segment.confidence)
    base = (select(*cols).select_from(Segment)
            .outerjoin(Camera, Segment.camera_id == Camera.id)
            .where(Segment.clock_start.is_not(None), Segment.clock_end.is_not(None),
                   _on_camera(camera_id)))
    found = {r[0]: r for r in session.execute(base.where(
        Segment.clock_start <= w.end, Segment.clock_end >= w.start - REACH))}
    for extra in (base.where(Segment.clock_start < w.start)
                  .order_by(Segment.clock_end.desc()).limit(1),
                  base.where(Segment.clock_start > w.end).order_by(Segment.clock_start)
                  .limit(1)):
        for r in session.execute(extra):
            found.setdefault(r[0], r)
    entries = sorted((Entry(segment=i, original=sha, start_s=a, end_s=b, clock_start=c0,
                            clock_end=c1, confidence=conf)
                      for i, sha, a, b, c0, c1, conf in found.values()
                      if c0 is not None and c1 is not None),  # the query's; for mypy
                     key=lambda e: (e.clock_start, e.original))
    partial = partial_clips(session, {e.original for e in entries})
    for e in entries:
        e.partial = partial.get(e.original)
    return entries


def incident_marks(session: Session, rows: Sequence[Row]) -> list[Mark]:
    """The incidents marked on the rows' clips, placed on each row through the clip's
    segments there (an incident on clips of two cameras shows on both)."""
    shas = {e.original for r in rows for e in r.entries}
    if not shas:
        return []
    links = [(inc.id, inc.title, io.original_sha256, io.start_s, io.end_s, inc.occurred_from,
              inc.occurred_to)
             for inc, io in session.execute(
                 select(Incident, IncidentOriginal).join(
                     IncidentOriginal, IncidentOriginal.incident_id == Incident.id)
                 .where(IncidentOriginal.original_sha256.in_(shas))
                 .order_by(Incident.id))]
    return marks_for(rows, links)


#: (incident id, title, clip sha256, start offset, end offset, DVR from, DVR to)
Link = tuple[int, str, str, float | None, float | None, datetime | None, datetime | None]


def marks_for(rows: Sequence[Row], links: Iterable[Link]) -> list[Mark]:
    """Each incident link drawn on each row holding its clip: its offsets mapped through
    the row's segments of that clip (a link with no offsets: the incident's DVR time, or the
    whole clip)."""
    by_sha: dict[str, list[tuple[str, Entry]]] = {}
    for r in rows:
        for e in r.entries:
            by_sha.setdefault(e.original, []).append((r.label, e))
    out: list[Mark] = []
    for inc_id, title, sha, a, b, dvr_from, dvr_to in links:
        for label, e in by_sha.get(sha, []):
            if a is not None and b is not None:
                lo, hi = max(a, e.start_s), min(b, e.end_s)
                if hi < lo:
                    continue
                out.append(Mark(inc_id, title, label,
                                e.clock_start + timedelta(seconds=lo - e.start_s),
                                e.clock_start + timedelta(seconds=hi - e.start_s), sha, lo))
            elif dvr_from is not None:
                until = dvr_to or dvr_from
                if until < e.clock_start or dvr_from > end_of(e):
                    continue
                start = max(dvr_from, e.clock_start)
                out.append(Mark(inc_id, title, label, start, min(until, end_of(e)), sha,
                                e.start_s + (start - e.clock_start).total_seconds()))
            else:
                out.append(Mark(inc_id, title, label, e.clock_start, end_of(e), sha,
                                e.start_s))
    return out


@dataclass
class OffClock:
    """A clip that is on no camera's timeline (or only on the camera-unknown one), and why."""

    original: str
    camera: str | None
    why: str  # no_clock | no_camera | step_failed | not_analysed | not_video
    detail: str | None = None
    duration_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original, "camera": self.camera, "why": self.why,
                "detail": self.detail, "duration_s": self.duration_s}


def off_clock(session: Session) -> list[OffClock]:
    """Every clip the timelines cannot place on a camera: no DVR clock found, a clock but no
    camera label, the overlay step failed or has not run. Listed beside every picture so
    nothing is hidden by being left off it."""
    from strongroom.catalogue.models import Original, StepRun
    from strongroom.catalogue.timeline import unplaced

    out = [OffClock(u.original, u.camera, "no_clock", u.status, u.duration_s)
           for u in unplaced(session)]
    listed = {o.original for o in out}
    no_camera = session.scalars(
        select(Segment.original_sha256).where(Segment.clock_start.is_not(None),
                                              Segment.camera_id.is_(None))
        .distinct().order_by(Segment.original_sha256))
    for sha in no_camera:
        if sha not in listed:
            out.append(OffClock(sha, None, "no_camera"))
            listed.add(sha)
    placed = select(Segment.original_sha256).where(Segment.clock_start.is_not(None))
    runs = {r.original_sha256: r for r in session.scalars(
        select(StepRun).where(StepRun.step == "overlay_ocr"))}
    for sha in session.scalars(select(Original.sha256).where(Original.sha256.not_in(placed))
                               .order_by(Original.sha256)):
        if sha in listed:
            continue
        run = runs.get(sha)
        if run is None:
            out.append(OffClock(sha, None, "not_analysed"))
        elif run.status == "skipped":
            reason = (run.result or {}).get("reason")
            out.append(OffClock(sha, None, "not_video", str(reason) if reason else None))
        elif run.status != "ok":
            out.append(OffClock(sha, None, "step_failed", (run.error or "")[:200] or None))
    return out
