"""The review web app: `create_app(settings, vault)` builds it; `strongroom serve` runs it.

Server-rendered pages (Jinja2, a little htmx, no third-party request of any kind) and a JSON
API beside them (`/api/...`, described at `/api/openapi.json`) that does everything the pages
do. Deny by default: every route depends on `auth(...)`, which answers 401 without a live
session and 403 for a role not named, except the few in `PUBLIC` (a test enumerates them).

Nothing unblurred leaves before a reveal: the queue and the clip page only ever point at the
`safe_*` derivatives (blurred, greyscale, silent, made by the `review` pipeline step); the clear
video and poster are refused unless this session revealed this clip, and the reveal (and the
first play after it) is a custody event with the person's name.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from strongroom.catalogue.models import (
    CONTENT_LABELS,
    REVIEW_STATUSES,
    ROLES,
    Acquisition,
    Derivative,
)
from strongroom.errors import StrongroomError
from strongroom.review import actions, clips, i18n, security
from strongroom.review.actions import Forbidden, LoginFailed, NotFound, Person
from strongroom.settings import Settings
from strongroom.vault import Vault

log = logging.getLogger("strongroom.review")
HERE = FilePath(__file__).parent
COOKIE = "sr_session"
LOGIN_CSRF_COOKIE = "sr_login"
#: Over TLS the cookies carry the `__Host-` prefix: the browser then takes them only from
#: this exact origin over https, with Path=/, so a sibling domain or a plain-http page cannot
#: plant a session or a sign-in token ("cookie tossing").
HOST_PREFIX = "__Host-"
#: Routes anyone may reach: the login form and its post, and the static files.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/api/login")}
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Who may do what (deny by default: a route names its roles).
EVERYONE = ROLES
EDITORS = ("admin", "investigator", "reviewer")
STAFF = ("admin", "investigator")
ADMIN = ("admin",)
#: Search reads every clip's notes and incidents: not for reviewers, who see only their clips.
SEARCHERS = ("admin", "investigator", "lawyer")
MAX_FORM = 64 * 1024
#: Modules that add pages to the app, each through `register(app, page)`: people and cases,
#: timeline pictures, duplicate groups, facilities.
SECTIONS = ("casework", "timelines", "duplicates", "facilities", "publications", "intake")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class Authenticated:
    """A dependency that answers 401 without a live session, 403 for a role not in `roles`,
    and 403 for an unsafe method from a cookie session without the session's CSRF token."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> Person:
        vault: Vault = request.app.state.vault
        bearer = _bearer(request)
        who: Person | None = getattr(request.state, "gated", None)
        if who is None:
            from starlette.concurrency import run_in_threadpool

            who = await run_in_threadpool(actions.person, vault,
                                          bearer or _read_cookie(request, COOKIE))
        if who is None:
            raise HTTPException(401, "sign in first (or your session has ended)")
        i18n.current_locale.set(who.locale)
        request.state.who = who
        if request.method not in SAFE_METHODS and not bearer:
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                sent = str((await request.form()).get("csrf") or "")
            if not security.same(sent, who.csrf):
                raise HTTPException(403, "this form is out of date (no valid CSRF token): "
                                         "reload the page and try again")
        if who.role not in self.roles:
            raise HTTPException(403, "your role does not allow this")
        return who


def auth(*roles: str) -> Any:
    return Depends(Authenticated(roles or EVERYONE))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() or None if header.lower().startswith("bearer ") else None


#: A queue filter in the query string.
F = Annotated[str | None, Query(max_length=200)]


# -- API bodies -------------------------------------------------------------------------------
class LoginBody(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=security.MAX_PASSWORD)
    totp: str = Field(max_length=12)


class ReviewBody(BaseModel):
    status: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=actions.MAX_NOTE)
    labels: list[str] | None = Field(default=None, max_length=len(CONTENT_LABELS))
    assign_to: str | None = Field(default=None, max_length=actions.MAX_NAME)
    unassign: bool = False


class IncidentBody(BaseModel):
    start_s: float = Field(ge=0, le=48 * 3600)
    end_s: float = Field(ge=0, le=48 * 3600)
    abuse_types: list[str] = Field(default_factory=list, max_length=20)
    severity: int | None = Field(default=None, ge=1, le=5)
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=actions.MAX_NOTE)


class ExposureBody(BaseModel):
    seconds: float = Field(ge=0, le=3600)


class PrefsBody(BaseModel):
    blur: int | None = Field(default=None, ge=0, le=3)
    greyscale: bool | None = None
    autoplay: bool | None = None
    daily_limit_minutes: float | None = Field(default=None, ge=0.05, le=1440)
    locale: str | None = Field(default=None, max_length=8)


class UserBody(BaseModel):
    username: str = Field(max_length=actions.MAX_NAME)
    role: str = Field(max_length=32)
    password: str = Field(max_length=security.MAX_PASSWORD)
    locale: str = Field(default="en", max_length=8)


