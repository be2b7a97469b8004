"""probe: container, codecs, duration, resolution, fps, bitrate, tags, audio (ffprobe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from strongroom.media.probe import MediaFacts, probe
from strongroom.pipeline.step import Context, Job, Step, StepResult

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class _ProbeJob(Job):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def finish(self) -> StepResult:
        facts, argv = probe(self.ctx.path,
                            timeout=float(self.ctx.options.get("tool_timeout") or 120))
        self.ctx.facts = facts
        return StepResult(data=facts.to_json(), command=self.ctx.public_command(argv))


class ProbeStep(Step):
    name: ClassVar[str] = "probe"
    version: ClassVar[str] = "1"
    needs: ClassVar[tuple[str, ...]] = ()
    video_only: ClassVar[bool] = False
    decodes_video: ClassVar[bool] = False  # ffprobe reads headers; it is what finds the size

    def start(self, ctx: Context) -> Job:
        return _ProbeJob(ctx)

    def persist(self, session: Session, sha256: str, result: StepResult) -> None:
        from strongroom.catalogue.models import MediaInfo

        facts = MediaFacts(**result.data)
        row = session.get(MediaInfo, sha256) or MediaInfo(original_sha256=sha256)
        row.container, row.duration = facts.container, facts.duration
        row.width, row.height, row.fps = facts.width, facts.height, facts.fps
        row.video_codec, row.audio_codec = facts.video_codec, facts.audio_codec
        row.bitrate, row.tags, row.status = facts.bitrate, facts.tags, facts.status
        session.add(row)
