"""A pass whose only consumer is the overlay reader decodes keyframes only after the first
second (`media.frames.Sparse`), and hands the reader exactly the frames a pass that decodes
every frame hands it: the same times, the same pixels, the same end of decoding.

Streams: keyframes every 2 s with B-frames (the benchmark corpus's x264), keyframes every 7
frames, a single keyframe (every reading time must then be caught up from skipped packets),
keyframes further apart than half the readings' spacing, and an MPEG-TS cut short midway."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from strongroom.media.frames import decode_pass
from strongroom.media.probe import probe
from strongroom.pipeline.step import Context
from strongroom.pipeline.steps import registry
from strongroom.pipeline.steps.overlay import SPARSE_MIN_S


class _EveryFrame:
    """A consumer that wants no frame but is not sparse: the pass decodes every frame."""

    wants_motion = False

    def wanted_times(self, duration: float) -> list[float]:
        return []

    def take(self, t: float, frame: Any) -> None:
        pass

    def motion(self, t: float, change: float | None, key: bool) -> bool | None:
        return None


def _clip(tmp_path: Path, name: str, seconds: float, *codec: str) -> Path:
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=352x288:rate=25,noise=alls=12:allf=t", "-t", str(seconds),
                    "-pix_fmt", "yuv420p", *codec, str(out)], check=True)
    return out


def _read(path: Path, tmp_path: Path, *, full: bool) -> tuple[list[tuple[float, Any]], Any]:
    facts, _ = probe(path)
    ctx = Context(sha256="0" * 64, path=path, workdir=tmp_path, facts=facts)
    job = registry()["overlay_ocr"].start(ctx)
    assert job.consumer is not None
    consumers = [job.consumer, _EveryFrame()] if full else [job.consumer]
    info = decode_pass(path, consumers, facts.duration or 0.0)
    return job.pixels(), info


STREAMS = {
    "gop2-bframes.mp4": ["-c:v", "libx264", "-preset", "superfast", "-g", "50", "-bf", "3"],
    "gop7.mp4": ["-c:v", "libx264", "-preset", "superfast", "-g", "7", "-bf", "0"],
    "one-keyframe.mp4": ["-c:v", "libx264", "-preset", "superfast", "-g", "10000",
                         "-sc_threshold", "0"],
    "gop3s-mpeg4.avi": ["-c:v", "mpeg4", "-g", "75", "-bf", "2"],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_sparse_pass_hands_the_reader_the_frames_a_full_pass_does(
        tmp_path: Path, name: str) -> None:
    path = _clip(tmp_path, name, SPARSE_MIN_S + 4, *STREAMS[name])
    full, full_info = _read(path, tmp_path, full=True)
    sparse, sparse_info = _read(path, tmp_path, full=False)
    assert [t for t, _ in sparse] == [t for t, _ in full]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(sparse, full, strict=True))
    assert sparse_info.decoded_s == full_info.decoded_s
    # (every reading time is caught up in a stream of one keyframe, and in the shortest
    # sparse clip most are in one whose keyframes come every 3 s: see the minute-long one)
    if name not in ("one-keyframe.mp4", "gop3s-mpeg4.avi"):
        assert sparse_info.frames < full_info.frames / 2
    assert len(full) > 25 + 5  # the first second and a bit, and readings after it


def test_a_minute_with_keyframes_every_3_s_is_read_on_fewer_than_half_its_frames(
        tmp_path: Path) -> None:
    path = _clip(tmp_path, "minute.avi", 64, *STREAMS["gop3s-mpeg4.avi"])
    full, full_info = _read(path, tmp_path, full=True)
    sparse, sparse_info = _read(path, tmp_path, full=False)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(sparse, full, strict=True))
    assert sparse_info.frames < full_info.frames / 2


def test_a_short_clip_is_decoded_whole(tmp_path: Path) -> None:
    path = _clip(tmp_path, "short.mp4", SPARSE_MIN_S - 5, *STREAMS["gop2-bframes.mp4"])
    full, full_info = _read(path, tmp_path, full=True)
    sparse, sparse_info = _read(path, tmp_path, full=False)
    assert sparse_info.frames == full_info.frames
    assert [t for t, _ in sparse] == [t for t, _ in full]


def test_a_stream_cut_short_ends_where_decoding_ends_in_both_passes(tmp_path: Path) -> None:
    whole = _clip(tmp_path, "whole.ts", SPARSE_MIN_S + 10, "-c:v", "libx264", "-preset",
                  "superfast", "-g", "50", "-f", "mpegts")
    cut = tmp_path / "cut.ts"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3 + 17])  # mid-packet
    full, full_info = _read(cut, tmp_path, full=True)
    sparse, sparse_info = _read(cut, tmp_path, full=False)
    assert sparse_info.decoded_s == full_info.decoded_s < SPARSE_MIN_S + 10
    assert [t for t, _ in sparse] == [t for t, _ in full]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(sparse, full, strict=True))


@pytest.mark.parametrize("name", ["gop2-bframes.mp4", "one-keyframe.mp4"])
def test_packets_kept_past_the_cap_are_decoded_and_change_nothing(
        tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.media import frames

    path = _clip(tmp_path, name, SPARSE_MIN_S + 4, *STREAMS[name])
    full, _ = _read(path, tmp_path, full=True)
    monkeypatch.setattr(frames, "MAX_SKIPPED", 7)
    capped, _ = _read(path, tmp_path, full=False)
    assert [t for t, _ in capped] == [t for t, _ in full]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(capped, full, strict=True))


def test_a_header_declaring_hours_for_a_minute_of_video(tmp_path: Path) -> None:
    """Reading times spread over the declared three hours all lie past the last frame: a
    sparse pass decodes the skipped packets at the end, and every one of them gets the last
    frame, as in a full pass."""
    path = _clip(tmp_path, "minute.mp4", SPARSE_MIN_S + 4, *STREAMS["gop2-bframes.mp4"])
    facts, _ = probe(path)
    got = {}
    for full in (True, False):
        ctx = Context(sha256="0" * 64, path=path, workdir=tmp_path, facts=facts)
        job = registry()["overlay_ocr"].start(ctx)
        assert job.consumer is not None
        consumers = [job.consumer, _EveryFrame()] if full else [job.consumer]
        info = decode_pass(path, consumers, 3 * 3600.0)  # what a lying header declares
        got[full] = (job.pixels(), info.decoded_s)
    (full_px, full_end), (sparse_px, sparse_end) = got[True], got[False]
    assert full_end == sparse_end < SPARSE_MIN_S + 5
    assert [t for t, _ in sparse_px] == [t for t, _ in full_px]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(sparse_px, full_px, strict=True))


def test_a_stream_whose_clock_restarts_midway_is_decoded_without_error(tmp_path: Path) -> None:
    """Two MPEG-TS recordings joined byte for byte: the second's timestamps start again at
    zero. Which frames are read may differ from a full pass there; the pass ends, and gives
    the reader the first second and frames after it."""
    a = _clip(tmp_path, "a.ts", SPARSE_MIN_S + 4, "-c:v", "libx264", "-preset", "superfast",
              "-g", "50", "-f", "mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() * 2)
    sparse, info = _read(joined, tmp_path, full=False)
    assert info.frames > 0 and info.error is None
    assert len([t for t, _ in sparse if t <= 1.2]) >= 25