class DownloadBody(BaseModel):
    reason: str = Field(max_length=actions.MAX_REASON)


def create_app(settings: Settings, vault: Vault, *, heartbeat_seconds: float = 10.0,
               secure_cookies: bool | None = None) -> FastAPI:
    """The app for one open (unsealed) vault. `secure_cookies`: None follows the request's
    scheme (Secure over https)."""
    vault.require_keys()
    app = FastAPI(title="Strongroom review", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None,
                  description="Everything the review pages do, for scripts. Sign in with "
                              "POST /api/login, then send `Authorization: Bearer <token>`.")
    app.state.vault, app.state.settings = vault, settings
    app.state.secure_cookies = secure_cookies
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(i18n.page_gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    templates = Jinja2Templates(env=env)
    templates.env.globals.update(STATUSES=REVIEW_STATUSES, LABELS=CONTENT_LABELS,
                                 ROLES=ROLES, heartbeat=heartbeat_seconds)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        who: Person | None = getattr(request.state, "who", None)
        locale = i18n.current_locale.get()
        response: HTMLResponse = templates.TemplateResponse(request, name, {
            "who": who, "csrf": who.csrf if who else "", "locale": locale,
            "abuse_labels": Labels(lambda: abuse_labels(vault, locale)) if who else {},
            **context}, status_code=code)
        return response

    answer = _answerer(page)
    _install_handlers(app, answer)
    _gate(app, answer)
    _headers(app)  # outermost: every answer, the gate's too, carries the headers

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(who: Annotated[Person, auth()]) -> dict[str, Any]:
        """The API's OpenAPI description (for signed-in scripts; no docs UI, which would load
        scripts from elsewhere)."""
        return app.openapi()

    # -- signing in and out -------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        token = security.new_token()
        response = page(request, "login.html", login_csrf=token)
        _cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_post(request: Request,
                   username: Annotated[str, Form(max_length=200)],
                   password: Annotated[str, Form(max_length=security.MAX_PASSWORD)],
                   totp: Annotated[str, Form(max_length=12)],
                   csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
        if not security.same(csrf, _read_cookie(request, LOGIN_CSRF_COOKIE)):
            return page(request, "login.html", 403, login_csrf=csrf,
                        error=i18n._("This form is out of date. Please try again."))
        try:
            token = actions.login(vault, username, password, totp)
        except LoginFailed as exc:
            return page(request, "login.html", 401, login_csrf=csrf, error=str(exc))
        response = RedirectResponse("/", status_code=303)
        _cookie(response, request, COOKIE, token)
        _forget(response, request, LOGIN_CSRF_COOKIE)
        return response

    @app.post("/api/login", tags=["session"])
    def api_login(body: LoginBody) -> dict[str, str]:
        """A session token for `Authorization: Bearer`; the same rules as the login page."""
        try:
            return {"token": actions.login(vault, body.username, body.password, body.totp)}
        except LoginFailed as exc:
            raise HTTPException(401, str(exc)) from None

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, who: Annotated[Person, auth()]) -> Response:
        actions.logout(vault, who)
        response = RedirectResponse("/login", status_code=303)
        _forget(response, request, COOKIE)
        return response

    @app.post("/logout-everywhere", include_in_schema=False)
    def logout_everywhere(request: Request, who: Annotated[Person, auth()]) -> Response:
        actions.logout(vault, who, everywhere=True)
        response = RedirectResponse("/login", status_code=303)
        _forget(response, request, COOKIE)
        return response

    @app.post("/api/logout", tags=["session"])
    def api_logout(who: Annotated[Person, auth()], everywhere: bool = False) -> dict[str, int]:
        """End this session, or every session of this user (`everywhere`)."""
        return {"ended": actions.logout(vault, who, everywhere=everywhere)}

    # -- the queue ----------------------------------------------------------------------------
    def visible(who: Person, filters: clips.Filters) -> tuple[list[clips.Clip],
                                                                list[clips.Clip]]:
        with vault.catalogue.read() as s:
            every = clips.load_clips(s, assigned_to=who.id if who.role == "reviewer" else None)
        return every, [c for c in every if filters.match(c)]

    def _filters(facility: str | None, camera: str | None, day: str | None,
                 status: str | None) -> clips.Filters:
        when = None
        if day:
            try:
                when = date.fromisoformat(day)
            except ValueError:
                raise StrongroomError("the DVR date is YYYY-MM-DD") from None
        if status and status not in REVIEW_STATUSES:
            raise StrongroomError(f"unknown status {status!r}")
        return clips.Filters(facility or None, camera or None, when, status or None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, who: Annotated[Person, auth()], facility: F = None,
                   camera: F = None, day: F = None, status: F = None) -> HTMLResponse:
        if who.stopped():
            return page(request, "stopped.html", until=who.stopped_until)
        filters = _filters(facility, camera, day, status)
        every, shown = visible(who, filters)
        return page(request, "queue.html", clips=shown, total=len(every),
                    facets=clips.facets(every), filters=filters)

    @app.get("/api/clips", tags=["clips"])
    def api_clips(who: Annotated[Person, auth()], facility: F = None, camera: F = None,
                  day: F = None, status: F = None) -> dict[str, Any]:
        """The queue: every clip this person may see (a reviewer: those assigned to them),
        in DVR-clock order, filtered."""
        _not_stopped(who)
        _every, shown = visible(who, _filters(facility, camera, day, status))
        return {"clips": [c.to_json() for c in shown]}

    # -- search -----------------------------------------------------------------------------------
    def find(q: str, facility: str | None, camera: str | None, day_from: str | None,
             day_to: str | None, status: str | None, abuse_type: str | None,
             case: str | None) -> Any:
        from strongroom.catalogue.search import Filters, parse_clock, search

        filters = Filters(
            facility=facility or None, camera=camera or None, status=status or None,
            abuse_type=abuse_type or None, case=case or None,
            date_from=parse_clock(day_from) if day_from else None,
            date_to=parse_clock(day_to, end=True) if day_to else None)
        with vault.catalogue.read() as s:
            return search(s, q, filters)

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, who: Annotated[Person, auth(*SEARCHERS)],
                    q: F = None, facility: F = None, camera: F = None, day_from: F = None,
                    day_to: F = None, status: F = None, abuse_type: F = None,
                    case: F = None) -> HTMLResponse:
        _not_stopped(who)
        results = find(q, facility, camera, day_from, day_to, status, abuse_type, case) \
            if q and q.strip() else None
        with vault.catalogue.read() as s:
            every = clips.load_clips(s)
        return page(request, "search.html", q=q or "", results=results,
                    facets=clips.facets(every), abuse_types=abuse_codes(vault), args={
                        "facility": facility, "camera": camera, "day_from": day_from,
                        "day_to": day_to, "status": status, "abuse_type": abuse_type})

    @app.get("/api/search", tags=["search"])
    def api_search(who: Annotated[Person, auth(*SEARCHERS)],
                   q: Annotated[str, Query(min_length=1, max_length=500)], facility: F = None,
                   camera: F = None, day_from: F = None, day_to: F = None, status: F = None,
                   abuse_type: F = None, case: F = None) -> dict[str, Any]:
        """Search incidents, cases, notes, cameras, transcripts, pseudonyms and facilities;
        Russian and English by the word's meaning, not its ending. Dates are the DVR clock."""
        _not_stopped(who)
        result: dict[str, Any] = find(q, facility, camera, day_from, day_to, status,
                                      abuse_type, case).to_json()
        return result

    # -- one clip ------------------------------------------------------------------------------
    def one(who: Person, sha256: str) -> tuple[clips.Clip, list[dict[str, Any]],
                                               tuple[str | None, str | None]]:
        _check_sha(sha256)
        review = actions.may_see(vault, who, sha256)
        with vault.catalogue.read() as s:
            every = clips.load_clips(s, assigned_to=who.id if who.role == "reviewer" else None)
            found = [c for c in every if c.sha256 == sha256]
            events = clips.history(s, sha256, review.id if review else None)
            from strongroom.catalogue.cases import clip_incidents

            marked = clip_incidents(s, sha256)
        if not found:
            raise NotFound("no such clip")
        found[0].incidents = marked
        return found[0], events, clips.neighbours(every, sha256)

    @app.get("/clips/{sha256}", response_class=HTMLResponse, include_in_schema=False)
    def clip_page(request: Request, sha256: str, who: Annotated[Person, auth()]) -> HTMLResponse:
        _not_stopped(who)
        clip, events, (prev, nxt) = one(who, sha256)
        revealed = actions.grant(vault, who, sha256) is not None
        return page(request, "clip.html", clip=clip, events=events, prev=prev, next=nxt,
                    abuse_types=abuse_codes(vault),
                    revealed=revealed, needs_break=actions.needs_break(vault, who),
                    can_edit=who.role in EDITORS, can_assign=who.role in STAFF,
                    users=[u["username"] for u in actions.list_users(vault)
                           if not u["disabled"]] if who.role in STAFF else [])

    @app.get("/api/clips/{sha256}", tags=["clips"])
    def api_clip(sha256: str, who: Annotated[Person, auth()]) -> dict[str, Any]:
        """One clip: what the queue says, and its custody history."""
        _not_stopped(who)
        clip, events, _n = one(who, sha256)
        return {**clip.to_json(), "history": events, "incidents": clip.incidents,
                "revealed": actions.grant(vault, who, sha256) is not None}

    def change(who: Person, sha256: str, body: ReviewBody) -> None:
        _check_sha(sha256)
        _not_stopped(who)
        actions.update_review(vault, who, sha256, status=body.status, note=body.note,
                              labels=body.labels, assign_to=body.assign_to or None,
                              unassign=body.unassign)

    @app.post("/clips/{sha256}/review", response_class=HTMLResponse, include_in_schema=False)
    async def review_post(request: Request, sha256: str,
                          who: Annotated[Person, auth(*EDITORS)]) -> Response:
        form = await request.form()
        body = ReviewBody(
            status=_field(form, "status", 40), note=_field(form, "note", actions.MAX_NOTE),
            labels=[str(v)[:40] for v in form.getlist("labels")][:len(CONTENT_LABELS)]
            if form.get("labels_sent") else None,
            assign_to=_field(form, "assign_to", actions.MAX_NAME) or None,
            unassign=bool(form.get("unassign")))
        change(who, sha256, body)
        if request.headers.get("hx-request"):
            clip, events, _n = one(who, sha256)
            return page(request, "_review.html", clip=clip, events=events, saved=True,
                        can_edit=True, can_assign=who.role in STAFF,
                        users=[u["username"] for u in actions.list_users(vault)
                               if not u["disabled"]] if who.role in STAFF else [])
        return RedirectResponse(f"/clips/{sha256}#review", status_code=303)

    @app.post("/api/clips/{sha256}/review", tags=["clips"])
    def api_review(sha256: str, body: ReviewBody,
                   who: Annotated[Person, auth(*EDITORS)]) -> dict[str, Any]:
        """Set status, note, content labels; investigators and admins also (un)assign.
        Each change is a custody event with your name."""
        change(who, sha256, body)
        return api_clip(sha256, who)

    def mark(who: Person, sha256: str, body: IncidentBody) -> dict[str, Any]:
        from strongroom.catalogue.cases import NewIncident, add_incident

        _check_sha(sha256)
        _not_stopped(who)
        actions.may_see(vault, who, sha256)
        with actions.WRITE_LOCK:
            return add_incident(vault, NewIncident(
                sha256=sha256, start_s=body.start_s, end_s=body.end_s, title=body.title,
                description=body.description, abuse_types=tuple(
                    t[:64] for t in body.abuse_types), severity=body.severity), actor=who.actor)

    @app.post("/clips/{sha256}/incidents", include_in_schema=False)
    async def incident_post(request: Request, sha256: str,
                            who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        try:
            start, end = float(_field(form, "start_s", 20) or ""), \
                float(_field(form, "end_s", 20) or "")
            severity = _field(form, "severity", 2)
            body = IncidentBody(start_s=start, end_s=end,
                                abuse_types=[str(v)[:64] for v in form.getlist("abuse_types")],
                                severity=int(severity) if severity else None,
                                description=_field(form, "description", actions.MAX_NOTE))
        except ValueError:
            raise StrongroomError("mark the start and the end first (keys I and O while "
                                  "the clip plays)") from None
        mark(who, sha256, body)
        return RedirectResponse(f"/clips/{sha256}#incidents", status_code=303)

    @app.post("/api/clips/{sha256}/incidents", tags=["clips"])
    def api_incident(sha256: str, body: IncidentBody,
                     who: Annotated[Person, auth(*STAFF)]) -> dict[str, Any]:
        """Mark an incident on this clip (offsets in the clip; its DVR time comes from the
        segments). A custody event with your name and a digest of the whole record."""
        return mark(who, sha256, body)

    @app.post("/clips/{sha256}/reveal", include_in_schema=False)
    def reveal_post(sha256: str, who: Annotated[Person, auth()]) -> Response:
        _check_sha(sha256)
        _not_stopped(who)
        actions.reveal(vault, who, sha256)
        return RedirectResponse(f"/clips/{sha256}#player", status_code=303)

    @app.post("/api/clips/{sha256}/reveal", tags=["clips"])
    def api_reveal(sha256: str, who: Annotated[Person, auth()]) -> dict[str, Any]:
        """Reveal the clip to this session (recorded in the custody log with your name): the
        clear video and poster are served until you hide it or for two hours."""
        _check_sha(sha256)
        _not_stopped(who)
        exposure = actions.reveal(vault, who, sha256)
        return {"revealed": True, "exposure": exposure,
                "video": f"/clips/{sha256}/clear.mp4"}

    @app.post("/clips/{sha256}/hide", include_in_schema=False)
    def hide_post(sha256: str, who: Annotated[Person, auth()]) -> Response:
        _check_sha(sha256)
        actions.may_see(vault, who, sha256)
        actions.hide(vault, who, sha256)
        return RedirectResponse(f"/clips/{sha256}#player", status_code=303)

    @app.post("/api/clips/{sha256}/hide", tags=["clips"])
    def api_hide(sha256: str, who: Annotated[Person, auth()]) -> dict[str, bool]:
        """Blur the clip again for this session."""
        _check_sha(sha256)
        actions.may_see(vault, who, sha256)
        actions.hide(vault, who, sha256)
        return {"revealed": False}

    @app.post("/api/clips/{sha256}/exposure", tags=["wellbeing"])
    def api_exposure(sha256: str, body: ExposureBody,
                     who: Annotated[Person, auth()]) -> dict[str, Any]:
        """The page's heartbeat while revealed video is on screen: adds the seconds (at most
        30 per call, only under a live reveal); says whether today's limit is reached."""
        _check_sha(sha256)
        actions.may_see(vault, who, sha256)
        today = actions.add_exposure(vault, who, sha256, body.seconds)
        limit = float(who.prefs.get("daily_limit_minutes") or 0)
        return {"today_seconds": round(today, 1), "limit_minutes": limit,
                "needs_break": limit > 0 and today >= limit * 60}

    # -- media: safe always, clear only under a reveal -----------------------------------------
    def media_row(who: Person, sha256: str, kind: str) -> Derivative:
        _check_sha(sha256)
        actions.may_see(vault, who, sha256)
        with vault.catalogue.read() as s:
            row = clips.derivative(s, sha256, kind)
            if row is not None:
                s.expunge(row)
        if row is None:
            raise NotFound(f"this clip has no {kind.replace('_', ' ')} yet (run "
                           "`strongroom process`)")
        return row

    @app.get("/clips/{sha256}/safe.mp4", tags=["media"])
    def safe_video(request: Request, sha256: str, who: Annotated[Person, auth()]) -> Response:
        """The blurred, greyscale, silent preview (HTTP Range for seeking)."""
        _not_stopped(who)
        return _ranged(request, vault, media_row(who, sha256, clips.SAFE_KINDS["video"]))

    @app.get("/clips/{sha256}/poster.jpg", tags=["media"])
    def safe_poster(sha256: str, who: Annotated[Person, auth()]) -> Response:
        """The blurred, greyscale poster."""
        return _whole(vault, media_row(who, sha256, clips.SAFE_KINDS["poster"]))

    @app.get("/clips/{sha256}/thumb.jpg", tags=["media"])
    def safe_thumb(sha256: str, who: Annotated[Person, auth()]) -> Response:
        """The blurred, greyscale thumbnail for lists."""
        return _whole(vault, media_row(who, sha256, clips.SAFE_KINDS["thumb"]))

    def revealed_row(who: Person, sha256: str, kind: str) -> tuple[Derivative, Any]:
        _not_stopped(who)
        row = media_row(who, sha256, kind)
        grant = actions.grant(vault, who, sha256)
        if grant is None:
            raise Forbidden("reveal the clip first (revealing is recorded with your name)")
        return row, grant

    @app.get("/clips/{sha256}/clear.mp4", tags=["media"])
    def clear_video(request: Request, sha256: str, who: Annotated[Person, auth()]) -> Response:
        """The unblurred video with sound, only after this session revealed the clip; the
        first bytes served under a reveal record `viewed` with your name."""
        row, grant = revealed_row(who, sha256, clips.CLEAR_KINDS["video"])
        response = _ranged(request, vault, row)
        actions.note_played(vault, who, sha256, grant)
        return response

    @app.get("/clips/{sha256}/clear-poster.jpg", tags=["media"])
    def clear_poster(sha256: str, who: Annotated[Person, auth()]) -> Response:
        """The unblurred poster, only after this session revealed the clip."""
        row, _grant = revealed_row(who, sha256, clips.CLEAR_KINDS["poster"])
        return _whole(vault, row)

    def download(who: Person, sha256: str, reason: str | None) -> Response:
        _check_sha(sha256)
        _not_stopped(who)
        actions.may_see(vault, who, sha256)
        why = actions.check_reason(reason)
        return _download_original(vault, who, sha256, why)

    @app.post("/clips/{sha256}/download", include_in_schema=False)
    async def download_post(request: Request, sha256: str,
                            who: Annotated[Person, auth(*STAFF)]) -> Response:
        form = await request.form()
        return download(who, sha256, _field(form, "reason", actions.MAX_REASON))

    @app.post("/api/clips/{sha256}/download", tags=["media"])
    def api_download(sha256: str, body: DownloadBody,
                     who: Annotated[Person, auth(*STAFF)]) -> Response:
        """The original, bit-exact; your reason goes in the custody log with your name."""
        return download(who, sha256, body.reason)

    # -- me --------------------------------------------------------------------------------------
    def me_json(who: Person) -> dict[str, Any]:
        return {"username": who.username, "role": who.role, "locale": who.locale,
                "prefs": who.prefs,
                "exposure_today_seconds": round(actions.exposure_today(vault, who.id), 1),
                "exposure_week_seconds": round(actions.exposure_week(vault, who.id), 1),
                "stopped_until": who.stopped_until.isoformat()
                if who.stopped() and who.stopped_until else None}

    @app.get("/me", response_class=HTMLResponse, include_in_schema=False)
    def me_page(request: Request, who: Annotated[Person, auth()]) -> HTMLResponse:
        return page(request, "me.html", me=me_json(who))

    @app.post("/me", include_in_schema=False)
    async def me_post(request: Request, who: Annotated[Person, auth()]) -> Response:
        form = await request.form()
        limit = _field(form, "daily_limit_minutes", 10)
        blur = _field(form, "blur", 2)
        try:
            body = PrefsBody(blur=int(blur) if blur else None,
                             greyscale=bool(form.get("greyscale")),
                             autoplay=bool(form.get("autoplay")),
                             daily_limit_minutes=float(limit) if limit else None,
                             locale=_field(form, "locale", 8) or None)
        except ValueError:
            raise StrongroomError("blur is 0–3 and the daily limit a number of minutes") \
                from None
        actions.set_prefs(vault, who, **body.model_dump())
        return RedirectResponse("/me", status_code=303)

    @app.get("/api/me", tags=["me"])
    def api_me(who: Annotated[Person, auth()]) -> dict[str, Any]:
        """Your settings and today's and this week's exposure."""
        return me_json(who)

    @app.post("/api/me", tags=["me"])
    def api_me_post(body: PrefsBody, who: Annotated[Person, auth()]) -> dict[str, Any]:
        """Change blur strength, greyscale, autoplay, the daily limit or the language."""
        return me_json(actions.set_prefs(vault, who, **body.model_dump()))

    @app.post("/me/stop", include_in_schema=False)
    def stop_post(who: Annotated[Person, auth()]) -> Response:
        actions.stop_for_today(vault, who)
        return RedirectResponse("/", status_code=303)

    @app.post("/api/me/stop", tags=["wellbeing"])
    def api_stop(who: Annotated[Person, auth()]) -> dict[str, str]:
        """Stop for today: the queue and clips stay hidden until tomorrow."""
        return {"stopped_until": actions.stop_for_today(vault, who).isoformat()}

    # -- admin -------------------------------------------------------------------------------------
    @app.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request, who: Annotated[Person, auth(*ADMIN)]) -> HTMLResponse:
        return page(request, "users.html", users=actions.list_users(vault))

    def add(body: UserBody) -> dict[str, str]:
        secret = actions.add_user(vault, body.username, body.role, body.password,
                                  locale=body.locale)
        return {"username": body.username.strip(), "totp_secret": secret,
                "totp_uri": security.totp_uri(secret, body.username.strip())}

    @app.post("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    async def users_post(request: Request, who: Annotated[Person, auth(*ADMIN)]) -> Response:
        form = await request.form()
        made = add(UserBody(username=_field(form, "username", actions.MAX_NAME) or "",
                            role=_field(form, "role", 32) or "",
                            password=_field(form, "password",
                                            security.MAX_PASSWORD) or "",
                            locale=_field(form, "locale", 8) or "en"))
        return page(request, "users.html", users=actions.list_users(vault), made=made)

    def account(who: Person, user_id: int, change: str) -> None:
        if change == "disable":
            if user_id == who.id:
                raise StrongroomError("you cannot disable your own account")
            actions.set_disabled(vault, user_id, True)
        elif change == "enable":
            actions.set_disabled(vault, user_id, False)
        elif change == "unlock":
            actions.unlock(vault, user_id)
        else:
            raise NotFound("no such change")

    @app.post("/admin/users/{user_id}/{change}", include_in_schema=False)
    def user_change(user_id: int, change: str,
                    who: Annotated[Person, auth(*ADMIN)]) -> Response:
        account(who, user_id, change)
        return RedirectResponse("/admin/users", status_code=303)

    @app.post("/api/users/{user_id}/{change}", tags=["admin"])
    def api_user_change(user_id: int, change: Annotated[str, Path(
                            pattern="^(disable|enable|unlock)$")],
                        who: Annotated[Person, auth(*ADMIN)]) -> dict[str, Any]:
        """Disable an account (its sessions end now), enable it again, or end its lockout."""
        account(who, user_id, change)
        return {"users": actions.list_users(vault)}

    @app.get("/api/users", tags=["admin"])
    def api_users(who: Annotated[Person, auth(*ADMIN)]) -> dict[str, Any]:
        """Every account, its role and state."""
        return {"users": actions.list_users(vault)}

    @app.post("/api/users", tags=["admin"])
    def api_users_post(body: UserBody,
                       who: Annotated[Person, auth(*ADMIN)]) -> dict[str, str]:
        """Make an account; the answer holds its TOTP secret, shown only this once."""
        return add(body)

    def acquisitions() -> list[dict[str, Any]]:
        from sqlalchemy import select

        with vault.catalogue.read() as s:
            return [{"id": a.id, "description": a.description,
                     "received_by": a.received_by,
                     "received_at": a.received_at, "medium": a.medium,
                     "created_at": a.created_at.isoformat() if a.created_at else None}
                    for a in s.scalars(select(Acquisition).order_by(Acquisition.id))]

    @app.get("/admin/acquisitions", response_class=HTMLResponse, include_in_schema=False)
    def acquisitions_page(request: Request,
                          who: Annotated[Person, auth(*ADMIN)]) -> HTMLResponse:
        return page(request, "acquisitions.html", acquisitions=acquisitions())

    @app.get("/api/acquisitions", tags=["admin"])
    def api_acquisitions(who: Annotated[Person, auth(*ADMIN)]) -> dict[str, Any]:
        """How the material arrived: these records can identify the source (admins only)."""
        return {"acquisitions": acquisitions()}

    # -- case work (issue 15): each module adds its own pages and API routes ----------------
    import importlib

    for name in SECTIONS:
        importlib.import_module(f"strongroom.review.{name}").register(app, page)

    return app


# -- helpers ---------------------------------------------------------------------------------------
class Labels:
    """A vocabulary's code → label, read on the first `get` only: most pages show none, and
    a page that does reads it once."""

    def __init__(self, load: Callable[[], dict[str, str]]) -> None:
        self._load = load
        self._labels: dict[str, str] | None = None

    def get(self, code: str, default: str | None = None) -> str | None:
        if self._labels is None:
            self._labels = self._load()
        return self._labels.get(code, default)


def abuse_labels(vault: Vault, locale: str) -> dict[str, str]:
    """Every abuse type's label in `locale` (retired ones too: old incidents show theirs)."""
    from strongroom.catalogue.vocabulary import labels

    with vault.catalogue.read() as s:
        return labels(s, "abuse", locale)


def abuse_codes(vault: Vault) -> list[str]:
    """The abuse types a form offers: the vault's vocabulary, retired terms left out."""
    from strongroom.catalogue.vocabulary import terms

    with vault.catalogue.read() as s:
        return [t.code for t in terms(s, "abuse")]


def _field(form: Any, name: str, limit: int) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    value = str(value)
    if len(value) > limit:
        raise StrongroomError(f"the field {name!r} is too long (at most {limit} characters)")
    return value


def _check_sha(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("no such clip")


def _not_stopped(who: Person) -> None:
    if who.stopped():
        raise Forbidden("you stopped for today; the queue is back tomorrow")


def _secure(request: Request) -> bool:
    chosen: bool | None = request.app.state.secure_cookies
    return request.url.scheme == "https" if chosen is None else chosen


def _cookie_name(request: Request, base: str) -> str:
    return HOST_PREFIX + base if _secure(request) else base


def _read_cookie(request: Request, base: str) -> str | None:
    return request.cookies.get(_cookie_name(request, base))


def _cookie(response: Response, request: Request, base: str, value: str,
            max_age: int | None = None) -> None:
    response.set_cookie(_cookie_name(request, base), value, httponly=True, samesite="strict",
                        path="/", secure=_secure(request), max_age=max_age)


def _forget(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(_cookie_name(request, base), path="/", secure=_secure(request),
                           httponly=True, samesite="strict")


def _whole(vault: Vault, row: Derivative) -> Response:
    return Response(vault.read_derivative_bytes(row),
                    media_type=row.mime or "application/octet-stream",
                    headers={"Cache-Control": "private, no-store"})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) half-open for one `bytes=` range; None for no header. Raises
    ValueError for a range that is malformed or outside the file (416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise ValueError("one bytes range only")
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise ValueError("malformed range")
    if first == "":
        n = int(last)
        if n <= 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else int(last) + 1
    if start < 0 or start >= size or end <= start:
        raise ValueError("range outside the file")
    return start, min(end, size)


def _ranged(request: Request, vault: Vault, row: Derivative) -> Response:
    size = vault.derivative_size(row)
    try:
        span = parse_range(request.headers.get("range"), size)
    except ValueError:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    start, end = span or (0, size)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start),
               "Cache-Control": "private, no-store"}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(vault.read_range(row, start, end), status_code=206 if span else 200,
                             media_type=row.mime or "video/mp4", headers=headers)


class _ReaderGone(Exception):
    """The person's browser stopped reading a download."""


def _download_original(vault: Vault, who: Person, sha256: str, reason: str) -> Response:
    """Stream the original through the door. The `downloaded` event (with the reason and
    whether all of it left) is appended when the stream ends: before its last byte is sent,
    or, when the reader hangs up, as soon as the producer notices (marked incomplete, with
    the bytes that left)."""
    pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)
    gone = threading.Event()
    original = vault.find_original(sha256)

    def put(item: bytes | BaseException | None) -> None:
        while True:
            if gone.is_set():
                raise _ReaderGone
            try:
                pieces.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            with vault.open_original(sha256, purpose="downloaded", to="review app download",
                                     details={"reason": reason}, actor=who.actor) as opened:
                opened.copy_to(put)
            put(None)
        except _ReaderGone:
            pass  # the door recorded what left, as incomplete
        except BaseException as exc:  # shown to the reader as a broken download
            with contextlib.suppress(_ReaderGone):
                put(exc)

    def stream() -> Iterator[bytes]:
        worker = threading.Thread(target=produce, daemon=True, name=f"download-{sha256[:8]}")
        worker.start()
        try:
            while (item := pieces.get()) is not None:
                if isinstance(item, BaseException):
                    log.error("download of %s failed: %s", sha256, item)
                    return
                yield item
        finally:
            gone.set()  # a reader that hung up: the producer stops and the door records it

    return _Download(gone, stream(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{sha256}.bin"',
        "Content-Length": str(original.size), "Cache-Control": "private, no-store"})


