"""Export requests: a lawyer asks for a case's bag, an admin or investigator approves it (and
the review app runs it) or refuses. Two people, each on the record: the request, the decision,
the run and its outcome are `annotated` events on `export_request:<id>`, and the bag itself
adds the `exported` event as every export does.

Whoever asked cannot approve their own request: an export hands originals to someone outside
the vault, so it takes a second pair of eyes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.cases import MAX_DESCRIPTION, clean_text
from strongroom.catalogue.models import CaseFile, CaseIncident, ExportRequest
from strongroom.errors import StrongroomError
from strongroom.vault import Vault


def request_export(vault: Vault, case_id: int, reason: str | None, *,
                   actor: str) -> dict[str, Any]:
    """Ask for case `case_id`'s export; one `annotated` event."""
    why = clean_text(reason, MAX_DESCRIPTION, "reason")
    with vault.write() as s:
        case = s.get(CaseFile, case_id)
        if case is None:
            raise StrongroomError(f"no case {case_id}")
        if s.scalar(select(CaseIncident.incident_id).where(
                CaseIncident.case_id == case_id).limit(1)) is None:
            raise StrongroomError(f"case {case.name!r} has no incidents to export yet")
        pending = s.scalar(select(ExportRequest.id).where(
            ExportRequest.case_id == case_id,
            ExportRequest.status.in_(("requested", "approved", "running"))))
        if pending is not None:
            raise StrongroomError(f"export request {pending} for this case is still open")
        row = ExportRequest(case_id=case_id, reason=why, status="requested",
                            requested_by=actor, requested_at=datetime.now(UTC))
        s.add(row)
        s.flush()
        vault.annotate(s, "export_request", row.id, "requested", actor=actor)
        return {"request": row.id, "case": case_id, "status": "requested"}


def same_person(requested_by: str | None, actor: str) -> bool:
    """Whether two custody-log names are one account: the review app names people
    "bob (lawyer, review app)", so bob promoted since signs differently but is still bob."""
    def name(who: str) -> str:
        return who.split(" (", 1)[0].strip().casefold()

    return requested_by is not None and name(requested_by) == name(actor)


def decide(vault: Vault, request_id: int, *, approve: bool, actor: str) -> dict[str, Any]:
    """Approve or refuse a request (not one's own); one `annotated` event."""
    with vault.write() as s:
        row = s.get(ExportRequest, request_id)
        if row is None:
            raise StrongroomError(f"no export request {request_id}")
        if row.status != "requested":
            raise StrongroomError(f"export request {request_id} is already {row.status}")
        if same_person(row.requested_by, actor):
            raise StrongroomError("someone else must approve or refuse your own request")
        row.status = "approved" if approve else "refused"
        row.decided_by, row.decided_at = actor, datetime.now(UTC)
        vault.annotate(s, "export_request", request_id, row.status, actor=actor)
        return {"request": request_id, "status": row.status}


def _set(vault: Vault, request_id: int, status: str, *, actor: str,
         **fields: Any) -> None:
    with vault.write() as s:
        row = s.get(ExportRequest, request_id)
        if row is None:
            raise StrongroomError(f"no export request {request_id}")
        row.status = status
        for name, value in fields.items():
            setattr(row, name, value)
        vault.annotate(s, "export_request", request_id, status, actor=actor)


def start(vault: Vault, request_id: int, *, actor: str) -> str:
    """Mark an approved request running; returns the case's name."""
    with vault.catalogue.read() as s:
        row = s.get(ExportRequest, request_id)
        if row is None:
            raise StrongroomError(f"no export request {request_id}")
        if row.status != "approved":
            raise StrongroomError(f"export request {request_id} is {row.status}, not approved")
        case = s.get(CaseFile, row.case_id)
        name = case.name if case else ""
    _set(vault, request_id, "running", actor=actor)
    return name


def run(vault: Vault, request_id: int, case_name: str, dest: Path, *, actor: str,
        organisation: str = "") -> dict[str, Any]:
    """Write the bag of a request marked running (`start`) under `dest`; the request ends
    `done` (with the bag's identifier and place) or `failed` (with why)."""
    import logging

    from strongroom.export.bag import ExportOptions, _inside, export

    try:
        # refused before anything is made: not even an empty folder inside the vault
        for folder in vault.settings.vault_folders():
            if _inside(dest, folder):
                raise StrongroomError(f"the export folder {dest} is inside the vault folder "
                                      f"{folder}; the server's export folder must be outside "
                                      "it (STRONGROOM_EXPORT_DIR)")
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        report = export(vault, dest, ExportOptions(
            case=case_name, name=f"case-{request_id}-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            organisation=organisation))
    except Exception as exc:  # whatever stops the run, the request says so
        if not isinstance(exc, StrongroomError | OSError):
            logging.getLogger(__name__).exception("export request %s failed", request_id)
        error = str(exc) if isinstance(exc, StrongroomError | OSError) else \
            f"the export stopped on an unexpected error ({type(exc).__name__}); it is logged"
        _set(vault, request_id, "failed", actor=actor, error=error[:2000])
        return {"request": request_id, "status": "failed", "error": error}
    _set(vault, request_id, "done", actor=actor, bag_id=report.bag_id,
         output="\n".join(report.output))
    return {"request": request_id, "status": "done", "bag_id": report.bag_id,
            "output": report.output}


def fail_interrupted(vault: Vault, *, actor: str) -> list[int]:
    """Requests left `running` by a server that stopped mid-export (a crash, `seal`, a
    reboot) end `failed`, saying so; the half-written bag was never published (exports
    write under a temporary name and rename when complete). Returns their numbers."""
    with vault.catalogue.read() as s:
        stuck = list(s.scalars(select(ExportRequest.id).where(
            ExportRequest.status == "running")))
    for request_id in stuck:
        _set(vault, request_id, "failed", actor=actor,
             error="the server stopped before the export finished; ask again")
    return stuck
