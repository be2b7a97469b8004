"""The synthetic-clip generator produces what tests and demos rely on, using real ffmpeg."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.testmedia import ClipSpec, demo_set, generate_clip, reencode_copy, truncate_copy

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not installed",
)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def video_stream(info: dict[str, Any]) -> dict[str, Any]:
    streams: list[dict[str, Any]] = info["streams"]
    return next(s for s in streams if s["codec_type"] == "video")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return demo_set(tmp_path_factory.mktemp("demo"))


def test_generate_clip_matches_spec(tmp_path: Path) -> None:
    spec = ClipSpec(
        name="cam03_2020-03-14_0217.mp4",
        duration=3,
        camera_label="КАМ 03 ПФРСИ",
        clock_start=datetime(2020, 3, 14, 2, 17, 0),
    )
    path = generate_clip(spec, tmp_path)

    assert path == tmp_path / spec.name
    info = ffprobe(path)
    video = video_stream(info)
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.2)
    assert (video["width"], video["height"]) == (768, 576)
    assert video["codec_name"] == "h264"
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.name]  # no temp debris


def test_demo_set_has_identical_file_on_both_sticks(demo: dict[str, list[Path]]) -> None:
    assert set(demo) == {"usb1", "usb2"}
    by_name = {stick: {p.name: p for p in paths} for stick, paths in demo.items()}
    shared = set(by_name["usb1"]) & set(by_name["usb2"])
    assert shared == {"cam03_2020-03-14_0217.mp4"}
    (name,) = shared
    one, two = by_name["usb1"][name], by_name["usb2"][name]
    assert one != two
    assert one.read_bytes() == two.read_bytes()
    assert one.stat().st_mtime == two.stat().st_mtime
    assert all(p.is_file() for paths in demo.values() for p in paths)


def test_demo_set_near_duplicate_is_smaller_and_different(demo: dict[str, list[Path]]) -> None:
    by_name = {p.name: p for paths in demo.values() for p in paths}
    original = by_name["cam07_2020-03-15_2349.mp4"]
    small = by_name["cam07_2020-03-15_2349_small.mp4"]
    assert small.read_bytes() != original.read_bytes()
    assert video_stream(ffprobe(small))["width"] == 320


def test_truncate_copy_is_a_shorter_prefix(demo: dict[str, list[Path]], tmp_path: Path) -> None:
    src = demo["usb1"][0]
    dst = truncate_copy(src, tmp_path / "damaged.mp4")
    data, whole = dst.read_bytes(), src.read_bytes()
    assert 0 < len(data) < len(whole)
    assert len(data) == len(whole) // 2
    assert whole.startswith(data)


def test_reencode_copy_trims(tmp_path: Path) -> None:
    spec = ClipSpec(name="src.mp4", duration=3, camera_label="КАМ 11 ИК-10", clock_start=None)
    src = generate_clip(spec, tmp_path)
    dst = reencode_copy(src, tmp_path / "dup.mp4", width=160, trim_start=1.0)
    info = ffprobe(dst)
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.2)
    assert video_stream(info)["width"] == 160


def test_missing_ffmpeg_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    spec = ClipSpec(name="x.mp4", duration=1, camera_label="", clock_start=None)
    with pytest.raises(RuntimeError, match="ffmpeg"):
        generate_clip(spec, tmp_path)
    assert not (tmp_path / "x.mp4").exists()


def test_invalid_spec_rejected() -> None:
    with pytest.raises(ValueError, match="clock_format"):
        ClipSpec(
            name="x.mp4",
            duration=1,
            camera_label="",
            clock_start=None,
            clock_format="MM/DD/YYYY",  # type: ignore[arg-type]
        )
