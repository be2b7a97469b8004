"""The overlay benchmark's scorer counts what it claims, on hand-made truth and results (the
benchmark itself, with its corpus and whole commands, is `benchmarks/overlay.py`)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def overlay() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("overlay")
    finally:
        sys.path.remove(str(BENCH))


STYLE = {"decoration": "box", "font": "DejaVuSans", "fill": "white", "size": 20,
         "clock_position": "top-left", "clock_format": "YYYY-MM-DD HH:MM:SS",
         "two_lines": False, "antialias": True}


def reading(clock: str, t0: float, t1: float) -> dict[str, Any]:
    return {"clock": f"2020-03-14T10:00:{clock}", "text": [clock], "t0": t0, "t1": t1}


def truth(name: str, status: str, readings: list[dict[str, Any]], label: str | None,
          *, overlays: list[dict[str, Any]] | None = None, at_zero: str | None = None,
          duration: float = 4.0, camera: str | None = None) -> dict[str, Any]:
    extra = {"camera": camera} if camera else {}
    return {"name": name, "status": status, "readings": readings, "label": label, **extra,
            "duration": duration, "clock_at_zero": at_zero, "overlays": overlays or [],
            "width": 768, "height": 576,
            "spec": {"style": STYLE, "night": False, "fps": "10", "codec": "h264",
                     "size": [768, 576], "output_size": None}}


def seg(start: float, end: float, cs: str, ce: str) -> dict[str, Any]:
    return {"start_s": start, "end_s": end, "clock_start": f"2020-03-14 10:00:{cs}",
            "clock_end": f"2020-03-14 10:00:{ce}", "format": "YYYY-MM-DD", "readings": 3,
            "confidence": 1.0}


def test_exact_one_second_off_uncovered_and_no_overlay_are_counted(overlay: ModuleType
                                                                   ) -> None:
    truths = [
        # clock ticks at 0, 1, 2, 3; the segment covers 0–3 s exactly: the 4th is not covered
        truth("exact.mp4", "ok", [reading("00", 0, 1), reading("01", 1, 2),
                                  reading("02", 2, 3), reading("03", 3, 4)], "КАМ 03 ДВОР"),
        # the segment says one second later than the screen all along
        truth("late.mp4", "ok", [reading("00", 0, 1), reading("01", 1, 2)], "CAM 2 YARD",
              duration=2.0),
        truth("blank.mp4", "no_overlay", [], None),
        truth("other.mp4", "ok", [reading("00", 0, 1)], "კამერა 3 ეზო", duration=1.0),
    ]
    results = {
        "exact.mp4": {"segments": [seg(0, 3, "00", "02")], "label": "КАМ 03 ДВОР"},
        "late.mp4": {"segments": [seg(0, 2, "01", "02")], "label": "CAM 2 YAR"},
        "blank.mp4": {"segments": [seg(0, 4, "00", "03")], "label": None},
        "other.mp4": {"segments": [], "label": None},
    }
    acc = overlay.score_corpus(truths, results)
    clock = acc["clock"]
    assert clock["readable_seconds"] == 4 + 2 + 1
    assert clock["exact"] == 3
    assert clock["not_covered"] == 1 + 1
    assert clock["within_1s"] == 3 + 2
    assert clock["off_by"] == {"+0": 3, "+1": 2}
    assert acc["wrong_time_clips"] == 2
    assert acc["wrong_time_clip_names"] == ["late.mp4", "blank.mp4"]
    assert (acc["labels"]["clips"], acc["labels"]["exact"]) == (2, 1)
    assert acc["labels"]["wrong"][0]["got"] == "CAM 2 YAR"
    assert (acc["labels_other_scripts"]["clips"], acc["labels_other_scripts"]["exact"]) == (1, 0)
    assert acc["outcome_by_status"]["no_overlay"]["segments"] == {"1": 1}
    failing = {f["name"]: f["failed"] for f in acc["failing_clips"]}
    assert set(failing) == {"exact.mp4", "late.mp4", "blank.mp4", "other.mp4"}
    assert any("wrong time" in x for x in failing["blank.mp4"])
    assert acc["breakdown"]["decoration"]["box"]["wrong_time_clips"] == 2


def test_a_second_clock_on_screen_is_a_right_time(overlay: ModuleType) -> None:
    second = {"role": "second_clock", "readings": [
        {"clock": "2020-03-14T13:00:00", "t0": 0, "t1": 1},
        {"clock": "2020-03-14T13:00:01", "t0": 1, "t1": 2}]}
    t = truth("two.mp4", "multiple_clocks", [reading("00", 0, 1), reading("01", 1, 2)],
              "CAM 1", overlays=[second], duration=2.0)
    res: dict[str, Any] = {
        "segments": [{"start_s": 0.0, "end_s": 2.0, "clock_start": "2020-03-14 13:00:00",
                      "clock_end": "2020-03-14 13:00:01"}], "label": "CAM 1"}
    sc = overlay.score_clip(t, res)
    assert (sc.exact, sc.wrong_time) == (2, False)
    wrong = {**res, "segments": [{**res["segments"][0], "clock_start": "2020-03-14 12:00:00",
                                  "clock_end": "2020-03-14 12:00:01"}]}
    assert overlay.score_clip(t, wrong).wrong_time


def test_the_clock_phase_is_taken_from_both_ends_and_from_a_fraction(overlay: ModuleType
                                                                     ) -> None:
    # c0 = 10:00:00.7: the screen shows :00 over [0, 0.3), :01 over [0.3, 1.3), ...
    t = truth("phase.mp4", "ok", [reading("00", 0, 0.3), reading("01", 0.3, 1.3),
                                  reading("02", 1.3, 2.3), reading("03", 2.3, 2.5)],
              "CAM 1", at_zero="2020-03-14T10:00:00.700", duration=2.5)
    perfect = overlay.ideal_results([t])["phase.mp4"]
    assert perfect["segments"][0]["clock_end"] == "2020-03-14 10:00:03"
    assert overlay.score_clip(t, perfect).exact == 4
    exact = {"segments": [{"start_s": 0.0, "end_s": 2.5,
                           "clock_start": "2020-03-14 10:00:00.700000"}], "label": "CAM 1"}
    sc = overlay.score_clip(t, exact)
    assert (sc.exact, sc.ambiguous) == (4, 0)


def test_other_scripts_and_size_buckets(overlay: ModuleType) -> None:
    assert overlay.other_script("ՏԵՍԱԽՑԻԿ 2") and overlay.other_script("Камера 7 Двір")
    assert not overlay.other_script("КАМ 03 ПРОГУЛОЧНЫЙ ДВОР")
    assert not overlay.other_script("CAM 02 YARD")
    assert [overlay.size_bucket(s) for s in (12, 15, 16, 21, 32)] == [
        "12–15", "12–15", "16–20", "21–26", "27–32"]


def test_breakdown_by_clips_of_the_camera_and_by_duration(overlay: ModuleType) -> None:
    """A clip without a camera (a generator-2 truth.json) is a camera of its own; the
    breakdown counts each clip under its camera's number of clips in the corpus."""
    one = [reading("00", 0, 1)]
    truths = [
        *(truth(f"a{i}.mp4", "ok", one, "CAM 1", camera="cam00", duration=d)
          for i, d in enumerate((5.0, 9.96, 10.0, 120.0))),
        *(truth(f"b{i}.mp4", "ok", one, "CAM 2", camera="cam01", duration=59.9)
          for i in range(2)),
        truth("cctv_0007.mp4", "ok", one, "CAM 3", duration=60.0),
    ]
    results = {t["name"]: {"segments": [seg(0, 1, "00", "00")], "label": t["label"]}
               for t in truths}
    results["b0.mp4"] = {"segments": [], "label": None}
    acc = overlay.score_corpus(truths, results)
    assert acc["cameras"] == {"cameras": 3, "clips_per_camera_mean": 2.33,
                              "clips_per_camera": {"1": 1, "2": 1, "4": 1}}
    by_camera = acc["breakdown"]["camera_clips"]
    assert {k: g["clips"] for k, g in by_camera.items()} == {"1": 1, "2–3": 2, "4+": 4}
    assert by_camera["2–3"]["exact_pct"] == 50.0 and by_camera["4+"]["exact_pct"] == 100.0
    by_duration = acc["breakdown"]["duration"]
    assert [(k, g["clips"]) for k, g in by_duration.items()] == [
        ("< 10 s", 2), ("10–60 s", 3), ("≥ 60 s", 2)]
    assert overlay.camera_clips_bucket(3) == "2–3" and overlay.camera_clips_bucket(5) == "4+"


