"""Review app pages for publication (issue 16): draft a redacted part of a clip, look at the
draft with its boxes over it and correct them on any frame, have a second person approve it,
publish it signed with its provenance.

The same functions as the command line (`publish.drafts`), so both leave the same record.
Admins and investigators (`STAFF`) draft, correct, approve and publish; lawyers may look. A
draft shows only redacted frames, yet a look at it is a `viewed` event with the person's
name, as a play of any clip is. The published file is written into the server's export folder
(never inside the vault), signed with the organisation's credentials from the settings, and
can be downloaded from its page by staff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from strongroom.errors import StrongroomError
from strongroom.review import actions
from strongroom.review.actions import Person
from strongroom.review.app import SEARCHERS, STAFF, _field, _not_stopped, auth
from strongroom.vault import Vault

RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
#: A corrected spec sent by the page (JSON) or uploaded: at most this many bytes.
MAX_SPEC = 16 * 1024 * 1024


def published_path(vault: Vault, publication_id: int) -> Path:
    from strongroom.review.casework import export_folder

    return export_folder(vault) / "publications" / f"publication-{publication_id}.mp4"


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add the publication pages and their API to `app`."""
    from strongroom.publish import drafts
    from strongroom.publish.render import Options

    vault: Vault = app.state.vault

    def written(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with actions.WRITE_LOCK:
            return fn(vault, *args, **kwargs)

    def one(publication_id: int) -> dict[str, Any]:
        try:
            return drafts.detail(vault, publication_id)
        except StrongroomError:
            raise actions.NotFound(f"no publication {publication_id}") from None

    def offset(text: str | None) -> float | None:
        from strongroom.catalogue.cases import parse_offset

        return parse_offset(text) if text and text.strip() else None

    @app.get("/publications", response_class=HTMLResponse, include_in_schema=False)
    def publications_page(request: Request, who: Annotated[Person, auth(*SEARCHERS)],
                          sha: str = "") -> HTMLResponse:
        _not_stopped(who)
        return page(request, "publications.html", publications=drafts.listing(vault),
                    can_change=who.role in STAFF, sha=sha[:64])

    @app.get("/api/publications", tags=["publication"])
    def api_publications(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every publication: clip, range, status, spec version, who asked and decided."""
        _not_stopped(who)
        return {"publications": drafts.listing(vault)}

    @app.post("/publications", include_in_schema=False)
    async def publications_post(request: Request, who: Annotated[Person, auth(*STAFF)]
                                ) -> Response:
        form = await request.form()
        options = Options(start=offset(_field(form, "start", 20)) or 0.0,
                          end=offset(_field(form, "end", 20)),
                          hide=_field(form, "hide", 10) or "blur",
                          mask_voice=bool(form.get("mask_voice")),
                          keep_audio=not form.get("no_audio")).check()
        made = written(drafts.draft, (_field(form, "sha256", 64) or "").strip(), options,
                       actor=who.actor, note=_field(form, "note", 2000),
                       hide_label=bool(form.get("hide_label")))
        return RedirectResponse(f"/publications/{made['publication']}", status_code=303)

    @app.get("/publications/{publication_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def publication_page(request: Request, publication_id: RowId,
                         who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        _not_stopped(who)
        detail = one(publication_id)
        spec = drafts.spec_of(vault, publication_id)
        out = published_path(vault, publication_id)
        made_by = next((v["made_by"] for v in detail["versions"]
                        if v["version"] == detail["spec_version"]), None)
        mine = drafts.same_name(who.username, detail["requested_by"], made_by)
        return page(request, "publication.html", pub=detail,
                    spec_json=json.dumps(spec, ensure_ascii=False),
                    tracks=_tracks(spec), can_change=who.role in STAFF,
                    can_decide=(who.role in drafts.APPROVER_ROLES
                                and detail["status"] == "drafted" and not mine),
                    published_file=out.name if out.is_file() else None)

    @app.get("/publications/{publication_id}/draft.mp4", include_in_schema=False)
    def draft_video(publication_id: RowId, who: Annotated[Person, auth(*SEARCHERS)]
                    ) -> Response:
        _not_stopped(who)
        row = drafts.draft_of(vault, publication_id)
        data = vault.read_derivative_bytes(row)
        vault.record_seen("viewed", row.original_sha256, actor=who.actor, details={
            "what": "publication draft", "publication": publication_id,
            "derivative": row.sha256})
        return Response(data, media_type="video/mp4",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/publications/{publication_id}/spec", tags=["publication"])
    def api_spec(publication_id: RowId, who: Annotated[Person, auth(*SEARCHERS)],
                 version: int | None = None) -> dict[str, Any]:
        """The redaction spec (tracks of boxes by frame), current or of a `version`."""
        _not_stopped(who)
        one(publication_id)
        return drafts.spec_of(vault, publication_id, version)

    @app.post("/api/publications/{publication_id}/spec", tags=["publication"])
    async def api_revise(request: Request, publication_id: RowId,
                         who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Hand back a corrected spec (the whole JSON): a new version and a new draft; any
        approval of the old one no longer stands."""
        body = await request.body()
        if len(body) > MAX_SPEC:
            raise StrongroomError("the redaction spec is too big")
        result: dict[str, Any] = written(drafts.revise, publication_id,
                                         body.decode("utf-8", "replace"), actor=who.actor)
        return result

    @app.post("/publications/{publication_id}/spec", include_in_schema=False)
    async def upload_spec(request: Request, publication_id: RowId,
                          who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        upload = form.get("spec")
        if upload is None or isinstance(upload, str):
            raise StrongroomError("choose a redaction spec file to upload")
        text = (await upload.read(MAX_SPEC + 1)).decode("utf-8", "replace")
        if len(text) > MAX_SPEC:
            raise StrongroomError("the redaction spec is too big")
        written(drafts.revise, publication_id, text, actor=who.actor)
        return RedirectResponse(f"/publications/{publication_id}", status_code=303)

    async def decide(request: Request, publication_id: int, who: Person, approve: bool
                     ) -> Response:
        """The form names the spec version the page showed: a revision made meanwhile is
        not what this person looked at."""
        seen = _field(await request.form(), "version", 12)
        written(drafts.decide_as, publication_id, approve=approve, username=who.username,
                role=who.role, actor=who.actor,
                version=int(seen) if seen and seen.isdigit() else None)
        return RedirectResponse(f"/publications/{publication_id}", status_code=303)

    @app.post("/publications/{publication_id}/approve", include_in_schema=False)
    async def approve(request: Request, publication_id: RowId,
                      who: Annotated[Person, auth(*STAFF)]) -> Response:
        return await decide(request, publication_id, who, True)

    @app.post("/publications/{publication_id}/refuse", include_in_schema=False)
    async def refuse(request: Request, publication_id: RowId,
                     who: Annotated[Person, auth(*STAFF)]) -> Response:
        return await decide(request, publication_id, who, False)

    @app.post("/publications/{publication_id}/publish", include_in_schema=False)
    async def publish(request: Request, publication_id: RowId,
                      who: Annotated[Person, auth(*STAFF)]) -> Response:
        from strongroom.publish.provenance import Signing

        form = await request.form()
        settings = vault.settings
        if settings.c2pa_cert is None or settings.c2pa_key is None:
            raise StrongroomError("this server has no signing credentials "
                                  "(STRONGROOM_C2PA_CERT, STRONGROOM_C2PA_KEY): nothing can "
                                  "be published")
        out = published_path(vault, publication_id)
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        written(drafts.publish, publication_id, out,
                signing=Signing(settings.c2pa_cert, settings.c2pa_key,
                                settings.c2pa_tsa_url or None),
                organisation=settings.organisation or "the publishing organisation",
                no_faces_ok=bool(form.get("no_faces_ok")), actor=who.actor)
        return RedirectResponse(f"/publications/{publication_id}", status_code=303)

    @app.get("/publications/{publication_id}/published.mp4", include_in_schema=False)
    def published_file(publication_id: RowId, who: Annotated[Person, auth(*STAFF)]
                       ) -> Response:
        from strongroom.publish.check import check_file

        detail = one(publication_id)
        out = published_path(vault, publication_id)
        if detail["status"] != "published" or not out.is_file():
            raise actions.NotFound(f"publication {publication_id} is not published here")
        checked = check_file(out, vault=vault)
        if not checked["ok"]:
            raise StrongroomError(f"the published file of publication {publication_id} no "
                                  "longer matches its record; it is not handed out")
        return FileResponse(out, media_type="video/mp4", filename=out.name)


def _tracks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    fps = float(spec.get("fps") or 25.0)
    out = []
    for t in spec.get("tracks") or []:
        frames = sorted(int(f) for f in t["boxes"])
        out.append({"id": t["id"], "count": len(frames), "from_s": round(frames[0] / fps, 2),
                    "to_s": round(frames[-1] / fps, 2)})
    return out