class _Download(StreamingResponse):
    """A streamed download that tells its producer when sending ended, however it ended (a
    reader who hangs up leaves the iterator unclosed: Starlette only cancels the task)."""

    def __init__(self, ended: threading.Event, content: Iterator[bytes],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._ended = ended

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._ended.set()


Answer = Callable[[Request, int, str], Response]


def _answerer(page: Callable[..., HTMLResponse]) -> Answer:
    """A refusal as JSON (`/api/...`, or when JSON is asked for) or as a page (401: the
    login form)."""
    def answer(request: Request, status: int, message: str) -> Response:
        accept = request.headers.get("accept", "")
        if request.url.path.startswith("/api/") or "application/json" in accept or (
                "text/html" not in accept and request.method == "GET"):
            # the API, and what a page loads (images, video, a favicon): no page to show
            return JSONResponse({"error": message}, status_code=status)
        if status == 401:
            # keep the sign-in form's token if the browser has one: a 401 for another
            # request of the same tab must not make the form on screen stale
            token = _read_cookie(request, LOGIN_CSRF_COOKIE) or security.new_token()
            response = page(request, "login.html", 401, login_csrf=token, error=message)
            if token != _read_cookie(request, LOGIN_CSRF_COOKIE):
                _cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
            return response
        return page(request, "error.html", status, message=message, status=status)

    return answer


def _install_handlers(app: FastAPI, answer: Answer) -> None:

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                          for e in exc.errors()[:5])
        return answer(request, 422, f"this request is not valid ({where})")

    @app.exception_handler(StrongroomError)
    async def refused(request: Request, exc: StrongroomError) -> Response:
        status = (403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, NotFound)
                  else 401 if isinstance(exc, LoginFailed) else 400)
        return answer(request, status, str(exc))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # Starlette answers a 500 outside the middleware that adds the headers: add them here
        return _with_headers(request, answer(request, 500,
                                             "something went wrong on the server; it is logged"))


