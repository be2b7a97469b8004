"""transcribe (optional): Russian speech to text with faster-whisper, from a model on disk.

Off unless `STRONGROOM_WHISPER_MODEL` names a CTranslate2 model directory (e.g. a copy of
`Systran/faster-whisper-small` carried in on a USB stick). Never downloads anything: a model
name that is not an existing directory is refused. The transcription runs in the decode
sandbox (`media/sandbox.py`): faster-whisper decodes the audio with PyAV, in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from strongroom.errors import MediaError
from strongroom.pipeline.step import Context, Job, Step, StepResult

#: Wall-clock budget of a transcription: a fixed part plus this many seconds per second of
#: audio (int8 `small` on CPU runs at a few times real time), the declared length counted up
#: to 12 h; and its memory (the model is mapped, then decoded audio and beams).
BASE_S = 300.0
PER_AUDIO_S = 3.0
MEMORY = 8 * 1024**3


class _TranscribeJob(Job):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def finish(self) -> StepResult:
        import importlib.util

        from strongroom.media import sandbox

        model_dir = str(self.ctx.options.get("whisper_model") or "")
        facts = self.ctx.video_facts()
        if not facts.has_audio:
            return StepResult(status="skipped", data={"reason": "no audio track"})
        if not Path(model_dir, "model.bin").is_file():
            raise MediaError(f"{model_dir} is not a faster-whisper model directory "
                             "(no model.bin); models are never downloaded")
        if importlib.util.find_spec("faster_whisper") is None:
            return StepResult(status="skipped", data={"reason": "faster-whisper is not "
                                                      "installed"})
        # faster-whisper decodes the audio with PyAV, in the process that calls it: the sandbox
        limits = sandbox.Limits(
            timeout=BASE_S + PER_AUDIO_S * min(facts.duration or 0.0, 12 * 3600.0),
            memory=MEMORY)
        with sandbox.run(_transcribe, str(self.ctx.path), model_dir, limits=limits,
                         base=self.ctx.workdir, what="transcribing") as boxed:
            data = boxed.value
        if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
            raise MediaError("the transcription sandbox returned a malformed result")
        return StepResult(data=data)


def _transcribe(box: Path, path: str, model_dir: str) -> dict[str, Any]:
    """In the sandbox: the transcription itself."""
    from faster_whisper import WhisperModel

    model: Any = WhisperModel(model_dir, device="cpu", compute_type="int8",
                              local_files_only=True)
    segments, info = model.transcribe(path, language="ru", vad_filter=True)
    lines = [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
             for s in segments]
    return {"language": info.language, "model": Path(model_dir).name, "segments": lines}


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
