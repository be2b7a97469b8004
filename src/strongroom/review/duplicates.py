"""Review app pages: near-duplicate groups (issue 15, point 5).

`/duplicates` lists the groups; `/duplicates/{sha256}` shows one group's members side by side
with their blurred posters (only ever the `safe_poster` route), their size, length, picture
and codec, which copy is the one to cite and why, and lets investigators and admins confirm
the group, choose the best copy or split a member out. Each decision is a row the grouping
respects from then on and an `annotated` custody event with the person's name
(`catalogue/dupes.py`). The groups span the whole archive, so viewing is for `SEARCHERS`
(not reviewers, who see only their clips); deciding is for `STAFF`.

A group is named by any of its members' SHA-256s (links use its key, the smallest): a link
keeps working when a person picks another best copy or a better copy arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from strongroom.catalogue.dupes import MAX_NOTE, Decision, Group, MatchCache, UnknownGroup
from strongroom.review.actions import NotFound, Person
from strongroom.review.app import SEARCHERS, STAFF, _check_sha, _field, _not_stopped, auth
from strongroom.vault import Vault

#: Most members a request may name (a group of copies is a handful, not thousands).
MAX_MEMBERS = 500


class ConfirmBody(BaseModel):
    best: str | None = Field(default=None, max_length=64)
    seen: list[str] | None = Field(default=None, max_length=MAX_MEMBERS)
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class BestBody(BaseModel):
    best: str = Field(max_length=64)
    seen: list[str] | None = Field(default=None, max_length=MAX_MEMBERS)
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class SplitBody(BaseModel):
    members: list[str] = Field(max_length=MAX_MEMBERS)
    seen: list[str] | None = Field(default=None, max_length=MAX_MEMBERS)
    note: str | None = Field(default=None, max_length=MAX_NOTE)


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add this section's routes to `app`; `page(request, template, **context)` renders."""
    vault: Vault = app.state.vault
    cache = getattr(app.state, "dupes_cache", None)  # shared with the incident pages
    if cache is None:
        cache = app.state.dupes_cache = MatchCache()

    def groups() -> list[Group]:
        from strongroom.catalogue.dupes import near_duplicate_groups

        with vault.catalogue.read() as s:
            return near_duplicate_groups(s, cache)

    def one(sha256: str) -> Group:
        from strongroom.catalogue.dupes import group_of

        _check_sha(sha256)
        try:
            return group_of(groups(), sha256)
        except UnknownGroup as exc:
            raise NotFound(str(exc)) from None

    def clips_of(group_list: list[Group]) -> dict[str, Any]:
        """Camera, facility and DVR clock of every member (as the queue shows them), and
        whether its blurred poster and thumbnail exist yet."""
        from strongroom.review.clips import load_clips

        shas = [m.original for g in group_list for m in g.members]
        with vault.catalogue.read() as s:
            return {c.sha256: c for c in load_clips(s, only=shas)}

    def decide(who: Person, sha256: str, what: Decision) -> dict[str, Any]:
        from strongroom.catalogue.dupes import decide as record
        from strongroom.review.actions import WRITE_LOCK
        _check_sha(sha256)
        _not_stopped(who)
        try:
            with WRITE_LOCK:
                return record(vault, what, actor=who.actor, cache=cache)
        except UnknownGroup as exc:
            raise NotFound(str(exc)) from None

    def after(result: dict[str, Any]) -> Response:
        """Back to the group as it now stands (the list, when a split dissolved it)."""
        group = result["group"]
        to = f"/duplicates/{group['key']}" if group else "/duplicates"
        return RedirectResponse(to, status_code=303)

    def seen_in(form: Any) -> tuple[str, ...] | None:
        seen = [str(v)[:64] for v in form.getlist("seen")][:MAX_MEMBERS]
        return tuple(seen) if seen else None

    # -- pages ------------------------------------------------------------------------------
    @app.get("/duplicates", response_class=HTMLResponse, include_in_schema=False)
    def duplicates_page(request: Request,
                        who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        if who.stopped():
            return page(request, "stopped.html", until=who.stopped_until)
        found = groups()
        return page(request, "duplicates.html", groups=found, clips=clips_of(found))

    @app.get("/duplicates/{sha256}", response_class=HTMLResponse, include_in_schema=False)
    def duplicate_page(request: Request, sha256: str,
                       who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        if who.stopped():
            return page(request, "stopped.html", until=who.stopped_until)
        group = one(sha256)
        return page(request, "duplicate.html", group=group, clips=clips_of([group]),
                    can_decide=who.role in STAFF, note_limit=MAX_NOTE)

    @app.post("/duplicates/{sha256}/confirm", include_in_schema=False)
    async def confirm_post(request: Request, sha256: str,
                           who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        return after(decide(who, sha256, Decision(
            group=sha256, decision="confirmed", best=_field(form, "best", 64) or None,
            seen=seen_in(form), note=_field(form, "note", MAX_NOTE))))

    @app.post("/duplicates/{sha256}/best", include_in_schema=False)
    async def best_post(request: Request, sha256: str,
                        who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        return after(decide(who, sha256, Decision(
            group=sha256, decision="best", best=_field(form, "best", 64) or "",
            seen=seen_in(form), note=_field(form, "note", MAX_NOTE))))

    @app.post("/duplicates/{sha256}/split", include_in_schema=False)
    async def split_post(request: Request, sha256: str,
                         who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        members = tuple(str(v)[:64] for v in form.getlist("member"))[:MAX_MEMBERS]
        return after(decide(who, sha256, Decision(
            group=sha256, decision="distinct", members=members, seen=seen_in(form),
            note=_field(form, "note", MAX_NOTE))))

    # -- the API ----------------------------------------------------------------------------
    @app.get("/api/duplicates", tags=["duplicates"])
    def api_duplicates(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every near-duplicate group with its members, best copy (and why), whether a
        person confirmed it, and the clips people split out of it."""
        _not_stopped(who)
        return {"groups": [g.to_json() for g in groups()]}

    @app.get("/api/duplicates/{sha256}", tags=["duplicates"])
    def api_duplicate(sha256: str,
                      who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """The group holding this clip (its key or any member's SHA-256)."""
        _not_stopped(who)
        return one(sha256).to_json()

    @app.post("/api/duplicates/{sha256}/confirm", tags=["duplicates"])
    def api_confirm(sha256: str, body: ConfirmBody,
                    who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Confirm that every member is a copy of one recording (`best`: the copy to cite,
        else the present best). `seen`: the members you were shown; a group that changed
        since is refused. A custody event with your name."""
        return decide(who, sha256, Decision(group=sha256, decision="confirmed",
                                            best=body.best, seen=_seen(body.seen),
                                            note=body.note))

    @app.post("/api/duplicates/{sha256}/best", tags=["duplicates"])
    def api_best(sha256: str, body: BestBody,
                 who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Choose the copy to cite over the automatic choice. A custody event with your
        name."""
        return decide(who, sha256, Decision(group=sha256, decision="best", best=body.best,
                                            seen=_seen(body.seen), note=body.note))

    @app.post("/api/duplicates/{sha256}/split", tags=["duplicates"])
    def api_split(sha256: str, body: SplitBody,
                  who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Say that `members` are not copies of the rest of the group: they leave it and are
        never grouped with those clips again, whatever clips arrive later. At least one
        member stays. A custody event with your name."""
        return decide(who, sha256, Decision(group=sha256, decision="distinct",
                                            members=tuple(body.members),
                                            seen=_seen(body.seen), note=body.note))


def _seen(seen: list[str] | None) -> tuple[str, ...] | None:
    return None if seen is None else tuple(seen)
