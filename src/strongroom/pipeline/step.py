"""What a pipeline step is.

A step is a small plugin with a `name`, a `version` and the steps it `needs`. In a worker it
gets a `Context` (the original's plaintext in a private work dir, the probe facts) and returns a
`StepResult`; it never touches the database. Steps that look at pictures return a frame
consumer from `start`, so all of them share one decode pass. Back in the runner, the step's
`persist` turns its result into catalogue rows, in the same transaction as its `step_run` row.

Bump `version` whenever a step's output would change: the runner then re-runs that step alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from strongroom.errors import MediaError
from strongroom.media.probe import MediaFacts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy.orm import Session

    from strongroom.media.frames import FrameConsumer


@dataclass
class Derived:
    """A file a step made (thumbnail, proxy...): stored as an encrypted derivative blob."""

    kind: str
    path: Path
    mime: str
    command: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: sealed as separate chunks (`vault/chunks.py`), for reading by byte range: the video
    #: proxies the review app streams. Small files (posters, thumbnails) stay one blob.
    chunked: bool = False


@dataclass
class StepResult:
    data: dict[str, Any] = field(default_factory=dict)
    derived: list[Derived] = field(default_factory=list)
    command: list[str] | None = None
    status: str = "ok"  # ok | skipped (e.g. "no model configured") — errors are exceptions


@dataclass
class Context:
    sha256: str
    path: Path  # plaintext, inside `workdir`
    workdir: Path
    facts: MediaFacts | None
    options: dict[str, Any] = field(default_factory=dict)
    #: Seconds of video the shared decode pass really decoded (None before or without one).
    #: A truncated file still declares its whole length; `finish` should believe this.
    decoded_duration: float | None = None

    def public_command(self, argv: list[str]) -> list[str]:
        """A command line as recorded with a derivative: private paths become placeholders."""
        return [a.replace(str(self.path), "{original}").replace(str(self.workdir), "{workdir}")
                for a in argv]

    def video_facts(self) -> MediaFacts:
        """The probe's facts, for steps that run only on a video whose length is known (the
        worker skips the others before any such step starts)."""
        if self.facts is None or self.facts.duration is None:
            raise MediaError(f"{self.sha256}: no video facts from the probe (not a video, or "
                             "no duration)")
        return self.facts

    def duration(self) -> float:
        """The clip's length as decoded when known, else as its header declares it."""
        if self.decoded_duration is not None:
            return self.decoded_duration
        return self.video_facts().duration or 0.0


class Job:
    """A step's work on one original. `consumer` is set when it wants decoded frames.

    A job with a consumer is sent into the decode sandbox (`pipeline/decode.py`): its `take`
    and `motion` run beside the decoder, and so does its `finish`, unless it
    `finishes_in_worker` because it needs what the worker keeps loaded (the OCR engines). Such
    a job hands its frames back as raw greyscale pixels (`pixels`, `receive_pixels`) — the one
    thing that crosses from the sandbox besides JSON and the files the steps made."""

    consumer: FrameConsumer | None = None
    finishes_in_worker: ClassVar[bool] = False

    def finish(self) -> StepResult:
        raise NotImplementedError

    def pixels(self) -> list[tuple[float, npt.NDArray[np.uint8]]]:
        """In the sandbox: the 2-D uint8 frames (with their video times) `finish` needs."""
        raise NotImplementedError

    def receive_pixels(self, frames: list[tuple[float, npt.NDArray[np.uint8]]]) -> None:
        """In the worker: the frames `pixels` gave in the sandbox."""
        raise NotImplementedError


class Step:
    name: ClassVar[str]
    version: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("probe",)
    #: run only on originals whose probe found a video stream
    video_only: ClassVar[bool] = True
    #: left out of `process` unless asked for by name (e.g. transcription)
    optional: ClassVar[bool] = False
    #: decodes pictures (in the worker or in ffmpeg): refused for frames over `max_pixels`
    decodes_video: ClassVar[bool] = True

    def unavailable(self, options: dict[str, Any]) -> str | None:
        """Why this step cannot run here at all (e.g. no model configured), or None. Such a
        step is not scheduled and leaves no record, so it runs once it is configured."""
        return None

    def start(self, ctx: Context) -> Job:
        raise NotImplementedError

    def persist(self, session: Session, sha256: str, result: StepResult) -> None:
        """Write this step's catalogue rows for `sha256` (replacing an older version's)."""
