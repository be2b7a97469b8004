"""overlay_ocr: the DVR clock and camera label burned into the picture → segments.

The consumer keeps greyscale copies of a few frames spread over the clip (first, last, and
every few seconds, at most `MAX_READINGS`). `strongroom.media.ocr` finds the overlay's text
lines and reads them; `strongroom.media.overlay` parses the clock and fits the readings into
segments (clock must advance with video time; outliers rejected; jumps split). A clip with no
readable clock gets `overlay: false` — never a guessed time. Segments end where decoding
really ended: a truncated clip that declares 6 s but holds 0.28 s covers 0.28 s of the
timeline, not 6.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from strongroom.media import overlay
from strongroom.media.overlay import ClockReading, fit_segments
from strongroom.pipeline.step import Context, Job, Step, StepResult

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy.orm import Session

    from strongroom.media.frames import Sparse

MAX_READINGS = 12
EVERY = 2.0  # seconds between readings in short clips; long clips spread MAX_READINGS
DENSE_S = 1.2  # every frame of the first second and a bit: where the clock ticks
#: Clips at least this long are read on codec keyframes: each reading time after the first
#: second takes the keyframe nearest it, when one is nearer than half the readings' spacing
#: (else the frame at that time), so that a pass that decodes nothing else decodes only
#: keyframes after the first second (`media.frames.Sparse`): a DVR's keyframes come every
#: second or two, and a long clip is then read for a fraction of its decoding. From 10 s on:
#: on the benchmark's corpus (v3, 63 clips of 10–60 s) those clips decode in 9 s instead of
#: 24 s, and every clip reads the same, but one, whose keyframes show a serif 8 the
#: recogniser reads as a 6 where the frames between did not (6 s of it unplaced, none wrong).
SPARSE_MIN_S = 10.0


def reading_times(duration: float) -> list[float]:
    n = max(2, min(MAX_READINGS, int(duration / EVERY) + 2))
    last = max(0.0, duration - 0.5)
    return [round(i * last / (n - 1), 3) for i in range(n)]


class _OverlayJob(Job):
    wants_motion = False

    def __init__(self, ctx: Context) -> None:
        self.consumer = self
        self.ctx = ctx
        self.frames: list[tuple[float, npt.NDArray[np.uint8]]] = []
        #: reading time → (distance, time, pixels) of the keyframe read for it (`sparse`)
        self.keyframe_for: dict[float, tuple[float, float, npt.NDArray[np.uint8]]] = {}
        self.wants: Sparse | None = None

    def wanted_times(self, duration: float) -> list[float]:
        # and every frame of the first DENSE_S seconds, to pin the clock's tick to a frame
        dense = [round(i / 25, 3) for i in range(1, int(DENSE_S * 25))]
        return sorted(set(reading_times(duration)) | {t for t in dense if t < duration})

    def sparse(self, duration: float) -> Sparse | None:
        """What this job wants of a pass that may decode keyframes only (`SPARSE_MIN_S`)."""
        from strongroom.media.frames import Sparse

        times = reading_times(duration)
        self.wants = None
        if duration >= SPARSE_MIN_S and len(times) >= 2:
            # strictly nearer than half the spacing: a keyframe stands for one time only
            tolerance = (times[1] - times[0]) / 2 - 1e-3
            self.wants = Sparse(head=DENSE_S,
                                near=[(t, tolerance) for t in times if t > DENSE_S])
        return self.wants

    def restart(self) -> None:
        """Forget what a pass gave: a sparse pass in doubt is made again, every frame."""
        self.frames, self.keyframe_for = [], {}

    def take(self, t: float, frame: Any) -> None:
        if any(abs(f[0] - t) < 1e-3 for f in self.frames[-2:]):
            return  # the same frame handed over twice
        self.frames.append((t, frame.to_ndarray(format="gray")))

    def take_key(self, t: float, frame: Any) -> None:
        """A codec keyframe after the first second: kept when it is the nearest yet to a
        reading time within that time's tolerance (`sparse`)."""
        for when, tolerance in self.wants.near if self.wants is not None else []:
            d = abs(t - when)
            best = self.keyframe_for.get(when)
            if d <= tolerance and (best is None or d < best[0]):
                self.keyframe_for[when] = (d, t, frame.to_ndarray(format="gray"))

    def motion(self, t: float, change: float | None, key: bool) -> None:  # pragma: no cover
        pass  # not wanted

    # OCR runs in the worker, where its engines stay loaded from clip to clip; only these
    # greyscale frames cross back from the decode sandbox
    finishes_in_worker = True

    def pixels(self) -> list[tuple[float, npt.NDArray[np.uint8]]]:
        """The frames read: those of the first second and a bit, and one per reading time:
        its keyframe (`take_key`), else the frame at it. A pass that decodes every frame and
        one that decodes only keyframes after the first second hand over the same."""
        if not self.keyframe_for or self.wants is None:
            return self.frames
        tolerance = self.wants.near[0][1]
        kept = [f for f in self.frames  # not the frame at a time a keyframe stands for
                if f[0] <= DENSE_S or not any(abs(f[0] - when) <= tolerance
                                              for when in self.keyframe_for)]
        keyed = [(t, g) for _d, t, g in self.keyframe_for.values()]
        return sorted(kept + keyed, key=lambda f: f[0])

    def receive_pixels(self, frames: list[tuple[float, npt.NDArray[np.uint8]]]) -> None:
        self.frames = frames

    def finish(self) -> StepResult:
        from strongroom.media.ocr import read_overlay

        duration = self.ctx.duration()
        nearest = {min(range(len(self.frames)), key=lambda i: abs(self.frames[i][0] - want))
                   for want in reading_times(duration)} if self.frames else set()
        regular = [self.frames[i] for i in sorted(nearest)]  # the frame nearest each time
        dense = [f for f in self.frames if f[0] <= DENSE_S]
        # the day/month order the vault's other clips showed, for slashed dates that could be
        # either way round (`strongroom.catalogue.date_order`, passed on by the runner)
        # (by `overlay.order_key`: shape of clock and camera label)
        known: dict[str, dict[str, Any]] = self.ctx.options.get("date_orders") or {}
        found = read_overlay(regular, dense,
                             date_orders={key: d["order"] for key, d in known.items()})
        order_key = overlay.in_force(known, found.date_shape, found.label)
        readings = [ClockReading(t, clock, fmt) for t, clock, fmt in found.clocks]
        segments, rejected = fit_segments(readings, duration, read_at=[t for t, _ in regular],
                                          read_otherwise=found.vetoed)
        label = found.label
        data: dict[str, Any] = {
            "overlay": bool(segments),
            "label": label,
            "label_reads": found.label_reads,
            "label_confidence": found.label_confidence,
            "label_uncertain": found.label_uncertain,
            "label_corrected": found.label_corrected,
            "clock_engine": found.engine,
            "status": _status(found, segments),
            "flags": found.flags + (["clock_jumped"] if len(segments) > 1 else [])
            + (["date_order_from_other_clips"] if found.date_order else []),
            "date_shape": found.date_shape,
            "date_either_way": found.date_either_way if found.date_ambiguous else [],
            # why this order: the clips that showed it beyond doubt (a day above 12)
            "date_order": ({"shape": found.date_shape, "key": order_key, **known[order_key]}
                           if found.date_order and order_key in known else None),
            "other_clocks": found.other_clocks,
            "readings": [[t, c.isoformat(sep=" "), f] for t, c, f in found.clocks],
            "frames_read": len(regular),
            "tick_frames": len(dense),
            "duration": duration,
            "rejected": rejected,
            "clock_box": found.clock_box,
            "label_box": found.label_box,
            "segments": segment_rows(segments),
        }
        if not segments and label:
            data["note"] = "camera label read, but no DVR clock"
        return StepResult(data=data)


