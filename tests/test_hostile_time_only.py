"""Hostile tests of the time-only reads (`ocr._rapid_reader`, `_time_box`, `_time_only`):
once two whole readings of a clip's clock agree on its date, later frames are read only in
the time of day's box, on the settled reading's date (the day before/after when the time is
more than 12 h away). A wrong time placed on a clip is the worst failure: every reading below
must equal what the clip's clock shows at that video time. Real ffmpeg clips
(`strongroom.cctv`, ffmpeg's drawtext for what cctv cannot draw), the real recogniser."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom import cctv
from strongroom.media import ocr
from test_hostile_dates import drawn_clock_clip
from test_ocr_fixed_camera import sampled_and_dense
from test_time_only_reads import _read, _truth_at

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _wrong(found: ocr.OverlayFound, truth: cctv.Truth) -> list[tuple[float, datetime]]:
    return [(t, when) for t, when, _ in found.clocks if when not in _truth_at(truth, t)]


def _assert_all_true(found: ocr.OverlayFound, truth: cctv.Truth) -> None:
    assert found.clocks, found
    wrong = _wrong(found, truth)
    assert not wrong, wrong


def _spec(name: str, start: datetime, style: cctv.Style, **kw: Any) -> cctv.ClipSpec:
    base: dict[str, Any] = dict(duration=8.0, label="CAM 1", size=(704, 576), figures=(),
                                encoder_threads=1)
    base.update(kw)
    return cctv.ClipSpec(name=name, clock_start=start, style=style, **base)


# --- 12-hour clocks: 1 PM, noon, midnight ---------------------------------------------------

TWELVE_H = [
    # (format, clock start, position, font): the clock passes the hour 4 s in
    ("MM/DD/YYYY hh:mm:ss AM/PM", datetime(2021, 6, 14, 12, 59, 56), "top-right", "DejaVuSans"),
    ("YYYY-MM-DD hh:mm:ss AM/PM", datetime(2021, 6, 14, 12, 59, 56), "bottom-right",
     "LiberationSans"),
    ("MM/DD/YYYY hh:mm:ss AM/PM", datetime(2021, 6, 30, 23, 59, 56), "top-left", "DejaVuSans"),
    ("MM/DD/YYYY hh:mm:ss AM/PM", datetime(2021, 12, 31, 23, 59, 56), "bottom-right",
     "DejaVuSerif"),
    ("Ddd DD Mon YYYY hh:mm:ss AM/PM", datetime(2021, 6, 13, 23, 59, 56), "top-right",
     "DejaVuSans"),
    ("Ddd DD Mon YYYY hh:mm:ss AM/PM", datetime(2021, 6, 14, 11, 59, 56), "top-left",
     "LiberationSans"),
]


@pytest.mark.parametrize("fmt,start,where,font", TWELVE_H,
                         ids=[f"{f[:10]}-{s:%d%H%M}-{w}-{fo}" for f, s, w, fo in TWELVE_H])
def test_a_12_hour_clock_passing_the_hour_is_never_read_at_another_time(
        tmp_path: Path, quick_reads: list[Any], fmt: str, start: datetime, where: Any,
        font: str) -> None:
    style = cctv.Style(clock_format=fmt, size=22, decoration="box", clock_position=where,
                       font=font)
    found, truth = _read(tmp_path, _spec("h12.mp4", start, style))
    _assert_all_true(found, truth)
    passed = start + timedelta(seconds=4)
    assert any(w < passed for _, w, _ in found.clocks) and any(
        w >= passed for _, w, _ in found.clocks), found.clocks


# --- 24-hour clocks passing midnight, in every format --------------------------------------

MIDNIGHT = [
    ("YYYY-MM-DD HH:MM:SS", datetime(2020, 12, 31, 23, 59, 56)),
    ("DD.MM.YYYY HH:MM:SS", datetime(2020, 2, 29, 23, 59, 56)),
    ("DD Mon YYYY HH:MM:SS", datetime(2021, 5, 31, 23, 59, 56)),  # May → Jun
    ("Дн DD мес YYYY HH:MM:SS", datetime(2021, 5, 31, 23, 59, 56)),  # Пн 31 май → Вт 01 июн
]


@pytest.mark.parametrize("fmt,start", MIDNIGHT, ids=[f for f, _ in MIDNIGHT])
def test_a_24_hour_clock_passing_midnight_is_never_read_at_another_time(
        tmp_path: Path, fmt: str, start: datetime) -> None:
    style = cctv.Style(clock_format=fmt, size=22, decoration="box", clock_position="top-right")
    found, truth = _read(tmp_path, _spec("mid.mp4", start, style))
    assert not _wrong(found, truth), _wrong(found, truth)
    days = {w.date() for _, w, _ in found.clocks}
    if "мес" not in fmt:  # the hybrid reader (Russian months) may read less
        assert days == {start.date(), start.date() + timedelta(days=1)}, found.clocks


# --- the time drawn before the date ---------------------------------------------------------

def _time_first_clip(path: Path, start: datetime, seconds: int = 8) -> None:
    """A clock drawn as "HH:MM:SS DD-MM-YYYY" (the time first), which cctv does not draw."""
    drawn_clock_clip(path, start, "%H:%M:%S %d-%m-%Y", "CAM 9", seconds)


def test_a_clock_with_the_time_before_the_date_is_never_read_at_another_time(
        tmp_path: Path) -> None:
    start = datetime(2021, 3, 9, 23, 59, 57)
    path = tmp_path / "tf.mp4"
    _time_first_clip(path, start, seconds=5)
    found = ocr.read_overlay(*sampled_and_dense(path))
    wrong = [(t, w) for t, w, _ in found.clocks
             if w not in (start + timedelta(seconds=int(t - 1e-3)),
                          start + timedelta(seconds=int(t + 1e-3)))]
    assert not wrong, (wrong, found.clocks)
    assert found.clocks or found.engine is None  # nothing read is fine; a wrong time is not


# --- clocks set back (or forward) --------------------------------------------------------

def _jumped(tmp_path: Path, start: datetime, jump: int, tick: int
            ) -> tuple[ocr.OverlayFound, cctv.Truth]:
    return _read(tmp_path, _spec("jump.mp4", start, cctv.Style(size=24, decoration="box"),
                                 bad="clock_backwards", event_tick=tick, jump_seconds=jump))


@pytest.mark.parametrize("jump,start", [
    (30, datetime(2023, 10, 29, 3, 0, 0)),  # set back 30 s
    (39600, datetime(2023, 10, 29, 3, 0, 0)),  # set back 11 h: 16:00 the day before
    (3600, datetime(2020, 3, 16, 0, 0, 0)),  # set back an hour, across midnight
], ids=["30s", "11h-prev-day", "1h-across-midnight"])
def test_a_clock_set_back_is_read_on_both_sides_of_the_jump(
        tmp_path: Path, quick_reads: list[Any], jump: int, start: datetime) -> None:
    found, truth = _jumped(tmp_path, start, jump, 5)
    _assert_all_true(found, truth)
    after = start + timedelta(seconds=5 - jump)
    assert any(w >= start for _, w, _ in found.clocks), found.clocks  # before the jump
    assert any(after <= w < start for _, w, _ in found.clocks), found.clocks
    assert any(q is not None for q in quick_reads)


def test_a_clock_set_back_a_day_is_read_on_the_day_before(tmp_path: Path) -> None:
    """Found by the hostile review: the same time of day a day earlier was read in the
    time's box on the settled date, on the same offset as before the jump, so nothing looked
    wrong. The date beside the time changed its pixels: the whole clock is read there."""
    found, truth = _jumped(tmp_path, datetime(2023, 10, 29, 3, 0, 0), 86400, 5)
    _assert_all_true(found, truth)
    assert {w.day for _, w, _ in found.clocks} == {29, 28}, found.clocks


def test_a_clock_set_forward_a_day_is_read_on_the_day_after(tmp_path: Path) -> None:
    """Found by the hostile review: 03:00:06 on the 29th where the clock shows the 30th."""
    found, truth = _jumped(tmp_path, datetime(2023, 10, 29, 3, 0, 0), -86400, 5)
    _assert_all_true(found, truth)
    assert {w.day for _, w, _ in found.clocks} == {29, 30}, found.clocks


def test_a_clock_set_back_13_hours_early_in_the_clip_is_read_on_the_day_before(
        tmp_path: Path) -> None:
    """Found by the hostile review: 03:00 on the 29th set back to 14:00 on the 28th was read
    11 h later on the 29th (the ±12 h rule knows only midnight), and those wrong readings
    were the clip's largest group, which nothing checks. A time read alone now stands only
    as far from the settled reading as the video time is (`TIME_ONLY_DRIFT_S`)."""
    found, truth = _jumped(tmp_path, datetime(2023, 10, 29, 3, 0, 0), 46800, 3)
    _assert_all_true(found, truth)
    assert {w.day for _, w, _ in found.clocks} == {29, 28}, found.clocks


# --- small, re-encoded, interlaced, other frame rates, long and noisy ---------------------

OTHERS = {
    "tiny-12px-top-right": (datetime(2020, 3, 15, 23, 59, 56),
                            cctv.Style(size=12, decoration="box", clock_position="top-right"),
                            {}),
    "cif-150k-12h-1pm": (datetime(2021, 6, 14, 12, 59, 56),
                         cctv.Style(clock_format="MM/DD/YYYY hh:mm:ss AM/PM", size=22,
                                    decoration="shadow", clock_position="top-right"),
                         dict(output_size=(352, 288), bitrate=150_000)),
    "interlaced-serif": (datetime(2020, 3, 15, 23, 59, 56),
                         cctv.Style(size=22, clock_position="top-right",
                                    font="LiberationSerif"), dict(interlaced=True)),
    "6fps-midnight": (datetime(2020, 3, 15, 23, 59, 56),
                      cctv.Style(size=22, decoration="box", clock_position="top-right"),
                      dict(fps="6")),
    "25fps-12h-midnight": (datetime(2021, 6, 14, 23, 59, 56),
                           cctv.Style(clock_format="MM/DD/YYYY hh:mm:ss AM/PM", size=22,
                                      decoration="box"), dict(fps="25")),
    "12h-to-24h-style-change": (
        datetime(2021, 6, 14, 12, 59, 56),
        cctv.Style(clock_format="MM/DD/YYYY hh:mm:ss AM/PM", size=22, decoration="box"),
        dict(bad="style_changed", event_tick=5,
             style2=cctv.Style(clock_format="YYYY-MM-DD HH:MM:SS", size=22,
                               decoration="box"))),
    "two-clocks-agreeing": (
        datetime(2020, 3, 15, 23, 59, 56), cctv.Style(size=22, decoration="box"),
        dict(bad="multiple_clocks", second_clock_offset=0,
             second_clock=cctv.Style(clock_format="YYYY-MM-DD HH:MM:SS", size=22,
                                     decoration="box", clock_position="top-right"))),
    "40s-night-noise-midnight": (datetime(2020, 3, 15, 23, 59, 40),
                                 cctv.Style(size=20, clock_position="bottom-right",
                                            font="DejaVuSerif"),
                                 dict(duration=40.0, noise=12.0, night=True)),
}


@pytest.mark.parametrize("case", list(OTHERS))
def test_hard_clips_are_never_read_at_another_time(tmp_path: Path, case: str) -> None:
    start, style, kw = OTHERS[case]
    found, truth = _read(tmp_path, _spec("hard.mp4", start, style, **kw))
    _assert_all_true(found, truth)
    assert len({w.date() for _, w, _ in found.clocks}) == (
        2 if "midnight" in case or start.hour == 23 else 1), found.clocks


# --- _time_only on a real frame, with what the recogniser reads crafted -------------------

@pytest.fixture(scope="module")
def frame_and_box(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ocr.Box]:
    spec = _spec("unit.mp4", datetime(2020, 3, 15, 3, 0, 0), cctv.Style(size=22),
                 duration=2.0)
    path = tmp_path_factory.mktemp("unit") / spec.name
    cctv.make_clip(spec, path)
    (t, g), *_ = sampled_and_dense(path)[0]
    found = ocr.read_overlay([(t, g)])
    assert found.clock_box is not None
    crop = ocr._clock_crops(g, (found.clock_box,), [])[-1]  # type: ignore[arg-type]
    box = ocr._time_box(g, crop, (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY"))  # type: ignore[arg-type]
    assert box is not None
    return g, box


CRAFTED = [
    # (settled reading, its format, what the box reads, what _time_only must give)
    (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY", "03:00:05 PM", None),  # AM/PM on 24 h
    (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY", "03:00:05 RM", None),  # half unread
    (datetime(2020, 3, 15, 13, 0, 0), "MM/DD/YYYY 12h", "13:00:05 PM", None),
    (datetime(2020, 3, 15, 0, 30, 0), "MM/DD/YYYY 12h", "00:30:05 AM", None),
    (datetime(2020, 3, 15, 13, 0, 0), "MM/DD/YYYY 12h", "01:00:05", None),  # no AM/PM
    (datetime(2020, 3, 15, 13, 0, 0), "MM/DD/YYYY 12h", "01:00:05 RM", None),
    (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY", "25:00:05", None),
    (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY", "14:00:00", datetime(2020, 3, 15, 14)),
    (datetime(2020, 3, 15, 3, 0, 0), "DD-MM-YYYY", "16:00:00", datetime(2020, 3, 14, 16)),
    (datetime(2020, 3, 15, 23, 59, 58), "MM/DD/YYYY 12h", "12:00:05 AM",
     datetime(2020, 3, 16, 0, 0, 5)),
    (datetime(2020, 3, 15, 11, 59, 58), "MM/DD/YYYY 12h", "12:00:05 PM",
     datetime(2020, 3, 15, 12, 0, 5)),
    (datetime(2020, 3, 15, 12, 59, 58), "MM/DD/YYYY 12h", "01:00:05 PM",
     datetime(2020, 3, 15, 13, 0, 5)),
    (datetime(2020, 3, 16, 0, 0, 2), "YYYY-MM-DD", "23:59:59", datetime(2020, 3, 15, 23, 59, 59)),
    (datetime(2020, 12, 31, 23, 59, 58), "YYYY-MM-DD", "00:00:01", datetime(2021, 1, 1, 0, 0, 1)),
    (datetime(2020, 2, 28, 23, 59, 58), "DD.MM.YYYY", "00:00:01", datetime(2020, 2, 29, 0, 0, 1)),
]


@pytest.mark.parametrize("when,fmt,text,want", CRAFTED,
                         ids=[f"{w:%H%M%S}-{f}-{t}" for w, f, t, _ in CRAFTED])
def test_time_only_on_crafted_reads(monkeypatch: pytest.MonkeyPatch,
                                    frame_and_box: tuple[Any, ocr.Box], when: datetime,
                                    fmt: str, text: str, want: datetime | None) -> None:
    g, box = frame_and_box
    monkeypatch.setattr(ocr, "recognise", lambda g, boxes: [(text, 0.99)] * len(boxes))
    got = ocr._time_only(g, when, fmt, box)
    assert (got[0] if got else None) == want, got
