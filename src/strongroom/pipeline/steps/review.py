"""review: the "safe" copies the review app shows before anyone chooses to see a clip.

Issue 14: nothing graphic by surprise, and unblurred pixels never reach the browser before a
person's explicit, logged reveal. So the blur and the greyscale are burned in here, on the
server, not left to CSS a browser may skip:

- `safe_proxy`: H.264 MP4 (yuv420p, at most 480 lines, `+faststart`), blurred, greyscale and
  with **no audio track at all** (muted is not enough: the sound of a beating is graphic). A
  keyframe every 2 s, so a seek lands near where the person asked. Sealed as separate chunks
  (`vault/chunks.py`) so the app can serve any byte range without decrypting from the start.
- `safe_poster` (JPEG, at most 360 lines) and `safe_thumb` (JPEG, 160 px wide) for the clip
  page and the lists, cut from the safe proxy itself: the step never makes an unblurred still.

The blur is a Gaussian (`gblur`, 3 passes: close to a true Gaussian) with sigma = height / 30
of the frame it blurs: 16 px at 480 lines. Chosen by looking at scikit-image's astronaut
portrait placed in a 720p frame and blurred at sigma 4, 8, 12 and 16 after scaling to 480
lines: at 8 the face's hair, mouth and smile still read, at 12 the features are gone but the
outline of a head reads, at 16 a face is a patch of tone and a body a soft silhouette:
enough to see that people are there and moving (what a reviewer needs to decide whether to
reveal), not who, nor what is done to whom. LBP face detection (the cascade scikit-image
ships) finds the face in the clear frame and nothing on it in the safe one
(`tests/test_review_step.py`). A Gaussian is applied after scaling, so its cost does not grow
with the original's resolution. The DVR clock and camera label burned into the picture blur
away with everything else; the app shows the clock as OCR read it, under the player.

The clear proxy the app plays after a reveal is the `proxy` step's (chunked since its version
2): the browser-playable working copy, a lossless remux when the original allows it. No second
clear copy is made here.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from strongroom.errors import MediaError
from strongroom.media.probe import READ_LOCAL_ONLY, MediaFacts
from strongroom.media.run import which
from strongroom.pipeline.step import Context, Derived, Job, Step, StepResult
from strongroom.pipeline.steps.proxy import grab_frame, made_duration, still_at, transcode

SAFE_HEIGHT = 480
SAFE_POSTER_HEIGHT = 360
SAFE_THUMB_WIDTH = 160
#: sigma of the Gaussian blur, as a fraction of the blurred frame's height (16 px at 480)
BLUR_PER_HEIGHT = 1 / 30
#: seconds between keyframes of the safe proxy: where a seek can start decoding
KEYFRAME_EVERY_S = 2


def safe_height(facts: MediaFacts) -> int:
    """The safe proxy's height: the original's, at most `SAFE_HEIGHT`, and even (yuv420p)."""
    h = facts.height or SAFE_HEIGHT
    return max(2, min(SAFE_HEIGHT, h) // 2 * 2)


def blur_sigma(height: int) -> float:
    return round(max(2.0, height * BLUR_PER_HEIGHT), 2)


def safe_filter(height: int) -> str:
    """Scale, then blur, then drop colour: the order that makes the blur cheap and leaves the
    chroma planes flat (U = V = 128) in the yuv420p the browser decodes."""
    return (f"scale=-2:{height}:flags=bicubic,gblur=sigma={blur_sigma(height)}:steps=3,"
            "format=gray,format=yuv420p")


def safe_proxy_command(facts: MediaFacts, src: str, out: str) -> list[str]:
    return [
        which("ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-y", *READ_LOCAL_ONLY,
        "-i", src, "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-map_chapters", "-1", "-vf", safe_filter(safe_height(facts)),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "28",
        "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_EVERY_S})",
        "-movflags", "+faststart", "-f", "mp4", out,
    ]


class _ReviewJob(Job):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def finish(self) -> StepResult:
        facts = self.ctx.video_facts()
        work = self.ctx.workdir
        out, poster, thumb = work / "safe.mp4", work / "safe_poster.jpg", work / "safe_thumb.jpg"
        argv = safe_proxy_command(facts, str(self.ctx.path), str(out))
        transcode(self.ctx, facts, argv, out, "safe proxy")
        made = made_duration(out)
        scale = f"scale=-2:'2*trunc(min({SAFE_POSTER_HEIGHT},ih)/2)'"
        mid, pargv = still_at(lambda t: self._still(out, poster, t, scale), poster,
                              made / 2 if made else 0.0, "safe poster")
        targv = self._still(poster, thumb, 0.0, f"scale={SAFE_THUMB_WIDTH}:-2")
        if not thumb.is_file():
            raise MediaError("ffmpeg made no safe thumbnail")
        height = safe_height(facts)
        meta = {"blur_sigma": blur_sigma(height), "height": height, "audio": False}
        command = self.ctx.public_command(argv)
        return StepResult(
            data={"size": out.stat().st_size, "duration": made, **meta},
            derived=[
                Derived("safe_proxy", out, "video/mp4", command, meta=meta, chunked=True),
                Derived("safe_poster", poster, "image/jpeg", self.ctx.public_command(pargv),
                        meta={"t": round(mid, 3), "from": "safe_proxy"}),
                Derived("safe_thumb", thumb, "image/jpeg", self.ctx.public_command(targv),
                        meta={"from": "safe_poster"}),
            ],
            command=command,
        )

    def _still(self, src: Path, dest: Path, t: float, scale: str) -> list[str]:
        """One greyscale JPEG from the (already blurred) safe proxy or poster: no still here
        is ever cut from the original's clear pixels."""
        return grab_frame(self.ctx, src, dest, t, f"{scale},format=gray", "safe still")


class ReviewStep(Step):
    name: ClassVar[str] = "review"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _ReviewJob(ctx)