def _is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def _gate(app: FastAPI, answer: Answer) -> None:
    """Deny by default before anything else runs: a request to a route not in the
    allow-list without a live session gets 401 here, before its body is even parsed (the
    routes' own `auth` dependencies then check roles and CSRF)."""
    @app.middleware("http")
    async def gate(request: Request,
                   call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        too_large = JSONResponse({"error": "this request is too large"}, status_code=413)
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM):
            return too_large
        if length is None and request.method not in SAFE_METHODS:
            # a chunked body has no length to check: read it here, up to the limit (what is
            # read is handed on to the route, see starlette's _CachedRequest)
            body = b""
            async for piece in request.stream():
                body += piece
                if len(body) > MAX_FORM:
                    return too_large
            request._body = body
        if not _is_public(request.method, request.url.path):
            from starlette.concurrency import run_in_threadpool

            token = _bearer(request) or _read_cookie(request, COOKIE)
            who = await run_in_threadpool(actions.person, request.app.state.vault, token)
            if who is None:
                return answer(request, 401, "sign in first (or your session has ended)")
            roles = _route_roles(request)
            if roles is not None and who.role not in roles:
                return answer(request, 403, "your role does not allow this")
            request.state.gated = who
        return await call_next(request)


def _route_roles(request: Request) -> tuple[str, ...] | None:
    """The roles the route that will answer this request names (None: no such route, or a
    route without `auth`, which the enumeration test forbids)."""
    from fastapi.routing import APIRoute
    from starlette.routing import Match

    for route in request.app.routes:
        match, _child = route.matches(request.scope)
        if match is Match.FULL:
            if isinstance(route, APIRoute):
                for dep in route.dependant.dependencies:
                    if isinstance(dep.call, Authenticated):
                        return dep.call.roles
            return None
    return None


def _headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        return _with_headers(request, await call_next(request))


def _with_headers(request: Request, response: Response) -> Response:
    """The security headers every answer carries, a 500 page's too."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
