"""Incidents and cases, made from the command line (and later the review app): what happened,
when on the DVR clock, in which clips, and which incidents go to which recipient.

An incident is a stretch of one clip (`--from`/`--to` offsets, or `--dvr-from`/`--dvr-to` DVR
clock times mapped to offsets through the clip's segments), with abuse types, a severity and a
description; its DVR time and facility come from the segments it covers. A case groups
incidents for a recipient. Every change is an `annotated` custody event with a digest of the
whole record (`Vault.annotate`), so `verify` notices an edit made around this door, and
`strongroom export --case NAME` hands the case over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import (
    CASE_STATUSES,
    INCIDENT_STATUSES,
    Camera,
    CaseFile,
    CaseIncident,
    Facility,
    Incident,
    IncidentOriginal,
    MediaInfo,
    Segment,
)
from strongroom.catalogue.places import MAX_TEXT, canonical
from strongroom.catalogue.vocabulary import check_many
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

PURPOSES = ("prosecution", "publication", "internal")
#: The default vocabulary of abuse types (after HURIDOCS' "types of acts" micro-thesaurus,
#: narrowed to what prison CCTV shows); `--type` also takes others.
ABUSE_TYPES = ("beating", "torture", "rape", "sexual violence", "humiliation", "threats",
               "restraint", "denial of medical care", "death in custody", "forced labour")
#: The longest description accepted (a report's paragraph, not a document).
MAX_DESCRIPTION = 20_000
DVR_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_offset(text: str) -> float:
    """`HH:MM:SS`, `MM:SS` or seconds (decimals allowed) into seconds."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3:
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise StrongroomError(f"{text!r} is not a time in the clip (HH:MM:SS or seconds)") \
            from None
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    if not math.isfinite(seconds) or seconds < 0 or any(v < 0 for v in values):
        raise StrongroomError(f"{text!r} is not a time in the clip")
    return seconds


def parse_dvr(text: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), DVR_FORMAT)
    except ValueError:
        raise StrongroomError(f"{text!r} is not a DVR clock time (YYYY-MM-DD HH:MM:SS)") \
            from None


def dvr_at(seg: Segment, t: float) -> datetime | None:
    """What the DVR clock showed at file time `t` within `seg` (the overlay step's rule)."""
    if seg.clock_start is None:
        return None
    return seg.clock_start + timedelta(seconds=math.floor((seg.clock_phase or 0.0)
                                                          + t - seg.start_s))


def offset_of(segments: list[Segment], when: datetime) -> float:
    """The file time at which the DVR clock shows `when` (the start of that second)."""
    for seg in segments:
        if seg.clock_start is None or seg.clock_end is None:
            continue
        if seg.clock_start <= when <= seg.clock_end:
            t = seg.start_s + (when - seg.clock_start).total_seconds() - (seg.clock_phase or 0.0)
            return max(seg.start_s, min(t, seg.end_s))
    shown = ", ".join(f"{s.clock_start:%Y-%m-%d %H:%M:%S}–{s.clock_end:%H:%M:%S}"
                      for s in segments if s.clock_start and s.clock_end) or "none"
    raise StrongroomError(f"the clip's DVR clock never shows {when:%Y-%m-%d %H:%M:%S} "
                          f"(its segments: {shown})")


@dataclass
class NewIncident:
    sha256: str
    start_s: float | None = None
    end_s: float | None = None
    dvr_from: datetime | None = None
    dvr_to: datetime | None = None
    title: str | None = None
    description: str | None = None
    abuse_types: tuple[str, ...] = ()
    severity: int | None = None


