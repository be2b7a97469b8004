"""What goes into a handover: the originals chosen, and the catalogue's record of each.

Everything here is read in one read transaction, so the metadata, the custody extract and the
list of originals describe the same moment of the vault.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import (
    Acquisition,
    Camera,
    CaseFile,
    CaseIncident,
    CustodyCheckpoint,
    CustodyEvent,
    Derivative,
    Facility,
    Incident,
    IncidentOriginal,
    MediaInfo,
    Original,
    Segment,
    Sighting,
)
from strongroom.errors import StrongroomError, UnknownOriginal

_EXT = re.compile(r"^[a-z0-9]{1,8}$")
MIME_EXT = {"video/mp4": "mp4", "image/jpeg": "jpg", "image/png": "png", "text/plain": "txt",
            "application/json": "json", "text/vtt": "vtt"}


class UnknownCase(StrongroomError):
    """No case with that name in the catalogue."""


@dataclass
class Item:
    """One exported original: its row, where it goes in the bag, and what the catalogue knows."""

    original: Original
    file: str
    sightings: list[Sighting] = field(default_factory=list)
    media: MediaInfo | None = None
    segments: list[tuple[Segment, str | None, str | None]] = field(default_factory=list)
    derivatives: list[Derivative] = field(default_factory=list)


@dataclass
class Selection:
    items: list[Item]
    description: str
    case: CaseFile | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)
    acquisitions: list[Acquisition] = field(default_factory=list)
    events: list[CustodyEvent] = field(default_factory=list)
    checkpoints: list[CustodyCheckpoint] = field(default_factory=list)
    shown: set[str] = field(default_factory=set)  # custody subjects shown in full

    @property
    def shas(self) -> list[str]:
        return [i.original.sha256 for i in self.items]


def extension(sightings: list[Sighting], mime: str | None) -> str:
    """The original's own file extension when it is a plain one, else from its type, else bin."""
    for s in sightings:
        ext = PurePosixPath(s.rel_path).suffix.lstrip(".").lower()
        if _EXT.match(ext):
            return ext
    return MIME_EXT.get(mime or "", "bin")


def select_items(session: Session, *, case: str | None, everything: bool,
                 shas: list[str]) -> Selection:
    if sum([case is not None, everything, bool(shas)]) != 1:
        raise StrongroomError("choose what to export: --case NAME, --all, or --original SHA256")
    chosen: list[Original]
    case_row = None
    incidents: list[dict[str, Any]] = []
    if everything:
        chosen = list(session.scalars(select(Original).order_by(Original.ingested_at,
                                                                Original.sha256)))
        description = "the whole archive"
    elif case is not None:
        case_row = session.scalars(select(CaseFile).where(CaseFile.name == case)).first()
        if case_row is None:
            known = session.scalars(select(CaseFile.name).order_by(CaseFile.name)).all()
            raise UnknownCase(f"no case named {case!r}"
                              + (f" (cases: {', '.join(known)})" if known else " (no cases yet)"))
        incidents, wanted = _case_incidents(session, case_row)
        chosen = list(session.scalars(select(Original).where(Original.sha256.in_(wanted))
                                      .order_by(Original.ingested_at, Original.sha256)))
        description = f"case {case_row.name}"
    else:
        chosen = []
        for prefix in shas:
            p = prefix.strip().lower()
            rows = session.scalars(select(Original).where(Original.sha256.like(p + "%"))
                                   .limit(2)).all() if len(p) >= 8 else []
            if len(rows) != 1:
                raise UnknownOriginal(f"no single original with SHA-256 {p}…")
            if rows[0] not in chosen:
                chosen.append(rows[0])
        description = f"{len(chosen)} selected original(s)"
    if not chosen:
        raise StrongroomError(f"nothing to export: {description} has no originals")
    shas_set = [o.sha256 for o in chosen]
    sightings: dict[str, list[Sighting]] = {}
    for s in session.scalars(select(Sighting).where(Sighting.original_sha256.in_(shas_set))
                             .order_by(Sighting.id)):
        sightings.setdefault(s.original_sha256 or "", []).append(s)
    media = {m.original_sha256: m for m in session.scalars(
        select(MediaInfo).where(MediaInfo.original_sha256.in_(shas_set)))}
    segs: dict[str, list[tuple[Segment, str | None, str | None]]] = {}
    from strongroom.catalogue.places import canonical

    canon, to_canon = canonical()  # a merged camera shows as the one it was merged into
    for seg, label, fac in session.execute(
            select(Segment, canon.label, Facility.name)
            .outerjoin(Camera, Segment.camera_id == Camera.id).outerjoin(canon, to_canon)
            .outerjoin(Facility, canon.facility_id == Facility.id)
            .where(Segment.original_sha256.in_(shas_set)).order_by(Segment.start_s)):
        segs.setdefault(seg.original_sha256, []).append((seg, label, fac))
    derivs: dict[str, list[Derivative]] = {}
    for d in session.scalars(select(Derivative).where(Derivative.original_sha256.in_(shas_set))
                             .order_by(Derivative.id)):
        derivs.setdefault(d.original_sha256, []).append(d)
    items = []
    for o in chosen:
        sights = sightings.get(o.sha256, [])
        items.append(Item(o, f"data/originals/{o.sha256}.{extension(sights, o.mime)}", sights,
                          media.get(o.sha256), segs.get(o.sha256, []),
                          derivs.get(o.sha256, [])))
    acq_ids = {s.acquisition_id for i in items for s in i.sightings}
    acquisitions = list(session.scalars(select(Acquisition).where(Acquisition.id.in_(acq_ids))
                                        .order_by(Acquisition.id)))
    checkpoints = list(session.scalars(select(CustodyCheckpoint)
                                       .order_by(CustodyCheckpoint.seq)))
    last = checkpoints[-1].seq if checkpoints else 0
    events = list(session.scalars(select(CustodyEvent).where(CustodyEvent.seq <= last)
                                  .order_by(CustodyEvent.seq)))
    return Selection(items, description, case_row, incidents, acquisitions, events, checkpoints)


