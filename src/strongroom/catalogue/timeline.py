"""Per-camera timelines: segments in DVR-clock order, with gaps and overlaps flagged.

Two files whose segments of the *same camera* overlap in DVR time show the same moment: a
strong hint that one is a copy (or a re-export) of the other — `dupes` confirms it by pixels.
A segment of a partial clip (truncated: it decodes to less than its header declares) is
flagged, so nobody reads its end as the end of the recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import Camera, Segment, StepRun
from strongroom.catalogue.queries import partial_clips

#: DVR clocks tick in whole seconds, and a segment's end is its last frame: allow 2 s of slack
#: before calling a break a gap, and 1 s before calling two ranges overlapping.
GAP_SECONDS = 2.0
OVERLAP_SECONDS = 1.0


@dataclass
class Entry:
    segment: int
    original: str
    start_s: float
    end_s: float
    clock_start: datetime
    clock_end: datetime
    confidence: float | None
    gap_before_s: float | None = None
    overlaps: list[str] = field(default_factory=list)  # other originals covering the same time
    partial: str | None = None  # why the clip holds less than it declares
    read_as: str | None = None  # the camera label OCR read (before any rename or merge)
    label_reads: list[str] = field(default_factory=list)  # raw reads, one per frame read
    label_confidence: float | None = None  # share of characters the reads agreed on
    label_uncertain: bool = False  # the label was kept, but should be checked by a person
    #: a slashed date that could be day or month first, put in the order other clips show
    date_order: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"segment": self.segment, "original": self.original,
                "start_s": self.start_s, "end_s": self.end_s,
                "clock_start": self.clock_start.isoformat(sep=" "),
                "clock_end": self.clock_end.isoformat(sep=" "),
                "confidence": self.confidence, "gap_before_s": self.gap_before_s,
                "overlaps": self.overlaps, "partial": self.partial,
                "read_as": self.read_as, "label_reads": self.label_reads,
                "label_confidence": self.label_confidence,
                "label_uncertain": self.label_uncertain, "date_order": self.date_order}

    def to_text(self) -> str:
        """One line of `strongroom timeline`: clock range, original, seconds, then any flags."""
        flags = []
        if self.gap_before_s is not None:
            flags.append(f"gap {self.gap_before_s:.0f} s before")
        if self.overlaps:
            flags.append("overlaps " + ", ".join(o[:12] + "…" for o in self.overlaps)
                         + " (possible duplicate)")
        if self.partial:
            flags.append(f"PARTIAL clip ({self.partial})")
        if self.date_order:
            flags.append(f"date order {self.date_order}")
        return (f"{self.clock_start:%Y-%m-%d %H:%M:%S} → {self.clock_end:%H:%M:%S}  "
                f"{self.original[:16]}…  [{self.start_s:.1f}–{self.end_s:.1f} s]"
                + (f"  {'; '.join(flags)}" if flags else ""))


#: Where a clip with a DVR clock but no readable camera label goes: on the timeline all the
#: same, never dropped.
UNKNOWN_CAMERA = "(camera unknown)"


@dataclass
class Unplaced:
    """A clip the overlay step found no DVR clock on: listed so that nobody thinks it was
    placed on the timeline (it may still have a camera label)."""

    original: str
    camera: str | None
    label_reads: list[str]
    duration_s: float | None
    status: str | None = None  # the overlay step's: no_overlay, date_ambiguous, …
    label_confidence: float | None = None
    #: date_ambiguous: the first reading's clock day first, then month first
    either_way: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original, "camera": self.camera,
                "label_reads": self.label_reads, "duration_s": self.duration_s,
                "status": self.status, "label_confidence": self.label_confidence,
                "either_way": self.either_way}

    def to_text(self) -> str:
        either = (f": {self.either_way[0]} or {self.either_way[1]}, and no other clip shows "
                  "which" if len(self.either_way) == 2 else "")
        return (f"{self.original[:16]}…" + (f"  camera {self.camera}" if self.camera else "")
                + (f"  [{self.duration_s:.1f} s]" if self.duration_s is not None else "")
                + (f"  ({self.status.replace('_', ' ')}{either})" if self.status else ""))


@dataclass
class Timeline:
    """Every camera's segments in clock order, then every clip with no DVR clock found."""

    cameras: dict[str, list[Entry]]
    no_clock: list[Unplaced] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cameras": {k: [e.to_json() for e in es] for k, es in self.cameras.items()},
                "no_clock": [u.to_json() for u in self.no_clock]}

    def to_text(self) -> str:
        return timelines_text(self.cameras, self.no_clock)