def segment_rows(segments: list[Any]) -> list[dict[str, Any]]:
    """Fitted segments as the step's result stores them."""
    return [{
        "start_s": s.start_s, "end_s": s.end_s,
        "clock_start": s.clock_start.isoformat(sep=" "),
        "clock_end": s.clock_end.isoformat(sep=" "),
        "format": s.fmt, "readings": s.readings, "confidence": s.confidence,
        "phase": s.phase,
    } for s in segments]


def _status(found: Any, segments: list[Any]) -> str:
    """One word for what the clip's overlay gave: `placed` (segments with a DVR clock),
    `multiple_clocks` (two clocks that disagree: none is chosen),
    `date_ambiguous` (a clock whose day and month could be either way round, and nothing in
    the clip to tell), `clock_unconfirmed` (readings that never agreed with each other, or
    whose weekday their date does not fall on),
    `label_only`, or `no_overlay`."""
    if segments:
        return "placed"
    if "multiple_clocks" in found.flags:
        return "multiple_clocks"
    if found.date_ambiguous:
        return "date_ambiguous"
    if found.clocks or {"small_clock_unconfirmed", "digits_disagree",
                        "weekday_disagrees"} & set(found.flags):
        return "clock_unconfirmed"
    return "label_only" if found.label else "no_overlay"


