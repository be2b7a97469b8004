"""The catalogue rows an analysis step wrote for one original, as plain data to hash.

Reports and exports rely on these rows — the DVR clock times and camera of each segment, the
media facts, the frame hashes that group near-duplicates — so they are evidence. The runner puts
the SHA-256 of this view into the step's `analysed` event, and `verify` recomputes it: an edited,
deleted or added row is caught. Values are coerced to their column's type, so the view is the
same before and after a round trip through SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import Camera, FrameHash, MediaInfo, Segment

#: step → the table its rows live in (for "rows without the event that wrote them")
STEP_TABLES: dict[str, type[Any]] = {
    "probe": MediaInfo, "overlay_ocr": Segment, "perceptual_hash": FrameHash,
}


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _i(value: Any) -> int | None:
    return None if value is None else int(value)


def _t(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def step_rows(session: Session, step: str, sha256: str) -> Any:
    """The rows `step` keeps for `sha256` (None for a step that keeps none)."""
    if step == "probe":
        m = session.get(MediaInfo, sha256)
        if m is None:
            return {}
        return {"container": m.container, "duration": _f(m.duration), "width": _i(m.width),
                "height": _i(m.height), "fps": _f(m.fps), "video_codec": m.video_codec,
                "audio_codec": m.audio_codec, "bitrate": _i(m.bitrate), "tags": m.tags,
                "status": m.status}
    if step == "overlay_ocr":
        # the label OCR read, which a person's rename or merge of the camera leaves alone
        read = func.coalesce(Camera.read_as, Camera.label)
        rows = session.execute(
            select(Segment, read).outerjoin(Camera, Segment.camera_id == Camera.id)
            .where(Segment.original_sha256 == sha256)).all()
        segs = [[_f(s.start_s), _f(s.end_s), label, _t(s.clock_start), _t(s.clock_end),
                 _f(s.confidence), s.clock_format, _i(s.readings),
                 *([] if s.clock_phase is None else [_f(s.clock_phase)])]  # (added in 0003)
                for s, label in rows]
        return sorted(segs, key=lambda r: repr(r))
    if step == "perceptual_hash":
        frames = session.execute(select(FrameHash.t, FrameHash.pdq, FrameHash.quality).where(
            FrameHash.original_sha256 == sha256)).all()
        return sorted([_f(t), pdq, _i(q)] for t, pdq, q in frames)
    return None


def rows_digest(session: Session, step: str, sha256: str) -> str | None:
    from strongroom.custody.chain import result_digest

    rows = step_rows(session, step, sha256)
    return None if rows is None else result_digest(rows)


# -- case building: what a case or an incident says, as recorded ------------------------------
def incident_view(session: Session, incident_id: int) -> Any:
    """An incident with the clips that show it and the people in it (by pseudonym)."""
    from strongroom.catalogue.models import Incident, IncidentOriginal, IncidentPerson, Person

    inc = session.get(Incident, incident_id)
    if inc is None:
        return None
    clips = session.execute(select(
        IncidentOriginal.original_sha256, IncidentOriginal.start_s, IncidentOriginal.end_s,
        IncidentOriginal.note).where(IncidentOriginal.incident_id == incident_id)).all()
    people = session.execute(select(Person.pseudonym, Person.role, IncidentPerson.role).join(
        Person, Person.id == IncidentPerson.person_id).where(
        IncidentPerson.incident_id == incident_id)).all()
    return {
        "title": inc.title, "description": inc.description, "facility_id": inc.facility_id,
        "occurred_from": _t(inc.occurred_from), "occurred_to": _t(inc.occurred_to),
        "abuse_types": inc.abuse_types, "severity": _i(inc.severity),
        "clips": sorted([sha, _f(a), _f(b), note] for sha, a, b, note in clips),
        "people": sorted([p, r, ir] for p, r, ir in people),
        **_unless_default(status=(inc.status or "open", "open")),
    }


def _unless_default(**fields: tuple[Any, Any]) -> dict[str, Any]:
    """Fields added to a record after events were signed over its older view: present only
    when they differ from what a record without them means, so the older digests still hold."""
    return {name: value for name, (value, default) in fields.items() if value != default}


def case_view(session: Session, case_id: int) -> Any:
    from strongroom.catalogue.models import CaseFile, CaseIncident

    case = session.get(CaseFile, case_id)
    if case is None:
        return None
    incidents = session.scalars(select(CaseIncident.incident_id).where(
        CaseIncident.case_id == case_id)).all()
    return {"name": case.name, "purpose": case.purpose, "description": case.description,
            "incidents": sorted(incidents),
            **_unless_default(recipient=(case.recipient, None),
                              status=(case.status or "open", "open"),
                              notes=(case.notes, None))}


def person_view(session: Session, person_id: int) -> Any:
    """A person by pseudonym, with a digest of the sealed identity (never the identity)."""
    import hashlib

    from strongroom.catalogue.models import Person

    p = session.get(Person, person_id)
    if p is None:
        return None
    sealed = p.sealed_identity
    return {"pseudonym": p.pseudonym, "role": p.role, "note": p.note,
            "sealed_identity_sha256": None if sealed is None
            else hashlib.sha256(bytes(sealed)).hexdigest()}


def export_request_view(session: Session, request_id: int) -> Any:
    from strongroom.catalogue.models import ExportRequest

    r = session.get(ExportRequest, request_id)
    if r is None:
        return None
    return {"case": r.case_id, "reason": r.reason, "status": r.status,
            "requested_by": r.requested_by, "decided_by": r.decided_by, "bag_id": r.bag_id,
            "output": r.output, "error": r.error}


def review_view(session: Session, review_id: int) -> Any:
    """A clip's review: status, note, content labels and assignee, as recorded."""
    from strongroom.catalogue.models import Review, User

    r = session.get(Review, review_id)
    if r is None:
        return None
    assignee = session.get(User, r.assigned_to) if r.assigned_to is not None else None
    return {"original": r.original_sha256, "status": r.status, "note": r.note,
            "labels": sorted(r.labels or []),
            "assigned_to": assignee.username if assignee is not None else None}