def test_speed_by_duration_sets_the_anchor_against_the_steps_of_all_workers(
        overlay: ModuleType) -> None:
    truths = [truth("short.mp4", "ok", [], None, duration=6.0),
              truth("mid.mp4", "ok", [], None, duration=30.0),
              truth("long1.mp4", "ok", [], None, duration=90.0),
              truth("long2.mp4", "ok", [], None, duration=60.0)]
    ffmpeg = {"short.mp4": 0.2, "mid.mp4": 1.0, "long1.mp4": 3.0, "long2.mp4": 2.0}
    steps = {"short.mp4": 0.8, "mid.mp4": 2.0, "long1.mp4": 4.0, "long2.mp4": None}
    speed = overlay.speed_by_duration(truths, ffmpeg, steps, workers=2)
    assert list(speed) == ["< 10 s", "10–60 s", "≥ 60 s"]
    assert speed["< 10 s"] == {"clips": 1, "video_seconds": 6.0, "ffmpeg_seconds": 0.2,
                               "ocr_step_seconds": 0.8, "ratio": 0.5, "missing": 0}
    assert speed["10–60 s"]["ratio"] == 1.0
    # a clip without a step time counts in neither sum
    long = speed["≥ 60 s"]
    assert (long["clips"], long["missing"], long["ffmpeg_seconds"], long["ratio"]) == (
        2, 1, 3.0, 1.5)
    assert overlay.speed_by_duration(truths[:1], ffmpeg, {}, workers=2)["< 10 s"]["ratio"] is None


def test_generator_2_keeps_its_cached_corpus_name(overlay: ModuleType) -> None:
    assert overlay.corpus_path(7, 200, 2).name == "corpus-7-200"
    assert overlay.corpus_path(7, 200, 3).name == "corpus-v3-7-200"
    assert overlay.corpus_path(7, 200, 2).parent == overlay.WORK


def test_the_order_a_person_says_is_the_corpus_s_one_slashed_order(overlay: ModuleType) -> None:
    def clip(*formats: str) -> dict[str, Any]:
        return {"overlays": [{"role": "clock", "clock_format": f} for f in formats]
                + [{"role": "label", "clock_format": None}]}

    us = "MM/DD/YYYY hh:mm:ss AM/PM"
    assert overlay.persons_order([clip(us), clip("DD.MM.YYYY HH:MM:SS"), clip()]) == "MM/DD"
    assert overlay.persons_order([clip("DD/MM/YYYY HH:MM:SS")]) == "DD/MM"
    assert overlay.persons_order([clip("YYYY/MM/DD HH:MM:SS"), clip("DD-MM-YYYY")]) is None
    # a vault holding recorders of both orders: no one word for the vault
    assert overlay.persons_order([clip(us), clip("DD/MM/YYYY HH:MM:SS")]) is None
