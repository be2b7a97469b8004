"""Once two whole readings of a clip's clock agree on the date, its other frames are read in
the time of day's own box (`ocr._time_box`, `ocr._time_only`): a third to half of the clock's
width, so the recogniser takes a third to half the time. These clips try to make that put a
frame at another time than the whole clock shows: a 12-hour clock passing 1 PM, a clock passing
midnight, a clock set back, the date above the time. Real ffmpeg clips (`strongroom.cctv`),
the real recogniser; every reading is checked against the clip's truth."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from strongroom import cctv
from strongroom.media import ocr
from test_ocr_fixed_camera import sampled_and_dense


def _read(tmp_path: Path, spec: cctv.ClipSpec) -> tuple[ocr.OverlayFound, cctv.Truth]:
    path = tmp_path / spec.name
    truth = cctv.make_clip(spec, path)
    return ocr.read_overlay(*sampled_and_dense(path)), truth


def _truth_at(truth: cctv.Truth, t: float) -> set[datetime]:
    """What the clip's clock(s) show at video time `t` (both sides of a tick within 1 ms)."""
    out = set()
    for overlay in truth.overlays:
        for r in overlay.readings or []:
            if r.t0 - 1e-3 <= t < r.t1 + 1e-3:
                out.add(datetime.fromisoformat(r.clock))
    return out


def _assert_all_true(found: ocr.OverlayFound, truth: cctv.Truth) -> None:
    assert found.clocks, found
    wrong = [(t, when) for t, when, _ in found.clocks if when not in _truth_at(truth, t)]
    assert not wrong, wrong


def test_a_12_hour_clock_passing_1_pm_reads_13_h_in_the_time_box(
        tmp_path: Path, quick_reads: list[Any]) -> None:
    style = cctv.Style(clock_format="MM/DD/YYYY hh:mm:ss AM/PM", size=22, decoration="box")
    found, truth = _read(tmp_path, cctv.ClipSpec(
        name="noon.mp4", duration=12.0, clock_start=datetime(2021, 6, 14, 12, 59, 55),
        style=style, label="CAM 1", size=(704, 576), figures=(), encoder_threads=1))
    _assert_all_true(found, truth)
    assert any(when.hour == 13 for _, when, _ in found.clocks)  # 01:00:00 PM
    assert any(q is not None for q in quick_reads), "the time box was never read"


def test_a_clock_passing_midnight_takes_the_next_date_in_the_time_box(
        tmp_path: Path, quick_reads: list[Any]) -> None:
    found, truth = _read(tmp_path, cctv.ClipSpec(
        name="midnight.mp4", duration=12.0, clock_start=datetime(2020, 3, 15, 23, 59, 55),
        style=cctv.Style(size=22), label="CAM 2", size=(704, 576), figures=(), encoder_threads=1))
    _assert_all_true(found, truth)
    assert {when.day for _, when, _ in found.clocks} == {15, 16}
    assert any(q is not None for q in quick_reads)


def test_the_date_above_the_time_reads_the_time_line_alone(
        tmp_path: Path, quick_reads: list[Any]) -> None:
    style = cctv.Style(clock_format="YYYY-MM-DD HH:MM:SS", two_lines=True, size=24,
                       clock_position="bottom-right")
    found, truth = _read(tmp_path, cctv.ClipSpec(
        name="two.mp4", duration=10.0, clock_start=datetime(2022, 1, 9, 8, 15, 0),
        style=style, label="CAM 3", size=(704, 576), figures=(), encoder_threads=1))
    _assert_all_true(found, truth)
    assert any(q is not None for q in quick_reads)


def test_a_clock_set_back_an_hour_is_read_where_it_jumps_and_nowhere_else(
        tmp_path: Path, quick_reads: list[Any]) -> None:
    found, truth = _read(tmp_path, cctv.ClipSpec(
        name="back.mp4", duration=14.0, clock_start=datetime(2023, 10, 29, 3, 0, 0),
        style=cctv.Style(size=24, decoration="box"), label="CAM 4", size=(704, 576),
        figures=(), encoder_threads=1,
        bad="clock_backwards", event_tick=7, jump_seconds=3600))
    _assert_all_true(found, truth)
    offsets = {round(((when - datetime(2023, 10, 29)).total_seconds() - t) / 600)
               for t, when, _ in found.clocks}
    assert offsets == {18, 12}, (found.flags, found.vetoed, found.clocks)  # both sides read
    assert any(q is not None for q in quick_reads)


def test_the_time_box_is_a_part_of_the_clock_that_reads_the_same_time(tmp_path: Path) -> None:
    """On a one-line clock the box is much narrower than the clock's crop, and a box that
    does not read the whole reading's time on the same frame is refused."""
    spec = cctv.ClipSpec(name="box.mp4", duration=3.0, style=cctv.Style(size=22),
                         clock_start=datetime(2019, 5, 2, 14, 3, 7), label="CAM 5",
                         size=(704, 576), figures=(), encoder_threads=1)
    cctv.make_clip(spec, tmp_path / spec.name)
    (t, g), *_ = sampled_and_dense(tmp_path / spec.name)[0]
    found = ocr.read_overlay([(t, g)])
    assert found.clock_box is not None
    crop = ocr._clock_crops(g, (found.clock_box,), [])[-1]  # type: ignore[arg-type]
    when = datetime(2019, 5, 2, 14, 3, 7)
    box = ocr._time_box(g, crop, (when, "DD-MM-YYYY"))  # type: ignore[arg-type]
    assert box is not None
    assert box[2] - box[0] < 0.6 * (crop[2] - crop[0]), (box, crop)
    assert ocr._time_only(g, when, "DD-MM-YYYY", box) == (when, "DD-MM-YYYY")  # type: ignore[arg-type]
    # a reading a second off on this frame: that box does not read it, so there is none
    assert ocr._time_box(g, crop, (when.replace(second=8), "DD-MM-YYYY")) is None  # type: ignore[arg-type]
