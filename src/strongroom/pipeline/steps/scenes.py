"""scenes: cuts, codec keyframes and a per-second motion curve, from every decoded frame.

A cut is a frame whose tiny luma differs from the previous one by more than `CUT_SCORE` (mean
absolute difference, 0–255) — a camera switch in a multi-camera export, a splice, a DVR jump.
Fixed CCTV cameras rarely cut, so the motion curve (peak frame difference per second) is what
tells an investigator *where in a long clip something happens*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from strongroom.pipeline.step import Context, Job, Step, StepResult

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

CUT_SCORE = 30.0
MIN_CUT_GAP = 0.5  # seconds


def cut_score(prev: npt.NDArray[np.int16] | None, cur: npt.NDArray[np.int16]) -> float | None:
    """Mean absolute difference of two tiny luma frames (0–255); None for the first frame."""
    import numpy as np

    if prev is None or prev.shape != cur.shape:
        return None
    return float(np.abs(cur - prev).mean())


class _ScenesJob(Job):
    wants_tiny = True

    def __init__(self) -> None:
        self.consumer = self
        self.prev: npt.NDArray[np.int16] | None = None
        self.cuts: list[dict[str, float]] = []
        self.keyframes: list[float] = []
        self.activity: dict[int, float] = {}
        self.frames = 0

    def wanted_times(self, duration: float) -> list[float]:
        return []

    def take(self, t: float, frame: Any) -> None:  # pragma: no cover - wants no full frames
        pass

    def tiny(self, t: float, luma: npt.NDArray[np.uint8], key: bool = False) -> bool:
        import numpy as np

        self.frames += 1
        if key:
            self.keyframes.append(round(t, 3))
        cur = luma.astype(np.int16)
        score = cut_score(self.prev, cur)
        if score is not None:
            sec = int(t)
            self.activity[sec] = max(self.activity.get(sec, 0.0), score)
            if score >= CUT_SCORE and (not self.cuts or t - self.cuts[-1]["t"] >= MIN_CUT_GAP):
                self.cuts.append({"t": round(t, 3), "score": round(score, 1)})
        self.prev = cur
        return False

    def finish(self) -> StepResult:
        last = max(self.activity, default=-1)
        curve = [round(self.activity.get(i, 0.0), 1) for i in range(last + 1)]
        return StepResult(data={"cuts": self.cuts, "keyframes": self.keyframes,
                                "activity": curve, "frames": self.frames})


class ScenesStep(Step):
    name: ClassVar[str] = "scenes"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _ScenesJob()
