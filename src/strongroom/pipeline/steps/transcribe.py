"""transcribe (optional): Russian speech to text with faster-whisper, from a model on disk.

Off unless `STRONGROOM_WHISPER_MODEL` names a CTranslate2 model directory (e.g. a copy of
`Systran/faster-whisper-small` carried in on a USB stick). Never downloads anything: a model
name that is not an existing directory is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from strongroom.errors import MediaError
from strongroom.pipeline.step import Context, Job, Step, StepResult


class _TranscribeJob(Job):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def finish(self) -> StepResult:
        model_dir = str(self.ctx.options.get("whisper_model") or "")
        if not self.ctx.video_facts().has_audio:
            return StepResult(status="skipped", data={"reason": "no audio track"})
        if not Path(model_dir, "model.bin").is_file():
            raise MediaError(f"{model_dir} is not a faster-whisper model directory "
                             "(no model.bin); models are never downloaded")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            return StepResult(status="skipped", data={"reason": "faster-whisper is not "
                                                      "installed"})
        model: Any = WhisperModel(model_dir, device="cpu", compute_type="int8",
                                  local_files_only=True)
        segments, info = model.transcribe(str(self.ctx.path), language="ru", vad_filter=True)
        lines = [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
                 for s in segments]
        return StepResult(data={"language": info.language, "model": Path(model_dir).name,
                                "segments": lines})


class TranscribeStep(Step):
    name: ClassVar[str] = "transcribe"
    version: ClassVar[str] = "1"
    optional: ClassVar[bool] = True
    decodes_video: ClassVar[bool] = False  # audio only: a huge frame does not concern it

    def unavailable(self, options: dict[str, Any]) -> str | None:
        if not options.get("whisper_model"):
            return "no model configured (set STRONGROOM_WHISPER_MODEL to a model directory)"
        return None

    def start(self, ctx: Context) -> Job:
        return _TranscribeJob(ctx)
