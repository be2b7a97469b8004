"""perceptual_hash: a PDQ hash of one frame per second — the video's vPDQ-style signature.

PDQ (Meta's open perceptual hash) survives re-encoding, rescaling and light watermarking; two
frames match at Hamming distance ≤ 31 of 256 bits (Meta's threshold). Frames are hashed from
the shared decode pass at whole seconds of video time, downscaled to 512 px first (PDQ
resamples to 64×64 internally, so larger inputs only cost time). Frames with PDQ quality below
50 (flat, dark, featureless) are kept but ignored for matching — see `strongroom.dupes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from strongroom.media.frames import rgb
from strongroom.pipeline.step import Context, Job, Step, StepResult

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

HASH_WIDTH = 512
EVERY = 1.0  # seconds
MAX_HASHED_S = 48 * 3600.0


def pdq_hex(bits: Any) -> str:
    import numpy as np

    return bytes(np.packbits(np.asarray(bits, dtype=np.uint8))).hex()


class _PdqJob(Job):
    wants_motion = False

    def __init__(self) -> None:
        self.consumer = self
        self.frames: list[list[Any]] = []

    def wanted_times(self, duration: float) -> list[float]:
        # a header may declare years: hash at most the first MAX_HASHED_S of them (a DVR
        # file is a day at most); 86,400 times is a list, 10^9 would be the memory bomb
        return [i * EVERY for i in range(max(1, int(min(duration, MAX_HASHED_S) / EVERY
                                                     + 0.5)))]

    def take(self, t: float, frame: Any) -> None:
        import numpy as np
        import pdqhash

        image = np.ascontiguousarray(rgb(frame, HASH_WIDTH))
        bits, quality = pdqhash.compute(image)
        self.frames.append([round(t, 3), pdq_hex(bits), int(quality)])

    def motion(self, t: float, change: float | None, key: bool) -> None:  # pragma: no cover
        pass  # not wanted

    def finish(self) -> StepResult:
        return StepResult(data={"algorithm": "pdq", "every_s": EVERY, "frames": self.frames})


class PerceptualHashStep(Step):
    name: ClassVar[str] = "perceptual_hash"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _PdqJob()

    def persist(self, session: Session, sha256: str, result: StepResult) -> None:
        from sqlalchemy import delete

        from strongroom.catalogue.models import FrameHash

        session.execute(delete(FrameHash).where(FrameHash.original_sha256 == sha256))
        session.add_all(FrameHash(original_sha256=sha256, t=t, pdq=h, quality=q)
                        for t, h, q in result.data["frames"])
        # The hashes live in their own table; step_run keeps only the summary.
        result.data = {"algorithm": "pdq", "every_s": EVERY,
                       "frames": len(result.data["frames"])}