def _case_incidents(session: Session, case: CaseFile) -> tuple[list[dict[str, Any]], set[str]]:
    out: list[dict[str, Any]] = []
    wanted: set[str] = set()
    rows = session.execute(
        select(Incident, Facility.name).join(CaseIncident, CaseIncident.incident_id == Incident.id)
        .outerjoin(Facility, Incident.facility_id == Facility.id)
        .where(CaseIncident.case_id == case.id).order_by(Incident.occurred_from, Incident.id))
    for inc, facility in rows:
        clips = session.scalars(select(IncidentOriginal).where(
            IncidentOriginal.incident_id == inc.id)).all()
        wanted.update(c.original_sha256 for c in clips)
        out.append({
            "id": inc.id, "title": inc.title, "description": inc.description,
            "facility": facility, "occurred_from": _iso(inc.occurred_from),
            "occurred_to": _iso(inc.occurred_to), "abuse_types": inc.abuse_types or [],
            "severity": inc.severity,
            "clips": [{"sha256": c.original_sha256, "start_s": c.start_s, "end_s": c.end_s,
                       "note": c.note} for c in clips],
        })
    return out, wanted


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ")


def _ns_iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds")


def original_record(item: Item, derivative_files: dict[int, str]) -> dict[str, Any]:
    o, m = item.original, item.media
    return {
        "sha256": o.sha256, "sha512": o.sha512, "md5": o.md5, "size": o.size, "mime": o.mime,
        "file": item.file, "ingested_at": _iso(o.ingested_at),
        "first_acquisition": o.first_acquisition_id,
        "sightings": [{
            "acquisition": s.acquisition_id, "path": s.rel_path, "kind": s.kind,
            "size": s.size, "mode": oct(s.mode) if s.mode is not None else None,
            "mtime": _ns_iso(s.mtime_ns), "ctime": _ns_iso(s.ctime_ns),
            "atime": _ns_iso(s.atime_ns), "mtime_ns": s.mtime_ns, "ctime_ns": s.ctime_ns,
            "atime_ns": s.atime_ns, "seen_at": _iso(s.seen_at),
        } for s in item.sightings],
        "media": None if m is None else {
            "status": m.status, "container": m.container, "duration": m.duration,
            "width": m.width, "height": m.height, "fps": m.fps, "video_codec": m.video_codec,
            "audio_codec": m.audio_codec, "bitrate": m.bitrate, "tags": m.tags,
        },
        "segments": [{
            "start_s": seg.start_s, "end_s": seg.end_s, "camera": label, "facility": fac,
            "dvr_clock_start": _iso(seg.clock_start), "dvr_clock_end": _iso(seg.clock_end),
            "clock_format": seg.clock_format, "readings": seg.readings,
            "confidence": seg.confidence,
        } for seg, label, fac in item.segments],
        "derivatives": [{
            "kind": d.kind, "sha256": d.sha256, "size": d.size, "mime": d.mime,
            "step": d.step, "step_version": d.step_version, "command": d.command,
            "created_at": _iso(d.created_at), "file": derivative_files.get(d.id),
        } for d in item.derivatives],
    }


def acquisition_record(acq: Acquisition, commitment: str, reveal: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": acq.id, "medium": acq.medium,
                           "recorded_at": _iso(acq.created_at), "commitment": commitment}
    if reveal:
        rec.update({"description": acq.description, "source_path": acq.source_path,
                    "received_by": acq.received_by, "received_at": acq.received_at,
                    "nonce": acq.nonce})
    return rec


CSV_COLUMNS = ["sha256", "md5", "size", "file", "first_path", "ingested_at", "duration",
               "resolution", "cameras", "facilities", "dvr_clock_start", "dvr_clock_end"]


#: What a spreadsheet takes for the start of a formula in a cell it opens.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: one that would start a formula (a camera label
    or facility a person typed, a path on the leaked stick, `=HYPERLINK(...)`) gets a leading
    `'`. The exact values are in originals.json."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def originals_csv(records: list[dict[str, Any]]) -> bytes:
    """The originals as spreadsheet rows; text that would start a formula begins with `'`."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in records:
        segs = r["segments"]
        m = r["media"] or {}
        starts = [s["dvr_clock_start"] for s in segs if s["dvr_clock_start"]]
        ends = [s["dvr_clock_end"] for s in segs if s["dvr_clock_end"]]
        w.writerow([_cell(v) for v in [
            r["sha256"], r["md5"], r["size"], r["file"],
            r["sightings"][0]["path"] if r["sightings"] else "", r["ingested_at"],
            m.get("duration") or "",
            f"{m['width']}x{m['height']}" if m.get("width") else "",
            "; ".join(sorted({s["camera"] for s in segs if s["camera"]})),
            "; ".join(sorted({s["facility"] for s in segs if s["facility"]})),
            min(starts) if starts else "", max(ends) if ends else "",
        ]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: spreadsheets read UTF-8 right