def timeline(session: Session, camera: str | None = None) -> Timeline:
    """`timelines`, and (for the whole vault) the clips no DVR clock was found on. A camera
    asked for by a label it no longer stands under (merged into another, or what OCR read
    before a rename) is refused with the label its segments are under."""
    if camera is not None and camera != UNKNOWN_CAMERA:
        _stands_under(session, camera)
    return Timeline(timelines(session, camera),
                    no_clock=unplaced(session) if camera is None else [])


def _stands_under(session: Session, label: str) -> None:
    from strongroom.catalogue.places import canonical
    from strongroom.errors import StrongroomError

    canon, to_canon = canonical()
    cam = session.execute(select(Camera, canon.label).join(canon, to_canon)
                          .where(Camera.label == label)).first()
    if cam is None:
        cam = session.execute(select(Camera, canon.label).join(canon, to_canon)
                              .where(Camera.read_as == label).order_by(Camera.id)).first()
        if cam is not None:
            raise StrongroomError(
                f"OCR read {label!r} for camera {cam[0].label!r}, renamed since: its segments "
                f"are under --camera {cam[1]!r}")
        return
    if cam[0].merged_into is not None:
        raise StrongroomError(f"camera {label!r} is merged into {cam[1]!r}: its segments are "
                              f"under --camera {cam[1]!r}")


def timelines(session: Session, camera: str | None = None) -> dict[str, list[Entry]]:
    """Camera label → its segments in clock order; segments with a clock but no camera label
    under `UNKNOWN_CAMERA`, last (segments without a clock are in `unplaced`)."""
    from strongroom.catalogue.places import canonical

    canon, to_canon = canonical()
    q = (select(Segment, canon.label, func.coalesce(Camera.read_as, Camera.label))
         .outerjoin(Camera, Segment.camera_id == Camera.id).outerjoin(canon, to_canon)
         .where(Segment.clock_start.is_not(None), Segment.clock_end.is_not(None))
         .order_by(canon.label.is_(None), canon.label, Segment.clock_start,
                   Segment.original_sha256))
    if camera is not None:
        q = (q.where(canon.label.is_(None)) if camera == UNKNOWN_CAMERA
             else q.where(canon.label == camera))
    out: dict[str, list[Entry]] = {}
    for seg, label, read in session.execute(q):
        if seg.clock_start is None or seg.clock_end is None:
            continue  # excluded by the query already; this tells the type checker
        out.setdefault(label or UNKNOWN_CAMERA, []).append(Entry(
            segment=seg.id, original=seg.original_sha256, start_s=seg.start_s,
            end_s=seg.end_s, clock_start=seg.clock_start, clock_end=seg.clock_end,
            confidence=seg.confidence, read_as=read))
    _label_reads(session, out)
    partial = partial_clips(session, {e.original for es in out.values() for e in es})
    for entries in out.values():
        for e in entries:
            e.partial = partial.get(e.original)
        _flag(entries)
    return out


