"""Synthetic DVR/CCTV-style clips, so demos and tests never need (or contain) real footage.

Everything is rendered by ffmpeg from its built-in lavfi test sources, with a burnt-in
DVR clock and camera label drawn the way cheap recorders do it. The helpers around
`generate_clip` produce the awkward cases a leaked archive really contains: the same file
on two USB sticks, re-encoded near-duplicates, clips with no overlay and damaged copies.
"""

from __future__ import annotations

import calendar
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from strongroom.errors import MediaError
from strongroom.media.run import run_tool

__all__ = [
    "FONT_FILE",
    "ClipSpec",
    "ClockFormat",
    "Codec",
    "Source",
    "demo_set",
    "generate_clip",
    "reencode_copy",
    "still_clip",
    "truncate_copy",
]

ClockFormat = Literal["DD-MM-YYYY", "YYYY/MM/DD", "DD.MM.YYYY"]
Source = Literal["testsrc2", "mandelbrot", "life"]
Codec = Literal["h264", "mpeg4"]

#: DejaVu ships Cyrillic glyphs; most "default" fonts ffmpeg could fall back to do not.
FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

_STRFTIME: dict[str, str] = {
    "DD-MM-YYYY": "%d-%m-%Y %H:%M:%S",
    "YYYY/MM/DD": "%Y/%m/%d %H:%M:%S",
    "DD.MM.YYYY": "%d.%m.%Y %H:%M:%S",
}
_SOURCES = ("testsrc2", "mandelbrot", "life")
_CODECS = ("h264", "mpeg4")


@dataclass(frozen=True)
class ClipSpec:
    """One synthetic recording; frozen so a spec can double as a dict key in test tables."""

    name: str
    duration: int
    camera_label: str
    clock_start: datetime | None
    clock_format: ClockFormat = "DD-MM-YYYY"
    source: Source = "testsrc2"
    #: only for `life`: different seeds give visually unrelated clips (testsrc2 and
    #: mandelbrot always draw the same picture at the same time, so two clips of one source
    #: are near-duplicates of each other apart from their overlays)
    seed: int = 0
    size: tuple[int, int] = (768, 576)
    fps: int = 25
    codec: Codec = "h264"
    audio: bool = False

    def __post_init__(self) -> None:
        # Literal types are not enforced at runtime, and a typo here would otherwise
        # surface as an opaque ffmpeg error (or a silently wrong clock).
        if not self.name or Path(self.name).name != self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain file name, got {self.name!r}")
        if self.duration <= 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.clock_format not in _STRFTIME:
            raise ValueError(f"unknown clock_format {self.clock_format!r}")
        if self.source not in _SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        if self.codec not in _CODECS:
            raise ValueError(f"unknown codec {self.codec!r}")
        width, height = self.size
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            # yuv420p (needed for players to open the result) requires even dimensions.
            raise ValueError(f"size must be positive and even, got {self.size}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


# --- ffmpeg plumbing -------------------------------------------------------------------


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name!r} not found on PATH; install ffmpeg (e.g. apt install ffmpeg)")
    return path


