"""What the review app shows of clips: the queue, one clip, its history. Reads only; the
changes people make go through `review.actions`, which goes through the vault's door.

Every time shown is the DVR's own clock as the overlay step read it (naive: the recorder's
wall clock, zone unknown), labelled as such, with the offset in the file beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import (
    Camera,
    CustodyEvent,
    Derivative,
    Facility,
    MediaInfo,
    Original,
    Review,
    Segment,
    StepRun,
    User,
)
from strongroom.catalogue.places import canonical

#: Derivatives the app may send before a reveal: blurred, greyscale, silent (the `review`
#: pipeline step makes them). Nothing else is ever served unrevealed.
SAFE_KINDS = {"video": "safe_proxy", "poster": "safe_poster", "thumb": "safe_thumb"}
#: What a reveal unlocks.
CLEAR_KINDS = {"video": "proxy", "poster": "poster"}


@dataclass
class Span:
    """One segment: a stretch of the file under one camera and clock reading."""

    start_s: float
    end_s: float
    camera: str | None
    facility: str | None
    clock_start: datetime | None
    clock_end: datetime | None


@dataclass
class Clip:
    sha256: str
    size: int
    duration: float | None
    media_status: str | None
    status: str = "unreviewed"
    note: str | None = None
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None
    assignee_id: int | None = None
    spans: list[Span] = field(default_factory=list)
    safe: set[str] = field(default_factory=set)
    failed_steps: list[str] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.sha256[:12]

    @property
    def cameras(self) -> list[str]:
        return sorted({s.camera for s in self.spans if s.camera})

    @property
    def facilities(self) -> list[str]:
        return sorted({s.facility for s in self.spans if s.facility})

    @property
    def clock_start(self) -> datetime | None:
        times = [s.clock_start for s in self.spans if s.clock_start]
        return min(times) if times else None

    @property
    def clock_end(self) -> datetime | None:
        times = [s.clock_end for s in self.spans if s.clock_end]
        return max(times) if times else None

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256, "size": self.size, "duration": self.duration,
            "media_status": self.media_status, "status": self.status, "note": self.note,
            "labels": self.labels, "assigned_to": self.assignee,
            "cameras": self.cameras, "facilities": self.facilities,
            "dvr_clock_start": _iso(self.clock_start), "dvr_clock_end": _iso(self.clock_end),
            "segments": [{"start_s": s.start_s, "end_s": s.end_s, "camera": s.camera,
                          "facility": s.facility, "dvr_clock_start": _iso(s.clock_start),
                          "dvr_clock_end": _iso(s.clock_end)} for s in self.spans],
            "safe_preview": sorted(self.safe), "failed_steps": self.failed_steps,
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass
class Filters:
    facility: str | None = None
    camera: str | None = None
    day: date | None = None
    status: str | None = None

    def match(self, clip: Clip) -> bool:
        if self.facility and self.facility not in clip.facilities:
            return False
        if self.camera and self.camera not in clip.cameras:
            return False
        if self.status and clip.status != self.status:
            return False
        if self.day:
            days = {t.date() for s in clip.spans for t in (s.clock_start, s.clock_end) if t}
            if self.day not in days:
                return False
        return True


def load_clips(s: Session, *, only: list[str] | None = None,
               assigned_to: int | None = None) -> list[Clip]:
    """Every original as a clip (or those in `only`, or assigned to one user), in DVR-clock
    order; clips with no clock come last, never left out."""
    q = select(Original.sha256, Original.size, MediaInfo.duration, MediaInfo.status).outerjoin(
        MediaInfo, MediaInfo.original_sha256 == Original.sha256)
    if only is not None:
        q = q.where(Original.sha256.in_(only))
    clips = {sha: Clip(sha, size, duration, status) for sha, size, duration, status in s.execute(q)}
    users = {u.id: u.username for u in s.scalars(select(User))}
    for r in s.scalars(select(Review)):
        c = clips.get(r.original_sha256)
        if c is not None:
            c.status, c.note, c.labels = r.status, r.note, list(r.labels or [])
            c.assignee_id = r.assigned_to
            c.assignee = users.get(r.assigned_to) if r.assigned_to is not None else None
    if assigned_to is not None:
        clips = {k: c for k, c in clips.items() if c.assignee_id == assigned_to}
    canon, joined = canonical()
    rows = s.execute(
        select(Segment, canon.label, Facility.name)
        .outerjoin(Camera, Segment.camera_id == Camera.id)
        .outerjoin(canon, joined)
        .outerjoin(Facility, Facility.id == canon.facility_id)
        .order_by(Segment.original_sha256, Segment.start_s))
    for seg, label, facility in rows:
        c = clips.get(seg.original_sha256)
        if c is not None:
            c.spans.append(Span(seg.start_s, seg.end_s, label, facility, seg.clock_start,
                                seg.clock_end))
    safe_kind = {v: k for k, v in SAFE_KINDS.items()}
    for sha, kind in s.execute(select(Derivative.original_sha256, Derivative.kind).where(
            Derivative.kind.in_(list(SAFE_KINDS.values())))):
        c = clips.get(sha)
        if c is not None:
            c.safe.add(safe_kind[kind])
    for sha, step in s.execute(select(StepRun.original_sha256, StepRun.step).where(
            StepRun.status == "error")):
        c = clips.get(sha)
        if c is not None:
            c.failed_steps.append(step)
    return sorted(clips.values(), key=lambda c: (c.clock_start is None,
                                                  c.clock_start or datetime.min, c.sha256))


def facets(clips: list[Clip]) -> dict[str, list[str]]:
    return {"facility": sorted({f for c in clips for f in c.facilities}),
            "camera": sorted({n for c in clips for n in c.cameras})}


def derivative(s: Session, sha256: str, kind: str) -> Derivative | None:
    return s.scalar(select(Derivative).where(Derivative.original_sha256 == sha256,
                                             Derivative.kind == kind)
                    .order_by(Derivative.id.desc()).limit(1))


def history(s: Session, sha256: str, review_id: int | None) -> list[dict[str, Any]]:
    """The custody events about this clip (its original, and its review), newest first."""
    subjects = [f"original:{sha256}"] + ([f"review:{review_id}"] if review_id else [])
    rows = s.scalars(select(CustodyEvent).where(CustodyEvent.subject.in_(subjects))
                     .order_by(CustodyEvent.seq.desc()).limit(200))
    return [{"seq": e.seq, "time": e.time, "actor": e.actor, "action": e.action}
            for e in rows]


def neighbours(clips: list[Clip], sha256: str) -> tuple[str | None, str | None]:
    shas = [c.sha256 for c in clips]
    if sha256 not in shas:
        return None, None
    i = shas.index(sha256)
    return (shas[i - 1] if i > 0 else None, shas[i + 1] if i + 1 < len(shas) else None)
