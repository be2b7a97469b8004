"""scenes: cuts, codec keyframes and a per-second motion curve, from every decoded frame.

A cut is a frame whose tiny luma differs from the previous one by more than `CUT_SCORE` (mean
absolute difference, 0–255) — a camera switch in a multi-camera export, a splice, a DVR jump.
Fixed CCTV cameras rarely cut, so the motion curve (peak frame difference per second) is what
tells an investigator *where in a long clip something happens*.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strongroom.pipeline.step import Context, Job, Step, StepResult

CUT_SCORE = 30.0
MIN_CUT_GAP = 0.5  # seconds
MAX_CURVE_S = 48 * 3600


class _ScenesJob(Job):
    wants_motion = True

    def __init__(self) -> None:
        self.consumer = self
        self.cuts: list[dict[str, float]] = []
        self.keyframes: list[float] = []
        self.activity: dict[int, float] = {}
        self.frames = 0

    def wanted_times(self, duration: float) -> list[float]:
        return []

    def take(self, t: float, frame: Any) -> None:  # pragma: no cover - wants no full frames
        pass

    def motion(self, t: float, change: float | None, key: bool) -> bool:
        self.frames += 1
        if key:
            self.keyframes.append(round(t, 3))
        if change is not None:
            sec = int(t)
            self.activity[sec] = max(self.activity.get(sec, 0.0), change)
            if change >= CUT_SCORE and (not self.cuts or t - self.cuts[-1]["t"] >= MIN_CUT_GAP):
                self.cuts.append({"t": round(t, 3), "score": round(change, 1)})
        return False

    def finish(self) -> StepResult:
        # one value per second up to the last frame's: a crafted file's frames may be 2^31 s
        # apart, so the curve stops at MAX_CURVE_S (a DVR file is a day at most)
        last = min(max(self.activity, default=-1), MAX_CURVE_S)
        curve = [round(self.activity.get(i, 0.0), 1) for i in range(last + 1)]
        return StepResult(data={"cuts": self.cuts, "keyframes": self.keyframes,
                                "activity": curve, "frames": self.frames})


class ScenesStep(Step):
    name: ClassVar[str] = "scenes"
    version: ClassVar[str] = "1"

    def start(self, ctx: Context) -> Job:
        return _ScenesJob()