def _run_ffmpeg(args: list[str], *, timeout: float) -> None:
    """Through `run_tool` like every tool (process group, no core dumps, dies with us), but
    without its address-space limit: the input is our own synthetic picture, and the
    decompression bomb `still_clip` renders needs ~2 GB by design."""
    cmd = [_binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    try:
        run_tool(cmd, timeout=timeout, memory=None)
    except MediaError as exc:
        raise RuntimeError(str(exc)) from exc


@contextmanager
def _atomic_target(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`, renamed into place only on success.

    A killed or failed run must never leave something that looks like a finished clip,
    or tests and demos would happily ingest half a file. The temp name keeps the real
    suffix because ffmpeg picks the container from it.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".partial-{final.name}")
    tmp.unlink(missing_ok=True)  # debris from an earlier killed run
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


# drawtext text goes through three parsers, each with its own backslash escaping:
#   1. the filtergraph parser splits filters on , ; [ ]
#   2. the filter's option parser splits key=value pairs on :
#   3. drawtext's %{...} expansion splits function arguments on : and }
# Escaping each layer mechanically, innermost first, is far less fragile than
# hand-writing runs of backslashes.


def _escape(text: str, specials: str) -> str:
    return "".join("\\" + c if c in specials else c for c in text)


def _expansion_arg(text: str) -> str:
    return _escape(text, "\\':}")


def _filter_value(text: str) -> str:
    return _escape(_escape(text, "\\':"), "\\'[],;")


def _wall_clock_epoch(start: datetime) -> int:
    """Epoch whose UTC reading equals the wall-clock time written on `start`.

    drawtext renders with gmtime, and a DVR clock has no notion of time zones: it
    shows whatever local time it was set to, so an aware datetime is shown as written,
    not converted to UTC.
    """
    return calendar.timegm(start.replace(tzinfo=None).timetuple())


def _drawtext(text: str, *, x: str, y: str, fontsize: int, expand: bool) -> str:
    options = [
        f"fontfile={_filter_value(FONT_FILE)}",
        f"text={_filter_value(text)}",
        f"expansion={'normal' if expand else 'none'}",
        f"x={x}",
        f"y={y}",
        f"fontsize={fontsize}",
        "fontcolor=white",
        "box=1",
        "boxcolor=black",
        "boxborderw=4",
    ]
    return "drawtext=" + ":".join(options)


def _video_filter(spec: ClipSpec) -> str:
    width, height = spec.size
    filters: list[str] = []
    if spec.source in ("mandelbrot", "life"):
        filters.append(f"scale={width}:{height}")  # rendered at half size; see _inputs
    if spec.clock_start is not None:
        fontsize = max(12, height // 24)
        epoch = _wall_clock_epoch(spec.clock_start)
        clock = f"%{{pts:gmtime:{epoch}:{_expansion_arg(_STRFTIME[spec.clock_format])}}}"
        filters.append(_drawtext(clock, x="10", y="10", fontsize=fontsize, expand=True))
        filters.append(
            _drawtext(spec.camera_label, x="10", y="h-th-10", fontsize=fontsize, expand=False)
        )
    filters.append("format=yuv420p")
    return ",".join(filters)


def _inputs(spec: ClipSpec) -> list[str]:
    width, height = spec.size
    if spec.source == "mandelbrot":
        # mandelbrot costs ~10x testsrc2 per pixel; half resolution keeps the demo set fast
        # and the upscale softness looks suitably like a cheap DVR anyway.
        src = f"mandelbrot=s={width // 2}x{height // 2}:r={spec.fps}"
    elif spec.source == "life":
        # Conway's life from a seeded random start, cells drawn 2×: cheap, never alike, and
        # dim and grey like night-time CCTV (the overlay is the brightest thing on screen)
        src = (f"life=s={width // 2}x{height // 2}:r={spec.fps}:seed={spec.seed}:mold=10:"
               "ratio=0.3:life_color=#8c8c80:death_color=#3c3c44:mold_color=#646058")
    else:
        src = f"testsrc2=s={width}x{height}:r={spec.fps}"
    args = ["-f", "lavfi", "-i", src]
    if spec.audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
    return args


def _video_codec_args(codec: Codec, *, crf: int = 28) -> list[str]:
    if codec == "mpeg4":
        return ["-c:v", "mpeg4", "-q:v", "6"]
    return ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf)]


# --- public API ------------------------------------------------------------------------


def generate_clip(spec: ClipSpec, out_dir: Path) -> Path:
    """Render `spec` to `out_dir / spec.name` and return that path.

    The clock is driven by each frame's timestamp rather than printed once, so it ticks
    one second per second of video exactly like a recorder's overlay, which is what
    timestamp-reading analysis code needs to be tested against.
    """
    final = out_dir / spec.name
    args = [*_inputs(spec), "-t", str(spec.duration), "-vf", _video_filter(spec)]
    args += _video_codec_args(spec.codec)
    if spec.audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    # bitexact keeps ffmpeg's version strings out of the file, so reruns are reproducible.
    args += ["-fflags", "+bitexact", "-map_metadata", "-1"]
    with _atomic_target(final) as tmp:
        _run_ffmpeg([*args, str(tmp)], timeout=60 + 10 * spec.duration)
    return final


def truncate_copy(src: Path, dst: Path, fraction: float = 0.5, *,
                  keep_index: bool = False) -> Path:
    """Write the first `fraction` of `src`'s bytes to `dst`: a clip cut short by a bad copy.

    Byte-level truncation (not ffmpeg -t) is the point: it leaves an MP4 with a missing
    or dangling index, the damage a yanked USB stick really causes. With `keep_index` the
    MP4's index is moved to the front first (`+faststart`, as many recorders and phones
    write it), so the copy still probes as the whole recording while holding only its start:
    the truncated clip that is *not* refused by ffprobe.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    if keep_index:
        front = dst.with_name(f".faststart-{dst.name}")
        try:
            _run_ffmpeg(["-i", str(src), "-c", "copy", "-movflags", "+faststart",
                         "-f", "mp4", str(front)], timeout=120)
            return truncate_copy(front, dst, fraction)
        finally:
            front.unlink(missing_ok=True)
    remaining = int(src.stat().st_size * fraction)
    with _atomic_target(dst) as tmp, src.open("rb") as fin, tmp.open("wb") as fout:
        while remaining > 0:
            chunk = fin.read(min(remaining, 1 << 20))
            if not chunk:
                break
            fout.write(chunk)
            remaining -= len(chunk)
    return dst


def still_clip(dst: Path, width: int, height: int, *, frames: int = 1, fps: int = 25) -> Path:
    """A black H.264 MP4 of `frames` frames of `width`×`height`: a one-frame clip, or (large
    sizes) the decompression bomb of a hostile archive — 16000×16000 is ~750 KB on disk and
    ~1.5 GB decoded to RGB. Rendering it takes ffmpeg itself a few seconds and ~2 GB."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"size must be positive and even, got {width}x{height}")
    if frames <= 0:
        raise ValueError(f"frames must be positive, got {frames}")
    args = ["-f", "lavfi", "-i", f"color=c=black:s={width}x{height}:r={fps}",
            "-frames:v", str(frames), *_video_codec_args("h264"), "-pix_fmt", "yuv420p",
            "-fflags", "+bitexact", "-map_metadata", "-1"]
    with _atomic_target(dst) as tmp:
        _run_ffmpeg([*args, str(tmp)], timeout=120)
    return dst


def reencode_copy(
    src: Path, dst: Path, *, width: int = 320, crf: int = 35, trim_start: float = 0.0,
    watermark: str | None = None,
) -> Path:
    """Write a smaller, lossier, optionally trimmed (and watermarked) copy of `src` to `dst`.

    This is what a clip looks like after being forwarded through a messenger or re-posted by
    a channel that stamps its name on it: different bytes and hash, same content, so it
    exercises near-duplicate detection.
    """
    if width <= 0 or width % 2:
        raise ValueError(f"width must be positive and even, got {width}")
    if trim_start < 0:
        raise ValueError(f"trim_start must be >= 0, got {trim_start}")
    args = ["-ss", f"{trim_start:.3f}", "-i", str(src), "-map", "0:v:0", "-map", "0:a?"]
    vf = f"scale={width}:-2"
    if watermark:
        vf += "," + _drawtext(watermark, x="(w-tw)/2", y="(h-th)/2", fontsize=max(12, width // 20),
                              expand=False).replace("fontcolor=white", "fontcolor=white@0.6"
                                                    ).replace("box=1", "box=0")
    args += ["-vf", vf + ",format=yuv420p", *_video_codec_args("h264", crf=crf)]
    args += ["-c:a", "aac", "-b:a", "32k", "-fflags", "+bitexact", "-map_metadata", "-1"]
    with _atomic_target(dst) as tmp:
        _run_ffmpeg([*args, str(tmp)], timeout=120)
    return dst


_NOTES = """\
ДЕМО-НАБОР / DEMO SET — SYNTHETIC DATA

Все видео в этом наборе сгенерированы ffmpeg (testsrc2 / mandelbrot).
Это не реальные записи; любые совпадения с реальными камерами случайны.

All clips were generated by strongroom.testmedia. They contain no real footage.
cam03_2020-03-14_0217.mp4 is present on both sticks (byte-identical).
cam07_2020-03-15_2349_small.mp4 is a re-encoded near-duplicate.
noosd_0001.mp4 has no on-screen display.
"""


def demo_set(out_dir: Path) -> dict[str, list[Path]]:
    """Build a small two-USB-stick archive with the overlaps a real leak has.

    Returns every file written (clips and notes.txt), per stick, sorted. Names, mtimes
    (end of recording, read as UTC) and, with the same ffmpeg build, bytes are
    deterministic, so ingest output can be compared across runs.
    """
    usb1 = out_dir / "usb1"
    usb2 = out_dir / "usb2"
    dvr = usb1 / "DVR"
    plan: list[tuple[ClipSpec, Path]] = [
        (
            ClipSpec(
                name="cam03_2020-03-14_0217.mp4",
                duration=6,
                camera_label="КАМ 03 ПФРСИ",
                clock_start=datetime(2020, 3, 14, 2, 17, 0),
            ),
            dvr,
        ),
        (
            ClipSpec(
                name="cam03_2020-03-14_0231.mp4",
                duration=5,
                camera_label="КАМ 03 ПФРСИ",
                clock_start=datetime(2020, 3, 14, 2, 31, 12),
                source="mandelbrot",
            ),
            dvr,
        ),
        (
            ClipSpec(
                name="cam07_2020-03-15_2349.mp4",
                duration=8,
                camera_label="КАМ 07 ОТБ-1 САРАТОВ",
                clock_start=datetime(2020, 3, 15, 23, 49, 55),  # crosses midnight
                clock_format="YYYY/MM/DD",
                audio=True,
            ),
            dvr,
        ),
        (
            ClipSpec(
                name="cam11_2021-06-02_1405.mp4",
                duration=4,
                camera_label="КАМ 11 ИК-10",
                clock_start=datetime(2021, 6, 2, 14, 5, 30),
                clock_format="DD.MM.YYYY",
                codec="mpeg4",
                source="life",
                seed=11,
            ),
            usb2,
        ),
        (
            ClipSpec(
                name="noosd_0001.mp4",
                duration=4,
                camera_label="",
                clock_start=None,
                source="life",
                seed=1,
            ),
            usb2,
        ),
    ]

    written: dict[str, list[Path]] = {"usb1": [], "usb2": []}
    clips: dict[str, Path] = {}
    for spec, where in plan:
        path = generate_clip(spec, where)
        # A recorder stamps the file when the segment closes; a clip without an overlay
        # still needs some fixed mtime or reruns would differ.
        start = spec.clock_start or datetime(2020, 3, 16, 8, 0, 0)
        _set_mtime(path, start + timedelta(seconds=spec.duration))
        clips[spec.name] = path
        written["usb1" if where.is_relative_to(usb1) else "usb2"].append(path)

    shared = clips["cam03_2020-03-14_0217.mp4"]
    written["usb2"].append(Path(shutil.copy2(shared, usb2 / shared.name)))

    original = clips["cam07_2020-03-15_2349.mp4"]
    near_dup = reencode_copy(original, usb2 / "cam07_2020-03-15_2349_small.mp4", trim_start=1.0)
    shutil.copystat(original, near_dup)
    written["usb2"].append(near_dup)

    notes = usb1 / "notes.txt"
    notes.write_text(_NOTES, encoding="utf-8")
    _set_mtime(notes, datetime(2020, 3, 20, 10, 0, 0))
    written["usb1"].append(notes)

    return {stick: sorted(paths) for stick, paths in written.items()}


def _set_mtime(path: Path, when: datetime) -> None:
    stamp = _wall_clock_epoch(when)
    os.utime(path, (stamp, stamp))