class OverlayOcrStep(Step):
    name: ClassVar[str] = "overlay_ocr"
    # 2: decoded duration (truncated clips); 3: RapidOCR, phase; 4: Russian months read by
    # both engines, dates from other frames and clips; 5: a date order from other clips of
    # the same camera label and hour style only, and from two readings of a clip at least;
    # 6: a misread AM/PM is no 24-hour time, Russian months misread by a letter, a clock
    # stepped by a second splits, labels' lost numbers (clips read by 5 are read again);
    # 7: a label beside a clock that did not parse, a prison word read as Latin look-alikes
    # ("WV30": ШИЗО, uncertain), the time of day read alone once the date is settled, small
    # clocks confirmed, a clip showing OCR confuse digits its clock holds placed nowhere;
    # 8: clips of `SPARSE_MIN_S` and more read on the keyframes nearest the reading times;
    # 9: a month-first date no day-first reading allows (03-14-2019) read as such, and a
    # reading whose weekday its date does not fall on placed nowhere (`weekday_disagrees`);
    # 10: a two-line clock boxed loosely is a date above its time; 11: clips of 10 s and
    # more read on keyframes (`SPARSE_MIN_S` was 60 s); 12: readings back on the main
    # readings' offset after some that left it stand as those do
    version: ClassVar[str] = "12"

    def start(self, ctx: Context) -> Job:
        return _OverlayJob(ctx)

    def persist(self, session: Session, sha256: str, result: StepResult) -> None:
        from sqlalchemy import delete, func, select

        from strongroom.catalogue import search_index
        from strongroom.catalogue.models import Camera, Segment

        session.execute(delete(Segment).where(Segment.original_sha256 == sha256))
        label = result.data.get("label")
        camera_id = None
        if label:
            # the camera OCR read this label for before, else one a person renamed to it
            camera_id = session.scalar(select(Camera.id).where(
                func.coalesce(Camera.read_as, Camera.label) == label))
            if camera_id is None:
                camera_id = session.scalar(select(Camera.id).where(Camera.label == label))
            if camera_id is None:
                cam = Camera(label=label)
                session.add(cam)
                session.flush()
                camera_id = cam.id
        segs = result.data.get("segments") or []
        for s in segs:
            session.add(Segment(
                original_sha256=sha256, start_s=s["start_s"], end_s=s["end_s"],
                camera_id=camera_id, clock_start=datetime.fromisoformat(s["clock_start"]),
                clock_end=datetime.fromisoformat(s["clock_end"]), confidence=s["confidence"],
                clock_format=s["format"], readings=s["readings"], clock_phase=s.get("phase")))
        if not segs and label:
            # where, but not when: still worth a segment so the clip shows under its camera
            session.add(Segment(original_sha256=sha256, start_s=0.0,
                                end_s=float(result.data.get("duration") or 0.0),
                                camera_id=camera_id, confidence=None))
        # the bulk DELETE above bypasses the search index's listener: the clip's documents
        # (and its incidents') carry its cameras and days as filter facets
        search_index.clips_changed(session, [sha256])