def facility_view(session: Session, facility_id: int) -> Any:
    """A facility: its name, type (a code of the facility vocabulary) and region."""
    from strongroom.catalogue.models import Facility

    f = session.get(Facility, facility_id)
    if f is None:
        return None
    return {"name": f.name, "type": f.type, "region": f.region}


def vocabulary_view(session: Session, term_id: int) -> Any:
    """A vault's own term of a vocabulary (`catalogue/vocabulary.py`), as it now reads."""
    from strongroom.catalogue.models import VocabularyTerm

    t = session.get(VocabularyTerm, term_id)
    if t is None:
        return None
    return {"kind": t.kind, "code": t.code, "en": t.label_en, "ru": t.label_ru,
            "retired": bool(t.retired)}


def publication_view(session: Session, publication_id: int) -> Any:
    """A publication: its range, status, people, draft and published file, and every version
    of its redaction spec by the digest of what it now holds (a spec edited in place, or one
    added without an event, no longer matches the last event's digest)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Publication, RedactionSpec
    from strongroom.publish.spec import digest

    p = session.get(Publication, publication_id)
    if p is None:
        return None
    specs = session.scalars(select(RedactionSpec).where(
        RedactionSpec.publication_id == publication_id).order_by(RedactionSpec.version))
    return {"original": p.original_sha256, "start": p.start_s, "end": p.end_s,
            "status": p.status, "spec_version": p.spec_version, "draft": p.draft_sha256,
            "requested_by": p.requested_by, "decided_by": p.decided_by,
            "published": p.published_sha256, "note": p.note,
            "specs": [[r.version, digest(r.spec), r.made_by] for r in specs]}


@cache
def annotated_kinds() -> dict[str, tuple[Any, Callable[[Session, int], Any]]]:
    """Every kind of record `Vault.annotate` keeps on the record: its table (each row must have
    an `annotated` event, `verify` checks) and its view (what the event's digest covers)."""
    from strongroom.catalogue.dupes import decision_view
    from strongroom.catalogue.models import (
        CaseFile,
        DuplicateDecision,
        ExportRequest,
        Facility,
        Incident,
        Person,
        Publication,
        Review,
        VocabularyTerm,
    )

    return {"case": (CaseFile, case_view), "incident": (Incident, incident_view),
            "review": (Review, review_view), "person": (Person, person_view),
            "export_request": (ExportRequest, export_request_view),
            "duplicate": (DuplicateDecision, decision_view),
            "facility": (Facility, facility_view),
            "vocabulary": (VocabularyTerm, vocabulary_view),
            "publication": (Publication, publication_view)}


def record_view(session: Session, kind: str, row_id: int) -> Any:
    """What a record of `kind` (see `annotated_kinds`) now says, as plain data (None when it
    does not exist)."""
    return annotated_kinds()[kind][1](session, row_id)


def record_digest(session: Session, kind: str, row_id: int) -> str | None:
    """SHA-256 of `record_view`."""
    from strongroom.custody.chain import result_digest

    view = record_view(session, kind, row_id)
    return None if view is None else result_digest(view)


# -- chunked derivatives: the chunk list, as recorded ------------------------------------------
def chunk_list(rows: Any) -> list[list[Any]]:
    """A chunked derivative's chunks as plain data, in order: [idx, offset, size, sha256,
    blob name] each (rows of `derivative_chunk`, or anything with those attributes)."""
    return sorted([_i(r.idx), _i(r.offset), _i(r.size), r.sha256, r.blob_name] for r in rows)


def chunks_digest(rows: Any) -> str:
    """SHA-256 of a chunked derivative's whole chunk list (`chunk_list`): its `derived`
    event carries it, so `verify` catches an edited, removed or added chunk row."""
    from strongroom.custody.chain import result_digest

    return result_digest(chunk_list(rows))
