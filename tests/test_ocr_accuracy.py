"""OCR accuracy of `overlay_ocr` on generated DVR footage: clocks to the second, labels exactly.

Moved here from the pipeline benchmark, where a miss only printed FAIL: as a test it fails the
build. Six 10–12 s clips (the lengths the benchmark measured on) cover every clock format,
picture source and codec, with Cyrillic labels and clocks that roll over a minute, midnight and
a new year mid-clip. Each runs through the step's own code (probe, the shared decode pass,
`finish`) in this process, without a vault: the runner's plumbing is tested elsewhere, here only
what the step reads counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.media.frames import decode_pass
from strongroom.media.probe import probe
from strongroom.pipeline.step import Context
from strongroom.pipeline.steps import registry
from strongroom.testmedia import ClipSpec, generate_clip

T_EPS = 1e-3  # frames are 40 ms apart; float noise in t is far below this

CLIPS = [
    ClipSpec(name="o0.mp4", duration=12, camera_label="КАМ 03 ПФРСИ",
             clock_start=datetime(2020, 12, 31, 23, 59, 57), clock_format="DD-MM-YYYY",
             source="testsrc2", codec="h264"),
    ClipSpec(name="o1.avi", duration=10, camera_label="КАМ 07 ОТБ-1 САРАТОВ",
             clock_start=datetime(2021, 3, 4, 23, 59, 58), clock_format="YYYY/MM/DD",
             source="mandelbrot", codec="mpeg4"),
    ClipSpec(name="o2.mp4", duration=11, camera_label="КПП-2 ВЪЕЗД",
             clock_start=datetime(2019, 7, 8, 9, 59, 58), clock_format="DD.MM.YYYY",
             source="life", seed=202, codec="h264"),
    ClipSpec(name="o3.avi", duration=10, camera_label="ДЕЖУРНАЯ ЧАСТЬ",
             clock_start=datetime(2018, 2, 28, 13, 7, 41), clock_format="DD-MM-YYYY",
             source="life", seed=203, codec="mpeg4"),
    ClipSpec(name="o4.mp4", duration=10, camera_label="ПРОГУЛОЧНЫЙ ДВОР 3",
             clock_start=datetime(2024, 2, 29, 6, 30, 5), clock_format="YYYY/MM/DD",
             source="testsrc2", codec="h264"),
    ClipSpec(name="o5.avi", duration=12, camera_label="КАМ 11 ИК-10",
             clock_start=datetime(2022, 10, 14, 18, 45, 29), clock_format="DD.MM.YYYY",
             source="mandelbrot", codec="mpeg4"),
]


def test_the_clips_cover_every_format_source_and_codec() -> None:
    assert {c.clock_format for c in CLIPS} == {"DD-MM-YYYY", "YYYY/MM/DD", "DD.MM.YYYY"}
    assert {c.source for c in CLIPS} == {"testsrc2", "mandelbrot", "life"}
    assert {c.codec for c in CLIPS} == {"h264", "mpeg4"}


def read_clip(path: Path, workdir: Path) -> dict[str, Any]:
    """What `overlay_ocr` records for one clip (its step_run result)."""
    facts, _ = probe(path)
    workdir.mkdir()
    ctx = Context(sha256="0" * 64, path=path, workdir=workdir, facts=facts)
    job = registry()["overlay_ocr"].start(ctx)
    assert job.consumer is not None
    info = decode_pass(path, [job.consumer], facts.duration or 0.0)
    ctx.decoded_duration = info.decoded_s
    return job.finish().data


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("ocr")
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda c: generate_clip(c, root / "clips"), CLIPS))
    yield {c.name: read_clip(p, root / f"work-{c.name}")
           for c, p in zip(CLIPS, paths, strict=True)}


def truth(spec: ClipSpec, t: float) -> str:
    """drawtext prints the frame's own pts, truncated to the second."""
    assert spec.clock_start is not None
    return (spec.clock_start + timedelta(seconds=math.floor(t + T_EPS))).isoformat(sep=" ")


def test_at_least_99_percent_of_clock_readings_are_exact(
        results: dict[str, dict[str, Any]]) -> None:
    readings = exact = sampled = 0
    wrong: list[str] = []
    for spec in CLIPS:
        res = results[spec.name]
        sampled += int(res["frames_read"])
        for t, clock, fmt in res["readings"]:
            readings += 1
            ok = clock == truth(spec, float(t)) and fmt == spec.clock_format
            exact += ok
            if not ok:
                wrong.append(f"{spec.name} t={t}: {clock} {fmt} (truth {truth(spec, float(t))}"
                             f" {spec.clock_format})")
    # Nearly every sampled frame must yield a reading: a reader that gives up is no better.
    assert readings >= 0.9 * sampled, f"only {readings} readings of {sampled} frames sampled"
    assert exact >= 0.99 * readings, f"{exact}/{readings} exact; misread: {wrong}"


def test_every_camera_label_is_read_exactly(results: dict[str, dict[str, Any]]) -> None:
    wrong = {s.name: (results[s.name]["label"], s.camera_label) for s in CLIPS
             if results[s.name]["label"] != s.camera_label}
    assert wrong == {}


def test_each_clip_is_one_segment_starting_at_the_true_clock(
        results: dict[str, dict[str, Any]]) -> None:
    for spec in CLIPS:
        assert spec.clock_start is not None
        segs = results[spec.name]["segments"]
        assert len(segs) == 1, (spec.name, segs)
        assert segs[0]["clock_start"] == spec.clock_start.isoformat(sep=" "), spec.name
        assert segs[0]["format"] == spec.clock_format, spec.name


SHORT = ClipSpec(name="short.avi", duration=5, camera_label="ДЕЖУРНАЯ ЧАСТЬ",
                 clock_start=datetime(2018, 2, 28, 13, 7, 41), clock_format="DD-MM-YYYY",
                 source="life", seed=203, codec="mpeg4")


def test_the_label_of_a_five_second_clip_is_read_too(tmp_path: Path) -> None:
    res = read_clip(generate_clip(SHORT, tmp_path / "clips"), tmp_path / "work")
    assert res["label"] == SHORT.camera_label, res["label_reads"]
