"""keyframes: timestamped thumbnails spread over the clip, a contact sheet of them, and a
frame right after each scene cut.

An investigator with a thousand clips looks at the sheet first. Thumbnails are taken at evenly
spaced video times (a fixed grid is comparable between clips, unlike codec keyframes, whose
times the `scenes` step records); cuts use the same score as `scenes`. Everything is stored as
encrypted derivatives; showing a sheet to a person is a separate, logged act (and blurred
unless revealed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from strongroom.media.frames import rgb
from strongroom.pipeline.step import Context, Derived, Job, Step, StepResult
from strongroom.pipeline.steps.scenes import CUT_SCORE, MIN_CUT_GAP

THUMB_WIDTH = 320
MAX_THUMBS = 24
COLUMNS = 4
MAX_CUTS = 50
FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def sample_times(duration: float) -> list[float]:
    """One thumbnail per ~5 s, at least 4 (short clips: one per second), at most 24."""
    n = min(MAX_THUMBS, max(4, round(duration / 5))) if duration >= 4 else max(1, int(duration))
    return [round((i + 0.5) * duration / n, 3) for i in range(n)]


def hms(t: float) -> str:
    t = int(t)
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


class _KeyframesJob(Job):
    wants_motion = True  # to catch scene cuts as they are decoded

    def __init__(self, ctx: Context) -> None:
        self.consumer = self
        self.ctx = ctx
        self.thumbs: list[tuple[float, Path]] = []
        self.cuts: list[tuple[float, float, Path]] = []
        self.pending_cut: float | None = None

    def wanted_times(self, duration: float) -> list[float]:
        return sample_times(duration)

    def take(self, t: float, frame: Any) -> None:
        from PIL import Image

        if self.pending_cut is not None:  # asked for by `motion`: the first frame after a cut
            path = self.ctx.workdir / f"cut-{len(self.cuts):03d}.jpg"
            Image.fromarray(rgb(frame, THUMB_WIDTH)).save(path, quality=85)
            self.cuts.append((t, self.pending_cut, path))
            self.pending_cut = None
            return
        path = self.ctx.workdir / f"thumb-{len(self.thumbs):03d}.jpg"
        Image.fromarray(rgb(frame, THUMB_WIDTH)).save(path, quality=85)
        self.thumbs.append((t, path))

    def motion(self, t: float, change: float | None, key: bool) -> bool:
        if (change is not None and change >= CUT_SCORE and len(self.cuts) < MAX_CUTS
                and (not self.cuts or t - self.cuts[-1][0] >= MIN_CUT_GAP)):
            self.pending_cut = change
            return True
        return False

    def finish(self) -> StepResult:
        made_by = _made_by()
        derived = [Derived("thumbnail", p, "image/jpeg", [*made_by, f"t={t:.3f}"],
                           meta={"t": round(t, 3), "index": i})
                   for i, (t, p) in enumerate(self.thumbs)]
        derived += [Derived("scene_cut", p, "image/jpeg", [*made_by, f"t={t:.3f}"],
                            meta={"t": round(t, 3), "score": round(score, 1)})
                    for t, score, p in self.cuts]
        if self.thumbs:
            sheet = self.ctx.workdir / "contact-sheet.jpg"
            contact_sheet(self.thumbs, sheet, title=f"{self.ctx.sha256[:16]}…  "
                          f"{hms(self.ctx.duration())}")
            derived.append(Derived("contact_sheet", sheet, "image/jpeg",
                                   [*made_by, f"grid columns={COLUMNS}"],
                                   meta={"times": [round(t, 3) for t, _ in self.thumbs]}))
        return StepResult(data={"thumbnails": len(self.thumbs), "scene_cuts": len(self.cuts),
                                "times": [round(t, 3) for t, _ in self.thumbs]},
                          derived=derived)


def _made_by() -> list[str]:
    """Made in-process, not by a command line: record the code and library versions instead."""
    import av
    import PIL

    return [f"strongroom.pipeline.steps.keyframes v{KeyframesStep.version}",
            f"PyAV {av.__version__} decode", f"Pillow {PIL.__version__} JPEG q85",
            f"width={THUMB_WIDTH}"]


def contact_sheet(thumbs: list[tuple[float, Path]], out: Path, *, title: str) -> None:
    """A grid of thumbnails, each captioned with its video time."""
    from PIL import Image, ImageDraw, ImageFont

    images = [Image.open(p) for _, p in thumbs]
    w = max(i.width for i in images)
    h = max(i.height for i in images)
    cols = min(COLUMNS, len(images))
    rows = -(-len(images) // cols)
    pad, caption, header = 6, 18, 26
    sheet = Image.new("RGB", (cols * (w + pad) + pad, header + rows * (h + caption + pad) + pad),
                      (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    try:
        font: Any = ImageFont.truetype(FONT_FILE, 14)
    except OSError:
        font = ImageFont.load_default()
    draw.text((pad, 5), title, fill=(230, 230, 230), font=font)
    for i, ((t, _), img) in enumerate(zip(thumbs, images, strict=True)):
        x = pad + (i % cols) * (w + pad)
        y = header + (i // cols) * (h + caption + pad)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + h + 1), hms(t), fill=(230, 230, 230), font=font)
    sheet.save(out, quality=85)


class KeyframesStep(Step):
    name: ClassVar[str] = "keyframes"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _KeyframesJob(ctx)