def _label_reads(session: Session, cameras: dict[str, list[Entry]]) -> None:
    """Each entry's raw label reads and label confidence, from its overlay step's result."""
    shas = {e.original for es in cameras.values() for e in es}
    results = {r.original_sha256: r.result or {} for r in session.scalars(
        select(StepRun).where(StepRun.step == "overlay_ocr",
                              StepRun.original_sha256.in_(shas)))}
    for entries in cameras.values():
        for e in entries:
            data = results.get(e.original, {})
            reads = data.get("label_reads")
            conf = data.get("label_confidence")
            e.label_reads = [str(r) for r in reads] if isinstance(reads, list) else []
            e.label_confidence = float(conf) if isinstance(conf, int | float) else None
            e.label_uncertain = data.get("label_uncertain") is True
            order = data.get("date_order")
            if isinstance(order, dict):
                e.date_order = (f"{order.get('order')} as {order.get('set_by')} said (custody "
                                f"event {order.get('event')})" if order.get("set_by") else
                                f"{order.get('order')} as {order.get('clips')} other clips "
                                "show it (their day is above 12)")


def unplaced(session: Session) -> list[Unplaced]:
    """Clips the overlay step ran on and found no DVR clock: no segment with a clock."""
    placed = select(Segment.original_sha256).where(Segment.clock_start.is_not(None))
    runs = session.scalars(
        select(StepRun).where(StepRun.step == "overlay_ocr", StepRun.status == "ok",
                              StepRun.original_sha256.not_in(placed))
        .order_by(StepRun.original_sha256))
    out = []
    for run in runs:
        data = run.result or {}
        reads = data.get("label_reads")
        duration = data.get("duration")
        label = data.get("label")
        status, conf = data.get("status"), data.get("label_confidence")
        out.append(Unplaced(
            original=run.original_sha256, camera=label if isinstance(label, str) else None,
            label_reads=[str(r) for r in reads] if isinstance(reads, list) else [],
            duration_s=float(duration) if isinstance(duration, int | float) else None,
            status=status if isinstance(status, str) else None,
            label_confidence=float(conf) if isinstance(conf, int | float) else None,
            either_way=[str(w) for w in either][:2] if isinstance(
                either := data.get("date_either_way"), list) else []))
    return out


def timelines_text(data: dict[str, list[Entry]], no_clock: list[Unplaced] | None = None
                   ) -> str:
    """What `strongroom timeline` prints: each camera, then its segments one per line, then
    the clips with no DVR clock found."""
    lines = []
    for label, entries in data.items():
        uncertain = sum(e.label_uncertain for e in entries)
        lines.append(f"{label}  ({len(entries)} segment(s))" + (
            f"  — label read uncertainly on {uncertain}: check it (`cameras rename`)"
            if uncertain else ""))
        lines += [f"  {e.to_text()}" for e in entries]
    if no_clock:
        lines.append(f"no DVR clock found  ({len(no_clock)} clip(s), not on the timeline)")
        lines += [f"  {u.to_text()}" for u in no_clock]
    return "\n".join(lines) or "(no segments with a DVR clock yet: run `strongroom process`)"


def _flag(entries: list[Entry]) -> None:
    open_until: list[Entry] = []  # earlier entries still running at the current start
    latest_end: datetime | None = None
    for e in entries:
        if latest_end is not None:
            gap = (e.clock_start - latest_end).total_seconds()
            if gap > GAP_SECONDS:
                e.gap_before_s = gap
        open_until = [o for o in open_until
                      if (o.clock_end - e.clock_start).total_seconds() >= OVERLAP_SECONDS]
        for o in open_until:
            if o.original != e.original:
                if o.original not in e.overlaps:
                    e.overlaps.append(o.original)
                if e.original not in o.overlaps:
                    o.overlaps.append(e.original)
        open_until.append(e)
        latest_end = e.clock_end if latest_end is None else max(latest_end, e.clock_end)


def flag_entries(entries: list[Entry]) -> None:
    """Flag gaps and overlaps on one camera's entries, in clock order, as `timelines` does
    (for entries built elsewhere: an export draws only the clips in its bag)."""
    _flag(entries)
