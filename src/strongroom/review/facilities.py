"""Review app pages: facilities and their cameras, and the vocabularies (issue 15).

`/facilities` lists the facilities (name, type in the reader's language, region, cameras, how
many clips show each) and the cameras no facility holds yet; investigators and admins add and
edit facilities, map a camera to one and correct a camera label OCR misread. `/admin/
vocabularies` is where an admin adds, relabels, retires or restores abuse and facility types.
Each change is an `annotated` custody event with the person's name, made by the same functions
the command line calls (`catalogue/places.py`, `catalogue/vocabulary.py`); `/api/facilities`
and `/api/vocabularies` do the same for scripts.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from strongroom.catalogue.places import MAX_TEXT
from strongroom.review.actions import WRITE_LOCK, NotFound, Person
from strongroom.vault import Vault

#: The longest vocabulary code or label a form or body may carry (the functions then say
#: precisely what is wrong with a shorter one).
MAX_FIELD = MAX_TEXT + 1


class FacilityBody(BaseModel):
    name: str = Field(max_length=MAX_FIELD)
    type: str | None = Field(default=None, max_length=MAX_FIELD)
    region: str | None = Field(default=None, max_length=MAX_FIELD)


class FacilityEditBody(BaseModel):
    """Only what is given changes; an empty region clears it."""

    name: str | None = Field(default=None, max_length=MAX_FIELD)
    type: str | None = Field(default=None, max_length=MAX_FIELD)
    region: str | None = Field(default=None, max_length=MAX_FIELD)


class MapBody(BaseModel):
    camera: str = Field(max_length=MAX_FIELD)
    facility_id: int = Field(ge=1, le=2**31)


class RenameBody(BaseModel):
    camera: str = Field(max_length=MAX_FIELD)
    new: str = Field(max_length=MAX_FIELD)


class TermBody(BaseModel):
    kind: str = Field(max_length=16)
    code: str = Field(max_length=MAX_FIELD)
    en: str | None = Field(default=None, max_length=MAX_FIELD)
    ru: str | None = Field(default=None, max_length=MAX_FIELD)


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add this section's routes to `app`; `page(request, template, **context)` renders."""
    from strongroom.catalogue import places, vocabulary
    from strongroom.review.app import ADMIN, EVERYONE, SEARCHERS, STAFF, _field, auth

    vault: Vault = app.state.vault

    def overview(who: Person) -> dict[str, Any]:
        return places.list_facilities(vault, who.locale)

    def one(who: Person, facility_id: int) -> dict[str, Any]:
        for fac in overview(who)["facilities"]:
            if fac["id"] == facility_id:
                found: dict[str, Any] = fac
                return found
        raise NotFound("no such facility")

    def offered(who: Person, kind: str) -> list[dict[str, Any]]:
        return vocabulary.listing(vault, kind, who.locale)

    def add(who: Person, body: FacilityBody) -> dict[str, Any]:
        with WRITE_LOCK:
            return places.add_facility(vault, body.name, facility_type=body.type or None,
                                       region=body.region or None, actor=who.actor)

    def edit(who: Person, facility_id: int, body: FacilityEditBody) -> dict[str, Any]:
        one(who, facility_id)
        with WRITE_LOCK:
            return places.edit_facility(vault, facility_id, name=body.name,
                                        facility_type=body.type, region=body.region,
                                        actor=who.actor)

    def assign(who: Person, body: MapBody) -> dict[str, Any]:
        with WRITE_LOCK:
            return places.assign_camera(vault, body.camera, body.facility_id, actor=who.actor)

    def rename(who: Person, body: RenameBody) -> dict[str, Any]:
        with WRITE_LOCK:
            return places.rename_camera(vault, body.camera, body.new, actor=who.actor)

    def form_id(value: str | None) -> int:
        from strongroom.errors import StrongroomError

        try:
            return int(value or "")
        except ValueError:
            raise StrongroomError("choose a facility") from None

    # -- facilities: pages ----------------------------------------------------------------------
    @app.get("/facilities", response_class=HTMLResponse, include_in_schema=False)
    def facilities_page(request: Request,
                        who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        return page(request, "facilities.html", data=overview(who),
                    types=offered(who, "facility"), can_change=who.role in STAFF)

    @app.post("/facilities", include_in_schema=False)
    async def facility_add_post(request: Request,
                                who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        made = add(who, FacilityBody(name=_field(form, "name", MAX_FIELD) or "",
                                     type=_field(form, "type", MAX_FIELD),
                                     region=_field(form, "region", MAX_FIELD)))
        return RedirectResponse(f"/facilities#facility-{made['facility_id']}", status_code=303)

    @app.get("/facilities/{facility_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def facility_page(request: Request, facility_id: int,
                      who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        from strongroom.catalogue.cases import history

        fac = one(who, facility_id)
        return page(request, "facility.html", facility=fac, types=offered(who, "facility"),
                    cameras=overview(who)["cameras"], can_change=who.role in STAFF,
                    versions=history(vault, "facility", facility_id)
                    if _has_history(vault, facility_id) else [])

    @app.post("/facilities/{facility_id}", include_in_schema=False)
    async def facility_edit_post(request: Request, facility_id: int,
                                 who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        edit(who, facility_id, FacilityEditBody(
            name=_field(form, "name", MAX_FIELD), type=_field(form, "type", MAX_FIELD),
            region=_field(form, "region", MAX_FIELD)))
        return RedirectResponse(f"/facilities/{facility_id}", status_code=303)

    @app.post("/facilities/cameras/map", include_in_schema=False)
    async def camera_map_post(request: Request,
                              who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        done = assign(who, MapBody(camera=_field(form, "camera", MAX_FIELD) or "",
                                   facility_id=form_id(_field(form, "facility_id", 12))))
        return RedirectResponse(f"/facilities#facility-{done['facility_id']}", status_code=303)

    @app.post("/facilities/cameras/rename", include_in_schema=False)
    async def camera_rename_post(request: Request,
                                 who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        rename(who, RenameBody(camera=_field(form, "camera", MAX_FIELD) or "",
                               new=_field(form, "new", MAX_FIELD) or ""))
        back = _field(form, "back", 12)
        return RedirectResponse(f"/facilities/{int(back)}" if back and back.isdigit()
                                else "/facilities#cameras", status_code=303)

    # -- facilities: the API ----------------------------------------------------------------------
    @app.get("/api/facilities", tags=["facilities"])
    def api_facilities(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every facility (type as a code and as a label in your language, region, cameras,
        clip counts) and the cameras no facility holds yet."""
        return overview(who)

    @app.post("/api/facilities", tags=["facilities"])
    def api_facility_add(body: FacilityBody,
                         who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Add a facility (a custody event with your name): a new name, a type from the
        facility vocabulary (`/api/vocabularies?kind=facility`), a region."""
        return add(who, body)

    @app.get("/api/facilities/{facility_id}", tags=["facilities"])
    def api_facility(facility_id: int,
                     who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """One facility, with its cameras and clip counts."""
        return one(who, facility_id)

    @app.post("/api/facilities/{facility_id}", tags=["facilities"])
    def api_facility_edit(facility_id: int, body: FacilityEditBody,
                          who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Change a facility's name, type or region (a custody event; each version kept)."""
        return edit(who, facility_id, body)

    @app.post("/api/facilities/cameras/map", tags=["facilities"])
    def api_camera_map(body: MapBody,
                       who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Map a camera (by its label) to a facility (a custody event with your name)."""
        return assign(who, body)

    @app.post("/api/facilities/cameras/rename", tags=["facilities"])
    def api_camera_rename(body: RenameBody,
                          who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Correct a camera label OCR misread (a custody event; what OCR read is kept)."""
        return rename(who, body)

    # -- vocabularies ---------------------------------------------------------------------------
    def change_term(who: Person, how: str, body: TermBody) -> dict[str, Any]:
        with WRITE_LOCK:
            if how == "add":
                return vocabulary.add(vault, body.kind, body.code, en=body.en or "",
                                      ru=body.ru or "", actor=who.actor)
            if how == "relabel":
                return vocabulary.relabel(vault, body.kind, body.code, en=body.en or None,
                                          ru=body.ru or None, actor=who.actor)
            if how == "retire":
                return vocabulary.retire(vault, body.kind, body.code, actor=who.actor)
            return vocabulary.restore(vault, body.kind, body.code, actor=who.actor)

    @app.get("/admin/vocabularies", response_class=HTMLResponse, include_in_schema=False)
    def vocabularies_page(request: Request,
                          who: Annotated[Person, auth(*ADMIN)]) -> HTMLResponse:
        return page(request, "vocabularies.html", kinds=vocabulary.KINDS, terms={
            kind: vocabulary.listing(vault, kind, who.locale, retired=True)
            for kind in vocabulary.KINDS})

    @app.post("/admin/vocabularies/{how}", include_in_schema=False)
    async def vocabularies_post(request: Request, how: str,
                                who: Annotated[Person, auth(*ADMIN)]) -> Response:
        if how not in ("add", "relabel", "retire", "restore"):
            raise NotFound("no such change")
        form = await request.form()
        done = change_term(who, how, TermBody(
            kind=_field(form, "kind", 16) or "", code=_field(form, "code", MAX_FIELD) or "",
            en=_field(form, "en", MAX_FIELD), ru=_field(form, "ru", MAX_FIELD)))
        return RedirectResponse(f"/admin/vocabularies#{done['kind']}", status_code=303)

    @app.get("/api/vocabularies", tags=["vocabularies"])
    def api_vocabularies(who: Annotated[Person, auth(*EVERYONE)], kind: str | None = None,
                         retired: bool = False) -> dict[str, Any]:
        """The abuse types and facility types offered for new records (with `retired`, all):
        code, English and Russian label, and the label in your language."""
        return {"terms": vocabulary.listing(vault, kind or None, who.locale,
                                            retired=retired)}

    @app.post("/api/vocabularies/{how}", tags=["vocabularies"])
    def api_vocabularies_post(how: str, body: TermBody,
                              who: Annotated[Person, auth(*ADMIN)]) -> dict[str, Any]:
        """`add` a term (kind, code, en, ru), `relabel` one (en and/or ru), `retire` one (no
        longer offered; records keep it) or `restore` it. Each a custody event."""
        if how not in ("add", "relabel", "retire", "restore"):
            raise NotFound("no such change (add, relabel, retire or restore)")
        return change_term(who, how, body)


def _has_history(vault: Vault, facility_id: int) -> bool:
    """Whether the facility has versions kept (one made by a camera's mapping before
    facilities were records has none)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Revision

    with vault.catalogue.read() as s:
        return s.scalar(select(Revision.id).where(Revision.kind == "facility",
                                                  Revision.row_id == facility_id)
                        .limit(1)) is not None
