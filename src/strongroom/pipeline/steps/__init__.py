"""The registered steps, in the order they run inside one original's task."""

from __future__ import annotations

from strongroom.pipeline.step import Step
from strongroom.pipeline.steps.keyframes import KeyframesStep
from strongroom.pipeline.steps.overlay import OverlayOcrStep
from strongroom.pipeline.steps.phash import PerceptualHashStep
from strongroom.pipeline.steps.probe import ProbeStep
from strongroom.pipeline.steps.proxy import ProxyStep
from strongroom.pipeline.steps.review import ReviewStep
from strongroom.pipeline.steps.scenes import ScenesStep
from strongroom.pipeline.steps.transcribe import TranscribeStep


def registry() -> dict[str, Step]:
    steps: list[Step] = [ProbeStep(), KeyframesStep(), ScenesStep(), OverlayOcrStep(),
                         PerceptualHashStep(), ProxyStep(), ReviewStep(), TranscribeStep()]
    return {s.name: s for s in steps}
