"""Review app pages for case building: incidents, people, cases and export requests.

Who may do what: admins, investigators and lawyers read (`SEARCHERS`: these pages span the
whole archive, so reviewers, who see only their own clips, do not); admins and investigators
change (`STAFF`); a lawyer asks for a case's export and an admin or investigator other than the
asker approves it, which runs it into the server's export folder. A person's sealed identity is
shown to admins only, on a deliberate click that is a custody event. Every change is an
`annotated` custody event with the person's name, and its version is kept: the incident and
case pages show that history, so a lawyer can show how a description evolved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from strongroom.catalogue.models import (
    CASE_STATUSES,
    INCIDENT_STATUSES,
    PERSON_ROLES,
    Facility,
)
from strongroom.errors import StrongroomError
from strongroom.review import actions
from strongroom.review.actions import Forbidden, Person
from strongroom.review.app import (
    ADMIN,
    SEARCHERS,
    STAFF,
    _field,
    _not_stopped,
    abuse_codes,
    auth,
)
from strongroom.vault import Vault

MAX = actions.MAX_NOTE
#: A row number in a path: beyond SQLite's 64-bit integers a lookup raised OverflowError (a
#: 500); now a 422 like any other malformed path.
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


class CaseBody(BaseModel):
    name: str = Field(max_length=200)
    recipient: str | None = Field(default=None, max_length=200)
    purpose: str = Field(default="prosecution", max_length=32)
    description: str | None = Field(default=None, max_length=MAX)


class CaseEdit(BaseModel):
    recipient: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=32)
    notes: str | None = Field(default=None, max_length=MAX)
    description: str | None = Field(default=None, max_length=MAX)


class IncidentEdit(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=MAX)
    abuse_types: list[str] | None = Field(default=None, max_length=20)
    severity: int | None = Field(default=None, ge=1, le=5)
    status: str | None = Field(default=None, max_length=32)
    facility: str | None = Field(default=None, max_length=200)


class Involve(BaseModel):
    pseudonym: str = Field(max_length=80)
    role: str = Field(max_length=32)


class LinkBody(BaseModel):
    sha256: str = Field(min_length=8, max_length=64)
    start_s: float | None = Field(default=None, ge=0, le=48 * 3600)
    end_s: float | None = Field(default=None, ge=0, le=48 * 3600)
    note: str | None = Field(default=None, max_length=200)


class PersonBody(BaseModel):
    pseudonym: str = Field(max_length=80)
    role: str = Field(max_length=32)
    note: str | None = Field(default=None, max_length=MAX)
    #: a real name, sealed; admins only
    identity: str | None = Field(default=None, max_length=500)


class RequestBody(BaseModel):
    reason: str | None = Field(default=None, max_length=MAX)


def export_folder(vault: Vault) -> Path:
    chosen = vault.settings.export_dir
    return Path(chosen) if chosen else vault.path.parent / f"{vault.path.name}-exports"


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add the case-building pages and their API to `app`."""
    from strongroom.catalogue import cases, export_requests, people
    from strongroom.catalogue.dupes import MatchCache, group_of, near_duplicate_groups

    vault: Vault = app.state.vault
    read = vault.catalogue.read
    cache = getattr(app.state, "dupes_cache", None)  # shared with the duplicates pages
    if cache is None:
        cache = app.state.dupes_cache = MatchCache()
    with actions.WRITE_LOCK:
        export_requests.fail_interrupted(vault, actor=vault.actor)

    def written(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with actions.WRITE_LOCK:
            return fn(vault, *args, **kwargs)

    def facilities() -> list[str]:
        from sqlalchemy import select

        with read() as s:
            return list(s.scalars(select(Facility.name).order_by(Facility.name)))

    def found(detail: Callable[[Any, int], dict[str, Any]], what: str, row_id: int
              ) -> dict[str, Any]:
        """`detail(session, row_id)`, or a 404 naming what is missing."""
        with read() as s:
            try:
                return detail(s, row_id)
            except StrongroomError:
                raise actions.NotFound(f"no {what} {row_id}") from None

    def can_change(who: Person) -> bool:
        return who.role in STAFF

    def versions(kind: str, row_id: int) -> list[dict[str, Any]]:
        try:
            return cases.history(vault, kind, row_id)
        except StrongroomError:
            return []

    # -- incidents ---------------------------------------------------------------------------
    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    def incidents_page(request: Request, who: Annotated[Person, auth(*SEARCHERS)]
                       ) -> HTMLResponse:
        _not_stopped(who)
        with read() as s:
            rows = cases.list_incidents(s)
        return page(request, "incidents.html", incidents=rows)

    @app.get("/api/incidents", tags=["cases"])
    def api_incidents(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every incident: title, status, severity, abuse types, DVR time, clip count."""
        _not_stopped(who)
        with read() as s:
            return {"incidents": cases.list_incidents(s)}

    def incident(incident_id: RowId) -> dict[str, Any]:
        with read() as s:
            try:
                detail = cases.incident_detail(s, incident_id)
            except StrongroomError:
                raise actions.NotFound(f"no incident {incident_id}") from None
            detail["same_time"] = cases.same_time_clips(s, incident_id)
            detail["copies"] = copies(s, [c["original"] for c in detail["clips"]])
        return detail

    def copies(s: Any, linked: list[str]) -> list[dict[str, Any]]:
        """Near-duplicates of the clips that show the incident, not linked yet."""
        groups = near_duplicate_groups(s, cache)
        out: dict[str, dict[str, Any]] = {}
        for sha in linked:
            try:
                group = group_of(groups, sha)
            except StrongroomError:
                continue
            for m in group.members:
                if m.original not in linked:
                    out[m.original] = {"original": m.original, "copy_of": sha,
                                       "group": group.key}
        return list(out.values())

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(request: Request, incident_id: RowId,
                      who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        _not_stopped(who)
        detail = incident(incident_id)
        with read() as s:
            every_case = cases.list_cases(s)
        return page(request, "incident.html", inc=detail, history=versions(
            "incident", incident_id), can_change=can_change(who), abuse_types=abuse_codes(vault),
            statuses=INCIDENT_STATUSES, roles=PERSON_ROLES, facilities=facilities(),
            cases=[c for c in every_case
                   if c["case"] not in {x["case"] for x in detail["cases"]}])

    @app.get("/api/incidents/{incident_id}", tags=["cases"])
    def api_incident(incident_id: RowId, who: Annotated[Person, auth(*SEARCHERS)]
                     ) -> dict[str, Any]:
        """One incident: DVR time, facility, cameras, clips, people (by pseudonym), cases,
        clips of other cameras at the same time, and every version it went through."""
        _not_stopped(who)
        return {**incident(incident_id), "history": versions("incident", incident_id)}

    def edit_incident(who: Person, incident_id: RowId, body: IncidentEdit) -> None:
        incident(incident_id)
        written(cases.edit_incident, incident_id, title=body.title,
                description=body.description, severity=body.severity, status=body.status,
                facility=body.facility, abuse_types=None if body.abuse_types is None
                else tuple(t[:64] for t in body.abuse_types), actor=who.actor)

    @app.post("/incidents/{incident_id}", include_in_schema=False)
    async def incident_post(request: Request, incident_id: RowId,
                            who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        severity = _field(form, "severity", 2)
        try:
            body = IncidentEdit(
                title=_field(form, "title", 200), description=_field(form, "description", MAX),
                status=_field(form, "status", 32) or None,
                facility=_field(form, "facility", 200) or None,
                severity=int(severity) if severity else None,
                abuse_types=[str(v)[:64] for v in form.getlist("abuse_types")][:20]
                if form.get("types_sent") else None)
        except ValueError:
            raise StrongroomError("severity is 1 (lowest) to 5 (highest)") from None
        edit_incident(who, incident_id, body)
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @app.post("/api/incidents/{incident_id}", tags=["cases"])
    def api_incident_edit(incident_id: RowId, body: IncidentEdit,
                          who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Change title, description, abuse types, severity, status or facility (by name).
        A custody event with your name; the old version stays in the history."""
        edit_incident(who, incident_id, body)
        return api_incident(incident_id, who)

    @app.post("/incidents/{incident_id}/people", include_in_schema=False)
    async def involve_post(request: Request, incident_id: RowId,
                           who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        incident(incident_id)
        written(people.involve, incident_id, _field(form, "pseudonym", 80) or "",
                _field(form, "role", 32) or "", actor=who.actor)
        return RedirectResponse(f"/incidents/{incident_id}#people", status_code=303)

    @app.post("/api/incidents/{incident_id}/people", tags=["cases"])
    def api_involve(incident_id: RowId, body: Involve, who: Annotated[Person, auth(*STAFF)]
                    ) -> dict[str, Any]:
        """Put a person (by pseudonym; made when new) in the incident as victim,
        perpetrator, witness or official."""
        incident(incident_id)
        result: dict[str, Any] = written(people.involve, incident_id, body.pseudonym,
                                         body.role, actor=who.actor)
        return result

    @app.post("/incidents/{incident_id}/people/{person_id}/remove", include_in_schema=False)
    def uninvolve_post(incident_id: RowId, person_id: RowId,
                       who: Annotated[Person, auth(*STAFF)]) -> Response:
        written(people.uninvolve, incident_id, person_id, actor=who.actor)
        return RedirectResponse(f"/incidents/{incident_id}#people", status_code=303)

    def link(who: Person, incident_id: RowId, body: LinkBody) -> dict[str, Any]:
        incident(incident_id)
        result: dict[str, Any] = written(cases.link_clip, incident_id, body.sha256,
                                         start_s=body.start_s, end_s=body.end_s,
                                         note=body.note, actor=who.actor)
        return result

    @app.post("/incidents/{incident_id}/clips", include_in_schema=False)
    async def link_post(request: Request, incident_id: RowId,
                        who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        link(who, incident_id, LinkBody(sha256=(_field(form, "sha256", 64) or "").strip()
                                        .lower().ljust(8, "-"),
                                        note=_field(form, "note", 200) or None))
        return RedirectResponse(f"/incidents/{incident_id}#clips", status_code=303)

    @app.post("/api/incidents/{incident_id}/clips", tags=["cases"])
    def api_link(incident_id: RowId, body: LinkBody, who: Annotated[Person, auth(*STAFF)]
                 ) -> dict[str, Any]:
        """Link one more clip (another camera at the same time, a copy): by default the
        stretch whose DVR clock covers the incident, else the whole clip."""
        return link(who, incident_id, body)

    @app.post("/incidents/{incident_id}/cases", include_in_schema=False)
    async def to_case_post(request: Request, incident_id: RowId,
                           who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        written(cases.add_to_case, _field(form, "case", 200) or "", incident_id,
                actor=who.actor)
        return RedirectResponse(f"/incidents/{incident_id}#cases", status_code=303)

    # -- people ------------------------------------------------------------------------------
    @app.get("/people", response_class=HTMLResponse, include_in_schema=False)
    def people_page(request: Request, who: Annotated[Person, auth(*SEARCHERS)]
                    ) -> HTMLResponse:
        _not_stopped(who)
        with read() as s:
            rows = people.list_people(s)
        return page(request, "people.html", people=rows, roles=PERSON_ROLES,
                    can_change=can_change(who), is_admin=who.role in ADMIN)

    @app.get("/api/people", tags=["people"])
    def api_people(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Everyone by pseudonym and role, with whether an identity is recorded (never the
        identity itself)."""
        _not_stopped(who)
        with read() as s:
            return {"people": people.list_people(s)}

    def add_person(who: Person, body: PersonBody) -> dict[str, Any]:
        if body.identity and who.role not in ADMIN:
            raise Forbidden("only an admin records a real identity")
        result: dict[str, Any] = written(people.add_person, body.pseudonym, body.role,
                                         identity=body.identity, note=body.note,
                                         actor=who.actor)
        return result

    @app.post("/people", include_in_schema=False)
    async def people_post(request: Request, who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        made = add_person(who, PersonBody(
            pseudonym=_field(form, "pseudonym", 80) or "", role=_field(form, "role", 32) or "",
            note=_field(form, "note", MAX), identity=_field(form, "identity", 500) or None))
        return RedirectResponse(f"/people/{made['person']}", status_code=303)

    @app.post("/api/people", tags=["people"])
    def api_people_post(body: PersonBody, who: Annotated[Person, auth(*STAFF)]
                        ) -> dict[str, Any]:
        """A new person by pseudonym; `identity` (admins only) is sealed to the vault key."""
        return add_person(who, body)

    def person(person_id: RowId) -> dict[str, Any]:
        return found(people.person_detail, "person", person_id)

    @app.get("/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, person_id: RowId,
                    who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        _not_stopped(who)
        return page(request, "person.html", person=person(person_id), roles=PERSON_ROLES,
                    can_change=can_change(who), is_admin=who.role in ADMIN,
                    history=versions("person", person_id), identity=None)

    @app.get("/api/people/{person_id}", tags=["people"])
    def api_person(person_id: RowId, who: Annotated[Person, auth(*SEARCHERS)]
                   ) -> dict[str, Any]:
        """One person by pseudonym, their incidents, and their history (never the identity)."""
        _not_stopped(who)
        return {**person(person_id), "history": versions("person", person_id)}

    @app.post("/people/{person_id}", include_in_schema=False)
    async def person_post(request: Request, person_id: RowId,
                          who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        identity = _field(form, "identity", 500) or None
        forget = bool(form.get("forget_identity"))
        if (identity or forget) and who.role not in ADMIN:
            raise Forbidden("only an admin records or removes a real identity")
        person(person_id)
        written(people.edit_person, person_id, pseudonym=_field(form, "pseudonym", 80),
                role=_field(form, "role", 32), note=_field(form, "note", MAX),
                identity=identity, forget_identity=forget, actor=who.actor)
        return RedirectResponse(f"/people/{person_id}", status_code=303)

    @app.post("/people/{person_id}/identity", response_class=HTMLResponse,
              include_in_schema=False)
    def identity_post(request: Request, person_id: RowId,
                      who: Annotated[Person, auth(*ADMIN)]) -> HTMLResponse:
        detail = person(person_id)
        name = vault.open_identity(person_id, actor=who.actor)
        response = page(request, "person.html", person=detail, roles=PERSON_ROLES,
                        can_change=True, is_admin=True, history=versions("person", person_id),
                        identity=name if name is not None else "")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/api/people/{person_id}/identity", tags=["people"])
    def api_identity(person_id: RowId, who: Annotated[Person, auth(*ADMIN)]) -> dict[str, Any]:
        """The sealed real identity, for admins: each call is a custody event with your
        name."""
        person(person_id)
        return {"person": person_id,
                "identity": vault.open_identity(person_id, actor=who.actor)}

    # -- cases -------------------------------------------------------------------------------
    @app.get("/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases_page(request: Request, who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        _not_stopped(who)
        with read() as s:
            rows = cases.list_cases(s)
        return page(request, "cases.html", cases=rows, can_change=can_change(who),
                    purposes=cases.PURPOSES)

    @app.get("/api/cases", tags=["cases"])
    def api_cases(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every case: name, purpose, recipient, status, incident count."""
        _not_stopped(who)
        with read() as s:
            return {"cases": cases.list_cases(s)}

    def new_case(who: Person, body: CaseBody) -> dict[str, Any]:
        result: dict[str, Any] = written(cases.add_case, body.name, purpose=body.purpose,
                                         description=body.description,
                                         recipient=body.recipient, actor=who.actor)
        return result

    @app.post("/cases", include_in_schema=False)
    async def cases_post(request: Request, who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        made = new_case(who, CaseBody(
            name=_field(form, "name", 200) or "", recipient=_field(form, "recipient", 200),
            purpose=_field(form, "purpose", 32) or "prosecution",
            description=_field(form, "description", MAX)))
        return RedirectResponse(f"/cases/{made['case']}", status_code=303)

    @app.post("/api/cases", tags=["cases"])
    def api_cases_post(body: CaseBody, who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Make a case (a recipient's bundle of incidents)."""
        return new_case(who, body)

    def case(case_id: RowId) -> dict[str, Any]:
        return found(cases.case_detail, "case", case_id)

    @app.get("/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
    def case_page(request: Request, case_id: RowId, who: Annotated[Person, auth(*SEARCHERS)]
                  ) -> HTMLResponse:
        _not_stopped(who)
        detail = case(case_id)
        with read() as s:
            every = cases.list_incidents(s)
        inside = {i["incident"] for i in detail["incidents"]}
        return page(request, "case.html", case=detail, history=versions("case", case_id),
                    can_change=can_change(who), statuses=CASE_STATUSES,
                    others=[i for i in every if i["incident"] not in inside],
                    export_folder=str(export_folder(vault)) if can_change(who) else None)

    @app.get("/api/cases/{case_id}", tags=["cases"])
    def api_case(case_id: RowId, who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """One case: recipient, status, notes, its incidents with their DVR times, its export
        requests, and every version it went through. Where a bag was written on the server,
        and why an export failed, only admins and investigators are told."""
        _not_stopped(who)
        detail = case(case_id)
        if not can_change(who):
            for r in detail["export_requests"]:
                r["output"] = None
                if r["error"]:
                    r["error"] = "the export failed; an admin or an investigator can see why"
        return {**detail, "history": versions("case", case_id)}

    def edit_case(who: Person, case_id: RowId, body: CaseEdit) -> None:
        case(case_id)
        written(cases.edit_case, case_id, recipient=body.recipient, status=body.status,
                notes=body.notes, description=body.description, actor=who.actor)

    @app.post("/cases/{case_id}", include_in_schema=False)
    async def case_post(request: Request, case_id: RowId,
                        who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        edit_case(who, case_id, CaseEdit(
            recipient=_field(form, "recipient", 200), status=_field(form, "status", 32),
            notes=_field(form, "notes", MAX), description=_field(form, "description", MAX)))
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    @app.post("/api/cases/{case_id}", tags=["cases"])
    def api_case_edit(case_id: RowId, body: CaseEdit, who: Annotated[Person, auth(*STAFF)]
                      ) -> dict[str, Any]:
        """Change recipient, status, notes or description."""
        edit_case(who, case_id, body)
        return api_case(case_id, who)

    def add_incident(who: Person, case_id: RowId, incident_id: RowId) -> None:
        name = case(case_id)["name"]
        written(cases.add_to_case, name, incident_id, actor=who.actor)

    @app.post("/cases/{case_id}/incidents", include_in_schema=False)
    async def case_incident_post(request: Request, case_id: RowId,
                                 who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        try:
            incident_id = int(_field(form, "incident", 12) or "")
        except ValueError:
            raise StrongroomError("choose an incident") from None
        add_incident(who, case_id, incident_id)
        return RedirectResponse(f"/cases/{case_id}#incidents", status_code=303)

    @app.post("/api/cases/{case_id}/incidents/{incident_id}", tags=["cases"])
    def api_case_incident(case_id: RowId, incident_id: RowId,
                          who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Put an incident in the case."""
        add_incident(who, case_id, incident_id)
        return api_case(case_id, who)

    @app.post("/cases/{case_id}/incidents/{incident_id}/remove", include_in_schema=False)
    def case_incident_remove(case_id: RowId, incident_id: RowId,
                             who: Annotated[Person, auth(*STAFF)]) -> Response:
        written(cases.remove_from_case, case_id, incident_id, actor=who.actor)
        return RedirectResponse(f"/cases/{case_id}#incidents", status_code=303)

    # -- export requests ---------------------------------------------------------------------
    def ask(who: Person, case_id: RowId, body: RequestBody) -> dict[str, Any]:
        _not_stopped(who)
        case(case_id)
        result: dict[str, Any] = written(export_requests.request_export, case_id,
                                         body.reason, actor=who.actor)
        return result

    @app.post("/cases/{case_id}/export-requests", include_in_schema=False)
    async def ask_post(request: Request, case_id: RowId,
                       who: Annotated[Person, auth(*SEARCHERS)]) -> Response:
        form = await request.form()
        ask(who, case_id, RequestBody(reason=_field(form, "reason", MAX)))
        return RedirectResponse(f"/cases/{case_id}#exports", status_code=303)

    @app.post("/api/cases/{case_id}/export-requests", tags=["cases"])
    def api_ask(case_id: RowId, body: RequestBody, who: Annotated[Person, auth(*SEARCHERS)]
                ) -> dict[str, Any]:
        """Ask for the case's export (a BagIt bag with the report and the verifier); an admin
        or investigator other than you approves it."""
        return ask(who, case_id, body)

    def decide(who: Person, request_id: RowId, approve: bool) -> dict[str, Any]:
        result: dict[str, Any] = written(export_requests.decide, request_id,
                                         approve=approve, actor=who.actor)
        if approve:
            name = written(export_requests.start, request_id, actor=who.actor)
            # not under the app's write lock: a bag takes minutes and writes in short
            # transactions of its own
            threading.Thread(target=export_requests.run, name=f"export-{request_id}",
                             daemon=True, args=(vault, request_id, name, export_folder(vault)),
                             kwargs={"actor": who.actor,
                                     "organisation": vault.settings.organisation}).start()
            result["status"] = "running"
        return result

    @app.post("/export-requests/{request_id}/{decision}", include_in_schema=False)
    def decide_post(request_id: RowId, decision: str, who: Annotated[Person, auth(*STAFF)]
                    ) -> Response:
        if decision not in ("approve", "refuse"):
            raise actions.NotFound("no such decision")
        result = decide(who, request_id, decision == "approve")
        from sqlalchemy import select

        from strongroom.catalogue.models import ExportRequest

        with read() as s:
            case_id = s.scalar(select(ExportRequest.case_id).where(
                ExportRequest.id == request_id))
        del result
        return RedirectResponse(f"/cases/{case_id}#exports", status_code=303)

    @app.post("/api/export-requests/{request_id}/approve", tags=["cases"])
    def api_approve(request_id: RowId, who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Approve someone else's request; the export then runs into the server's export
        folder (watch the case's `export_requests` for `done` or `failed`)."""
        return decide(who, request_id, True)

    @app.post("/api/export-requests/{request_id}/refuse", tags=["cases"])
    def api_refuse(request_id: RowId, who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Refuse someone else's request."""
        return decide(who, request_id, False)
