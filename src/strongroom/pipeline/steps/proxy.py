"""proxy: the browser-playable working copy the review app streams, plus a poster frame.

When the original already is H.264 (yuv420p) with AAC or no audio, the proxy is a remux
(`-c copy`, no quality loss, seconds even for hours of video); otherwise it is transcoded to
H.264/AAC at ≤ 720p with `-preset veryfast`. Either way `+faststart` puts the index first so
playback starts before the whole file arrives.
"""

from __future__ import annotations

from typing import ClassVar

from strongroom.media.probe import MediaFacts
from strongroom.media.run import run_tool, which
from strongroom.pipeline.step import Context, Derived, Job, Step, StepResult

MAX_HEIGHT = 720
POSTER_HEIGHT = 360


def can_remux(facts: MediaFacts) -> bool:
    return (facts.video_codec == "h264" and facts.pix_fmt in ("yuv420p", "yuvj420p")
            and facts.audio_codec in (None, "aac"))


def proxy_command(facts: MediaFacts, src: str, out: str) -> tuple[str, list[str]]:
    ffmpeg = which("ffmpeg")
    base = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", src,
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
        mid = (facts.duration or 0) / 2
        mode, argv = proxy_command(facts, str(self.ctx.path), str(out))
        poster_args = ["-map", "0:v:0", "-frames:v", "1",
                       "-vf", f"scale=-2:'min({POSTER_HEIGHT},ih)'", "-q:v", "4"]
        timeout = max(120.0, (facts.duration or 0) * 4)
        run_tool(argv, timeout=timeout, what="proxy")
        # A separate run that seeks in the input is cheaper than a second output of the
        # transcode (which would filter every frame up to the poster's time).
        pargv = [which("ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-y",
                 "-ss", f"{mid:.3f}", "-i", str(self.ctx.path), *poster_args, str(poster)]
        run_tool(pargv, timeout=120, what="poster")
        return StepResult(
            data={"mode": mode, "size": out.stat().st_size},
            derived=[
                Derived("proxy", out, "video/mp4", self.ctx.public_command(argv),
                        meta={"mode": mode}),
                Derived("poster", poster, "image/jpeg", self.ctx.public_command(pargv),
                        meta={"t": round(mid, 3)}),
            ],
            command=self.ctx.public_command(argv),
        )


class ProxyStep(Step):
    name: ClassVar[str] = "proxy"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _ProxyJob(ctx)
