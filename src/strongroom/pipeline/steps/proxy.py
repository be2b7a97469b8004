"""proxy: the browser-playable working copy the review app streams, plus a poster frame.

It is also the clear video the review app plays after a person's reveal: sealed as separate
1 MiB chunks (`vault/chunks.py`), so a seek anywhere decrypts only the chunks it reads. What
plays before a reveal is the `review` step's blurred, greyscale, silent `safe_proxy`.

When the original already is H.264 (yuv420p) with AAC or no audio, the proxy is a remux
(`-c copy`, no quality loss, seconds even for hours of video); otherwise it is transcoded to
H.264/AAC at ≤ 720p with `-preset veryfast`. Either way `+faststart` puts the index first so
playback starts before the whole file arrives.

The poster is the frame in the middle of what the proxy really holds: a truncated file
declares its whole length (6 s) but may hold 0.28 s, and seeking past its end gives no frame at
all. So the proxy's own duration decides, and the first frame is the fallback (a one-frame clip
has no "middle" to seek to).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from strongroom.errors import MediaError
from strongroom.media.probe import READ_LOCAL_ONLY, MediaFacts, probe
from strongroom.media.run import run_tool, which
from strongroom.pipeline.step import Context, Derived, Job, Step, StepResult

MAX_HEIGHT = 720
POSTER_HEIGHT = 360
#: The longest declared length a timeout is made from (a DVR file is a day at most).
DECLARED_CAP_S = 12 * 3600.0
#: RLIMIT_FSIZE of the poster's ffmpeg (one JPEG of at most 360 lines).
POSTER_FILE_SIZE = 16 * 1024**2


def proxy_file_size(original: int) -> int:
    """RLIMIT_FSIZE of the proxy's ffmpeg: a 720p working copy is rarely bigger than its
    original; 8× and a 1 GiB floor leave room for a tiny, very compressed original, and stop a
    few KB that declare hours of frames from filling the disk."""
    return max(1024**3, 8 * original)


def can_remux(facts: MediaFacts) -> bool:
    return (facts.video_codec == "h264" and facts.pix_fmt in ("yuv420p", "yuvj420p")
            and facts.audio_codec in (None, "aac"))


def proxy_command(facts: MediaFacts, src: str, out: str) -> tuple[str, list[str]]:
    ffmpeg = which("ffmpeg")
    base = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", *READ_LOCAL_ONLY, "-i", src,
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1"]
    if can_remux(facts):
        return "remux", [*base, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", out]
    return "transcode", [
        *base, "-vf", f"scale=-2:'min({MAX_HEIGHT},ih)':flags=bicubic,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-movflags", "+faststart", "-f", "mp4", out,
    ]


class _ProxyJob(Job):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def finish(self) -> StepResult:
        facts = self.ctx.video_facts()
        out = self.ctx.workdir / "proxy.mp4"
        poster = self.ctx.workdir / "poster.jpg"
        mode, argv = proxy_command(facts, str(self.ctx.path), str(out))
        transcode(self.ctx, facts, argv, out, "proxy")
        made = made_duration(out)
        known = [d for d in (facts.duration, self.ctx.decoded_duration, made) if d is not None]
        mid, pargv = still_at(lambda t: self._poster(t, poster), poster,
                              min(known) / 2 if known else 0.0, "poster")
        return StepResult(
            data={"mode": mode, "size": out.stat().st_size, "duration": made},
            derived=[
                Derived("proxy", out, "video/mp4", self.ctx.public_command(argv),
                        meta={"mode": mode}, chunked=True),
                Derived("poster", poster, "image/jpeg", self.ctx.public_command(pargv),
                        meta={"t": round(mid, 3)}),
            ],
            command=self.ctx.public_command(argv),
        )

    def _poster(self, t: float, poster: Path) -> list[str]:
        """One frame at `t`. A separate run that seeks in the input is cheaper than a second
        output of the transcode (which would filter every frame up to the poster's time)."""
        return grab_frame(self.ctx, self.ctx.path, poster, t,
                          f"scale=-2:'min({POSTER_HEIGHT},ih)'", "poster")


def transcode(ctx: Context, facts: MediaFacts, argv: list[str], out: Path, what: str) -> None:
    """Run ffmpeg's `argv` making `out` from the original, sandboxed; `MediaError` when it
    wrote nothing. The timeout grows with the declared length, counted up to 12 h (a crafted
    header declares ~10^9 s); `tool_timeout` in the options overrides it (tests, the fuzz
    campaign)."""
    timeout = float(ctx.options.get("tool_timeout") or 0) or max(
        120.0, min(facts.duration or 0.0, DECLARED_CAP_S) * 4)
    run_tool(argv, timeout=timeout, what=what, isolate=True,
             file_size=proxy_file_size(ctx.path.stat().st_size))
    if not out.is_file() or out.stat().st_size == 0:
        raise MediaError(f"ffmpeg wrote no {what} (no decodable video)")


def still_at(grab: Callable[[float], list[str]], dest: Path, t: float,
             what: str) -> tuple[float, list[str]]:
    """A still at `t` by `grab`, else the first frame (a file holds less than it declares);
    returns where it was taken and its command line."""
    argv = grab(t)
    if not dest.is_file() and t > 0:
        t = 0.0
        argv = grab(t)
    if not dest.is_file():
        raise MediaError(f"ffmpeg found no frame for a {what}")
    return t, argv


def grab_frame(ctx: Context, src: Path, dest: Path, t: float, vf: str, what: str) -> list[str]:
    """One JPEG of `src` at `t` seconds (the first frame for 0) through the filter `vf`, by a
    sandboxed ffmpeg; returns its command line."""
    argv = [which("ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-y",
            *(["-ss", f"{t:.3f}"] if t > 0 else []), *READ_LOCAL_ONLY, "-i", str(src),
            "-map", "0:v:0", "-frames:v", "1", "-vf", vf, "-q:v", "4", str(dest)]
    run_tool(argv, timeout=float(ctx.options.get("tool_timeout") or 120), what=what,
             isolate=True, file_size=POSTER_FILE_SIZE)
    return argv


def made_duration(path: Path) -> float | None:
    """How long a file ffmpeg made really is: all of the input it could decode."""
    try:
        facts, _argv = probe(path)
    except MediaError:
        return None
    return facts.duration


class ProxyStep(Step):
    name: ClassVar[str] = "proxy"
    #: 2: the proxy is sealed as separate chunks, which the review app reads by byte range
    version: ClassVar[str] = "2"

    def start(self, ctx: Context) -> Job:
        return _ProxyJob(ctx)
