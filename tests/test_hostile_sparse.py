"""Hostile streams against the sparse decode pass (`media.frames._Feed` with `Sparse`).

The promise under attack: a pass whose only consumer is the overlay reader hands it exactly
the frames (times, pixels) and the same end of decoding (`decoded_s`) as a pass that decodes
every frame, and fails with nothing but `MediaError`.

A helper session attacked it with 18 streams: 11 held, and these broke it: open-GOP H.264,
x264 intra refresh, HEVC open GOP, byte flips in an MP4 and in an MPEG-TS. A sparse pass now
doubts itself when the decoder does not show every keyframe it was fed as a keyframe, shows
frames out of time order, patches a damaged frame it flags, or fails; the pass is then made
again in full. Byte flips are not kept here: on a damaged file two full passes with the
codec's frame threads already differ in the pixels of the patched frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from strongroom.media.frames import PassInfo
from strongroom.pipeline.steps.overlay import SPARSE_MIN_S
from test_sparse_pass import _read

SECONDS = SPARSE_MIN_S + 4
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-threads", "1"]  # the same bytes every run


def _clip(tmp_path: Path, name: str, seconds: float, *codec: str, vf: str | None = None) -> Path:
    out = tmp_path / name
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
           "testsrc2=size=352x288:rate=25,noise=alls=12:allf=t", "-t", str(seconds),
           "-pix_fmt", "yuv420p"]
    if vf is not None:
        cmd += ["-vf", vf]
    subprocess.run([*cmd, *codec, str(out)], check=True)
    return out


def _assert_same(path: Path, tmp_path: Path) -> tuple[PassInfo, PassInfo]:
    """The sparse pass gives the reader what the full pass gives it, and ends where it ends."""
    full, full_info = _read(path, tmp_path, full=True)
    sparse, sparse_info = _read(path, tmp_path, full=False)
    assert [t for t, _ in sparse] == [t for t, _ in full]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(sparse, full, strict=True))
    assert sparse_info.decoded_s == full_info.decoded_s
    assert len([t for t, _ in full if t > 1.2]) >= 2  # readings after the head were compared
    return full_info, sparse_info


# -- streams on which the promise held ---------------------------------------------------

HELD = {
    "hevc-closed-gop-bframes.mp4": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                    "keyint=100:bframes=4:log-level=error"],
    "mpeg2-gop60.ts": ["-c:v", "mpeg2video", "-g", "60", "-bf", "2", "-f", "mpegts"],
    "mpeg2-open-gop.mpg": ["-c:v", "mpeg2video", "-g", "200", "-bf", "2", "-flags", "-cgop"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "150",
                 "-b:v", "300k"],
    "mjpeg.avi": ["-c:v", "mjpeg", "-q:v", "10"],
    "x264-bpyramid-bf8.mp4": [*X264, "-x264-params", "bframes=8:b-pyramid=normal:keyint=250"],
    "negative-start.mkv": [*X264, "-g", "50", "-bf", "3", "-output_ts_offset", "-3.7"],
    "start-at-1000s.ts": [*X264, "-g", "50", "-bf", "3", "-output_ts_offset", "1000.3",
                          "-f", "mpegts"],
}


@pytest.mark.parametrize("name", sorted(HELD))
def test_held_sparse_equals_full(tmp_path: Path, name: str) -> None:
    path = _clip(tmp_path, name, SECONDS, *HELD[name])
    full_info, sparse_info = _assert_same(path, tmp_path)
    assert sparse_info.error is None and full_info.error is None
    assert sparse_info.decoded_s == SECONDS


def test_held_variable_frame_rate_with_a_ten_second_hole(tmp_path: Path) -> None:
    """No frame between 20 s and 30 s (the timestamps keep the hole)."""
    path = _clip(tmp_path, "vfr.mkv", SECONDS + 16, *X264, "-g", "50", "-bf", "0",
                 "-fps_mode", "passthrough", vf="select='not(between(t,20,30))',setpts=PTS")
    _assert_same(path, tmp_path)


def test_held_first_keyframe_cut_away(tmp_path: Path) -> None:
    """Stream-copied from 3 s into a clip with one keyframe every 10 s: the first packets
    need a keyframe the file no longer holds."""
    src = _clip(tmp_path, "src.mkv", SECONDS + 16, *X264, "-g", "250", "-bf", "0")
    late = tmp_path / "late.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "3", "-i", str(src),
                    "-c", "copy", str(late)], check=True)
    _assert_same(late, tmp_path)


def test_held_faststart_mp4_cut_in_half(tmp_path: Path) -> None:
    """moov at the front declares 70 s; half the media data is there."""
    whole = _clip(tmp_path, "whole.mp4", SECONDS + 6, *X264, "-g", "50", "-bf", "3",
                  "-movflags", "+faststart")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    _, sparse_info = _assert_same(cut, tmp_path)
    assert sparse_info.decoded_s < SECONDS


# -- streams on which it did not, until a sparse pass in doubt was made again in full --------

def test_open_gop_h264(tmp_path: Path) -> None:
    path = _clip(tmp_path, "open-gop.mp4", SECONDS, *X264, "-g", "100", "-bf", "3",
                 "-x264opts", "open-gop=1")
    _assert_same(path, tmp_path)


def test_intra_refresh_h264(tmp_path: Path) -> None:
    path = _clip(tmp_path, "intra-refresh.mp4", SECONDS, *X264, "-x264-params",
                 "intra-refresh=1:keyint=50")
    _assert_same(path, tmp_path)


def test_open_gop_hevc(tmp_path: Path) -> None:
    path = _clip(tmp_path, "hevc-open-gop.mkv", SECONDS, "-c:v", "libx265", "-preset",
                 "ultrafast", "-x265-params", "keyint=250:open-gop=1:bframes=4:log-level=error")
    _assert_same(path, tmp_path)