#: Bidirectional overrides, embeddings and isolates: they make "Victim 21" show as
#: "Victim 12" (and reorder a description) without a visible trace. Never needed in what is
#: typed here; the plain marks (U+200E, U+200F) stay allowed in longer text.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: str | None, limit: int, what: str) -> str | None:
    """`value` stripped (None when empty), refused when longer than `limit` or holding
    control characters other than newline and tab (C0, DEL, C1) or bidirectional
    overrides."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise StrongroomError(f"the {what} is too long (at most {limit} characters)")
    if any((ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f
           or c in BIDI_CONTROLS for c in value):
        raise StrongroomError(f"the {what} holds control characters")
    return value or None


def clean_name(value: str | None, limit: int, what: str) -> str | None:
    """`clean_text` for a name shown on one line (a pseudonym, a case, a recipient, a
    title): also refuses invisible format characters (zero-width spaces and joiners, soft
    hyphens, word joiners, byte-order marks, direction marks), which let two names that
    look the same differ, or one name hide a second."""
    import unicodedata

    clean = clean_text(value, limit, what)
    if clean and any(unicodedata.category(c) == "Cf" for c in clean):
        raise StrongroomError(f"the {what} holds invisible characters")
    return clean


#: Letters of other scripts that look like Latin ones (after case folding): "Vіctim 12" with
#: a Cyrillic і is, on a page or in a court bundle, "Victim 12". From Unicode's confusables
#: (UTS #39), narrowed to the Cyrillic and Greek letters a pseudonym is likely to meet.
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "з": "3", "ч": "4", "б": "6",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "μ": "u",
})


def skeleton(name: str) -> str:
    """What a name (a pseudonym, a case) looks like, for telling whether two are the same to
    the eye: compatibility-normalised (full-width digits, ligatures), case-folded in every
    script (SQLite's lower() folds ASCII only), spacing collapsed, look-alike letters
    merged."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(folded.translate(_LOOKALIKES).split())


def add_incident(vault: Vault, new: NewIncident, *, actor: str | None = None) -> dict[str, Any]:
    """Make an incident on one clip; one `annotated` event. Returns what was recorded."""
    original = vault.find_original(new.sha256)
    description = clean_text(new.description, MAX_DESCRIPTION, "description")
    title = clean_name(new.title, MAX_TEXT, "title")
    if any(len(t) > 64 for t in new.abuse_types):
        raise StrongroomError("an abuse type is at most 64 characters")
    if new.severity is not None and not 1 <= new.severity <= 5:
        raise StrongroomError("severity is 1 (lowest) to 5 (highest)")
    with vault.write() as s:
        # the vault's vocabulary (codes, or either label): an unknown type is refused
        types = check_many(s, "abuse", new.abuse_types)
        segments = list(s.scalars(select(Segment).where(
            Segment.original_sha256 == original.sha256).order_by(Segment.start_s)))
        start, end = _range(s, original.sha256, segments, new)
        covered = [g for g in segments if g.start_s < end and g.end_s > start] or \
            [g for g in segments if g.start_s <= start <= g.end_s]
        clocks = [c for g in covered for c in (dvr_at(g, max(start, g.start_s)),
                                               dvr_at(g, min(end, g.end_s))) if c]
        incident = Incident(
            title=title or _default_title(covered, s), description=description,
            facility_id=_facility(s, covered), abuse_types=types or None,
            severity=new.severity, created_at=datetime.now(UTC),
            occurred_from=min(clocks) if clocks else None,
            occurred_to=max(clocks) if clocks else None, status="open")
        s.add(incident)
        s.flush()
        s.add(IncidentOriginal(incident_id=incident.id, original_sha256=original.sha256,
                               start_s=round(start, 3), end_s=round(end, 3)))
        vault.annotate(s, "incident", incident.id, "made", actor=actor)
        return {"incident": incident.id, "title": incident.title, "original": original.sha256,
                "start_s": round(start, 3), "end_s": round(end, 3),
                "dvr_from": _fmt(incident.occurred_from), "dvr_to": _fmt(incident.occurred_to),
                "abuse_types": types, "severity": new.severity}


def _range(s: Session, sha256: str, segments: list[Segment], new: NewIncident
           ) -> tuple[float, float]:
    if (new.start_s is None) == (new.dvr_from is None) or \
            (new.end_s is None) == (new.dvr_to is None):
        raise StrongroomError("give the start and the end, each either as --from/--to (time "
                              "in the clip) or --dvr-from/--dvr-to (DVR clock)")
    start = new.start_s if new.dvr_from is None else offset_of(segments, new.dvr_from)
    end = new.end_s if new.dvr_to is None else offset_of(segments, new.dvr_to) + 1.0
    if start is None or end is None:  # pragma: no cover - excluded above
        raise StrongroomError("give the start and the end")
    duration = s.scalar(select(MediaInfo.duration).where(MediaInfo.original_sha256 == sha256))
    if end <= start:
        raise StrongroomError("the end comes before the start")
    if duration is not None and start >= duration + 0.5:
        raise StrongroomError(f"the clip is only {duration:.1f} s long")
    if duration is not None:
        end = min(end, duration)
    return start, end


def _facility(s: Session, covered: list[Segment]) -> int | None:
    canon, joined = canonical()
    ids = {f for f in s.scalars(select(canon.facility_id).select_from(Camera).join(
        canon, joined).where(Camera.id.in_([g.camera_id for g in covered if g.camera_id])))
           if f is not None}
    return ids.pop() if len(ids) == 1 else None


def _default_title(covered: list[Segment], s: Session) -> str:
    canon, joined = canonical()
    labels = sorted(set(s.scalars(select(canon.label).select_from(Camera).join(
        canon, joined).where(Camera.id.in_([g.camera_id for g in covered if g.camera_id])))))
    when = next((dvr_at(g, g.start_s) for g in covered if g.clock_start), None)
    return " ".join(p for p in (", ".join(labels), _fmt(when)) if p) or "incident"


def _fmt(t: datetime | None) -> str | None:
    return None if t is None else t.strftime(DVR_FORMAT)


def edit_incident(vault: Vault, incident_id: int, *, title: str | None = None,
                  description: str | None = None, abuse_types: tuple[str, ...] | None = None,
                  severity: int | None = None, status: str | None = None,
                  facility: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Change what an incident says; one `annotated` event, and its new version kept in its
    history (`history`). `facility` is a facility's name."""
    if severity is not None and not 1 <= severity <= 5:
        raise StrongroomError("severity is 1 (lowest) to 5 (highest)")
    if status is not None and status not in INCIDENT_STATUSES:
        raise StrongroomError(f"unknown status {status!r} (one of "
                              f"{', '.join(INCIDENT_STATUSES)})")
    with vault.write() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise StrongroomError(f"no incident {incident_id}")
        facility_id = None
        if facility is not None and facility.strip():
            facility_id = s.scalar(select(Facility.id).where(Facility.name == facility.strip()))
            if facility_id is None:
                raise StrongroomError(f"no facility {facility.strip()!r}")
        changed = []
        for name, value in (("title", clean_name(title, MAX_TEXT, "title")),
                            ("description", clean_text(description, MAX_DESCRIPTION,
                                                       "description")),
                            ("abuse_types", check_many(s, "abuse", abuse_types,
                                                       keep=inc.abuse_types or ())
                             if abuse_types is not None else None),
                            ("severity", severity), ("status", status),
                            ("facility_id", facility_id)):
            if value is not None and value != getattr(inc, name):
                setattr(inc, name, value)
                changed.append(name)
        if not changed:
            raise StrongroomError("nothing to change (give --title, --description, --type, "
                                  "--severity, --status or --facility with a new value)")
        vault.annotate(s, "incident", incident_id, "+".join(changed), actor=actor)
        return {"incident": incident_id, "changed": changed}


def history(vault: Vault, kind: str, row_id: int) -> list[dict[str, Any]]:
    """Every version of a case, an incident or a clip's review, oldest first: when, by whom,
    what changed, what it then said, and whether that version is the one the signed log's
    digest names."""
    import json

    from strongroom.catalogue.models import CustodyEvent, Revision
    from strongroom.custody.chain import result_digest

    out = []
    with vault.catalogue.read() as s:
        rows = s.execute(select(Revision, CustodyEvent).join(
            CustodyEvent, CustodyEvent.seq == Revision.event_seq).where(
            Revision.kind == kind, Revision.row_id == row_id).order_by(Revision.event_seq))
        for rev, ev in rows:
            details = json.loads(ev.details)
            out.append({"seq": ev.seq, "time": ev.time, "actor": ev.actor,
                        "change": details.get("change"), "view": rev.view,
                        "matches_log": rev.view is not None and
                        result_digest(rev.view) == details.get("row_sha256")})
    if not out:
        raise StrongroomError(f"no history of {kind} {row_id}")
    return out


def clip_incidents(s: Session, sha256: str) -> list[dict[str, Any]]:
    """The incidents marked on one clip, in the clip's order."""
    rows = s.execute(select(Incident, IncidentOriginal.start_s, IncidentOriginal.end_s).join(
        IncidentOriginal, IncidentOriginal.incident_id == Incident.id).where(
        IncidentOriginal.original_sha256 == sha256).order_by(IncidentOriginal.start_s))
    return [{"incident": inc.id, "title": inc.title, "description": inc.description,
             "abuse_types": inc.abuse_types or [], "severity": inc.severity,
             "status": inc.status or "open", "start_s": a, "end_s": b,
             "dvr_from": _fmt(inc.occurred_from), "dvr_to": _fmt(inc.occurred_to)}
            for inc, a, b in rows]


def link_clip(vault: Vault, incident_id: int, sha256: str, *, start_s: float | None = None,
              end_s: float | None = None, note: str | None = None,
              actor: str | None = None) -> dict[str, Any]:
    """Show an incident in one more clip (another camera at the same time, a copy). Without
    `start_s`/`end_s`, the stretch whose DVR clock covers the incident's time when the clip's
    segments say so, else the whole clip. One `annotated` event on the incident."""
    original = vault.find_original(sha256)
    clean_note = clean_text(note, MAX_TEXT, "note")
    with vault.write() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise StrongroomError(f"no incident {incident_id}")
        if s.get(IncidentOriginal, (incident_id, original.sha256)) is not None:
            raise StrongroomError(f"that clip already shows incident {incident_id}")
        duration = s.scalar(select(MediaInfo.duration).where(
            MediaInfo.original_sha256 == original.sha256))
        if (start_s is None) != (end_s is None):
            raise StrongroomError("give both the start and the end, or neither")
        if start_s is None or end_s is None:
            start_s, end_s = _same_time(s, original.sha256, inc) or (0.0, duration or 0.0)
        if end_s <= start_s and duration:
            raise StrongroomError("the end comes before the start")
        if duration is not None and start_s >= duration + 0.5:
            raise StrongroomError(f"the clip is only {duration:.1f} s long")
        s.add(IncidentOriginal(incident_id=incident_id, original_sha256=original.sha256,
                               start_s=round(start_s, 3), end_s=round(end_s, 3),
                               note=clean_note))
        vault.annotate(s, "incident", incident_id, "clip linked", actor=actor)
        return {"incident": incident_id, "original": original.sha256,
                "start_s": round(start_s, 3), "end_s": round(end_s, 3)}


def _same_time(s: Session, sha256: str, inc: Incident) -> tuple[float, float] | None:
    """Where in clip `sha256` the DVR clock shows the incident's time, if it does."""
    if inc.occurred_from is None or inc.occurred_to is None:
        return None
    segments = list(s.scalars(select(Segment).where(
        Segment.original_sha256 == sha256).order_by(Segment.start_s)))
    spans = []
    for g in segments:
        if g.clock_start is None or g.clock_end is None:
            continue
        lo, hi = max(g.clock_start, inc.occurred_from), min(g.clock_end, inc.occurred_to)
        if lo <= hi:
            spans.append((offset_of([g], lo), offset_of([g], hi) + 1.0))
    if not spans:
        return None
    return min(a for a, _ in spans), min(max(b for _, b in spans),
                                         max(g.end_s for g in segments))


def unlink_clip(vault: Vault, incident_id: int, sha256: str, *,
                actor: str | None = None) -> dict[str, Any]:
    with vault.write() as s:
        rows = s.scalars(select(IncidentOriginal).where(
            IncidentOriginal.incident_id == incident_id)).all()
        row = next((r for r in rows if r.original_sha256.startswith(sha256.lower())), None)
        if row is None:
            raise StrongroomError(f"that clip does not show incident {incident_id}")
        if len(rows) == 1:
            raise StrongroomError("an incident needs at least one clip")
        s.delete(row)
        vault.annotate(s, "incident", incident_id, "clip unlinked", actor=actor)
        return {"incident": incident_id, "original": row.original_sha256, "removed": True}


def same_time_clips(s: Session, incident_id: int) -> list[dict[str, Any]]:
    """Clips not yet linked whose DVR clock covers the incident's time: other cameras that
    may have filmed the same event, with their camera and the overlap."""
    canon, joined = canonical()
    inc = s.get(Incident, incident_id)
    if inc is None or inc.occurred_from is None or inc.occurred_to is None:
        return []
    linked = set(s.scalars(select(IncidentOriginal.original_sha256).where(
        IncidentOriginal.incident_id == incident_id)))
    rows = s.execute(select(Segment.original_sha256, canon.label, Segment.clock_start,
                            Segment.clock_end).outerjoin(Camera, Camera.id == Segment.camera_id)
                     .outerjoin(canon, joined).where(
        Segment.clock_start <= inc.occurred_to, Segment.clock_end >= inc.occurred_from)
        .order_by(Segment.clock_start).limit(200)).all()
    out: dict[str, dict[str, Any]] = {}
    for sha, label, a, b in rows:
        if sha in linked or sha in out:
            continue
        out[sha] = {"original": sha, "camera": label, "dvr_from": _fmt(a), "dvr_to": _fmt(b)}
    return list(out.values())


def incident_detail(s: Session, incident_id: int) -> dict[str, Any]:
    """An incident with its clips (and their cameras), people and cases."""
    from strongroom.catalogue.people import incident_people

    inc = s.get(Incident, incident_id)
    if inc is None:
        raise StrongroomError(f"no incident {incident_id}")
    canon, joined = canonical()
    clips: list[dict[str, Any]] = []
    for row in s.scalars(select(IncidentOriginal).where(
            IncidentOriginal.incident_id == incident_id).order_by(IncidentOriginal.start_s)):
        cams = sorted(set(s.scalars(select(canon.label).select_from(Segment).join(
            Camera, Camera.id == Segment.camera_id).join(canon, joined).where(
            Segment.original_sha256 == row.original_sha256))))
        clips.append({"original": row.original_sha256, "start_s": row.start_s,
                      "end_s": row.end_s, "note": row.note, "cameras": cams})
    facility = s.get(Facility, inc.facility_id) if inc.facility_id else None
    cases = s.execute(select(CaseFile.id, CaseFile.name).join(
        CaseIncident, CaseIncident.case_id == CaseFile.id).where(
        CaseIncident.incident_id == incident_id).order_by(CaseFile.name)).all()
    return {"incident": inc.id, "title": inc.title, "description": inc.description,
            "abuse_types": inc.abuse_types or [], "severity": inc.severity,
            "status": inc.status or "open", "dvr_from": _fmt(inc.occurred_from),
            "dvr_to": _fmt(inc.occurred_to),
            "facility": facility.name if facility else None,
            "region": facility.region if facility else None,
            "cameras": sorted({c for clip in clips for c in clip["cameras"]}),
            "clips": clips, "people": incident_people(s, incident_id),
            "cases": [{"case": i, "name": n} for i, n in cases]}


def list_incidents(s: Session) -> list[dict[str, Any]]:
    counts = count_by(s, IncidentOriginal.incident_id)
    return [{"incident": i.id, "title": i.title, "status": i.status or "open",
             "severity": i.severity,
             "abuse_types": i.abuse_types or [], "dvr_from": _fmt(i.occurred_from),
             "dvr_to": _fmt(i.occurred_to), "clips": counts.get(i.id, 0)}
            for i in s.scalars(select(Incident).order_by(Incident.occurred_from, Incident.id))]


def add_case(vault: Vault, name: str, *, purpose: str = "prosecution",
             description: str | None = None, recipient: str | None = None,
             actor: str | None = None) -> dict[str, Any]:
    """A new case (a recipient's bundle of incidents); one `annotated` event."""
    clean = clean_name(name, MAX_TEXT, "case name")
    if not clean:
        raise StrongroomError("name the case")
    if purpose not in PURPOSES:
        raise StrongroomError(f"unknown purpose {purpose!r} (one of {', '.join(PURPOSES)})")
    with vault.write() as s:
        if s.scalar(select(CaseFile.id).where(CaseFile.name == clean)) is not None:
            raise StrongroomError(f"there is already a case {clean!r}")
        looks = skeleton(clean)
        twin = next((n for n in s.scalars(select(CaseFile.name)) if skeleton(n) == looks), None)
        if twin is not None:  # one picked from a list by eye would be the wrong one
            raise StrongroomError(f"there is already a case {twin!r}, which {clean!r} looks "
                                  "like; choose a name that differs to the eye")
        case = CaseFile(name=clean, purpose=purpose, created_at=datetime.now(UTC),
                        description=clean_text(description, MAX_DESCRIPTION, "description"),
                        recipient=clean_name(recipient, MAX_TEXT, "recipient"), status="open")
        s.add(case)
        s.flush()
        vault.annotate(s, "case", case.id, "made", actor=actor)
        return {"case": case.id, "name": clean, "purpose": purpose}


def add_to_case(vault: Vault, case_name: str, incident_id: int, *,
                actor: str | None = None) -> dict[str, Any]:
    """Put an incident in a case; one `annotated` event on the case."""
    with vault.write() as s:
        case = s.scalar(select(CaseFile).where(CaseFile.name == case_name.strip()))
        if case is None:
            raise StrongroomError(f"no case {case_name!r} (`strongroom case add` makes one)")
        if s.get(Incident, incident_id) is None:
            raise StrongroomError(f"no incident {incident_id}")
        if s.get(CaseIncident, (case.id, incident_id)) is not None:
            raise StrongroomError(f"incident {incident_id} is already in {case.name!r}")
        s.add(CaseIncident(case_id=case.id, incident_id=incident_id))
        vault.annotate(s, "case", case.id, f"incident {incident_id} added", actor=actor)
        count = len(s.scalars(select(CaseIncident.incident_id).where(
            CaseIncident.case_id == case.id)).all())
        return {"case": case.id, "name": case.name, "incident": incident_id,
                "incidents": count}



def edit_case(vault: Vault, case_id: int, *, recipient: str | None = None,
              status: str | None = None, notes: str | None = None,
              description: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Change a case's recipient, status, notes or description; one `annotated` event."""
    if status is not None and status not in CASE_STATUSES:
        raise StrongroomError(f"unknown status {status!r} (one of {', '.join(CASE_STATUSES)})")
    with vault.write() as s:
        case = s.get(CaseFile, case_id)
        if case is None:
            raise StrongroomError(f"no case {case_id}")
        changed = []
        for name, value in (("recipient", clean_name(recipient, MAX_TEXT, "recipient")),
                            ("status", status),
                            ("notes", clean_text(notes, MAX_DESCRIPTION, "notes")),
                            ("description", clean_text(description, MAX_DESCRIPTION,
                                                       "description"))):
            given = {"recipient": recipient, "status": status, "notes": notes,
                     "description": description}[name]
            if given is not None and value != getattr(case, name):
                setattr(case, name, value)
                changed.append(name)
        if not changed:
            raise StrongroomError("nothing to change")
        vault.annotate(s, "case", case_id, "+".join(changed), actor=actor)
        return {"case": case_id, "changed": changed}


def remove_from_case(vault: Vault, case_id: int, incident_id: int, *,
                     actor: str | None = None) -> dict[str, Any]:
    unlink(vault, CaseIncident, (case_id, incident_id), ("case", case_id),
           f"incident {incident_id}", f"incident {incident_id} is not in case {case_id}",
           actor=actor)
    return {"case": case_id, "incident": incident_id, "removed": True}


def unlink(vault: Vault, table: Any, key: tuple[int, int], owner: tuple[str, int],
           what: str, missing: str, *, actor: str | None = None) -> None:
    """Delete one link row (`table` by primary `key`) from a record (`owner`: its kind and
    id), recording "`what` removed" on that record; `missing` when there is no such link."""
    with vault.write() as s:
        row = s.get(table, key)
        if row is None:
            raise StrongroomError(missing)
        s.delete(row)
        vault.annotate(s, owner[0], owner[1], f"{what} removed", actor=actor)


def count_by(s: Session, column: Any) -> dict[int, int]:
    """How many rows share each value of `column`."""
    return {k: n for k, n in s.execute(select(column, func.count()).group_by(column))}


def list_cases(s: Session) -> list[dict[str, Any]]:
    counts = count_by(s, CaseIncident.case_id)
    return [{"case": c.id, "name": c.name, "purpose": c.purpose, "recipient": c.recipient,
             "status": c.status or "open", "incidents": counts.get(c.id, 0)}
            for c in s.scalars(select(CaseFile).order_by(CaseFile.name))]


def case_detail(s: Session, case_id: int) -> dict[str, Any]:
    """A case with its incidents (their DVR times, facility, clips) and export requests."""
    from strongroom.catalogue.models import ExportRequest

    case = s.get(CaseFile, case_id)
    if case is None:
        raise StrongroomError(f"no case {case_id}")
    ids = s.scalars(select(CaseIncident.incident_id).where(CaseIncident.case_id == case_id))
    incidents = sorted((incident_detail(s, i) for i in ids),
                       key=lambda d: (d["dvr_from"] or "", d["incident"]))
    requests = [{"id": r.id, "status": r.status, "reason": r.reason,
                 "requested_by": r.requested_by, "requested_at": r.requested_at.isoformat(),
                 "decided_by": r.decided_by, "bag_id": r.bag_id, "output": r.output,
                 "error": r.error}
                for r in s.scalars(select(ExportRequest).where(
                    ExportRequest.case_id == case_id).order_by(ExportRequest.id.desc()))]
    return {"case": case.id, "name": case.name, "purpose": case.purpose,
            "recipient": case.recipient, "status": case.status or "open",
            "notes": case.notes,
            "description": case.description, "incidents": incidents,
            "export_requests": requests}
