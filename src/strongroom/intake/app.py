"""The intake app: where a source sends files and messages, without an account.

A separate FastAPI app (`create_app(settings)`), meant for its own host behind a Tor onion
service. It holds the vault's *public* key and its data folder, nothing else (`store.py`), and
never imports the vault. Everything works without JavaScript (plain forms); with it, uploads
resume over days through tus 1.0 (tus-js-client, served from here). `strongroom send` speaks the
same tus endpoint from a command line.

Routes are denied by default: `PUBLIC` lists the ones that need no codename session, and a
test walks the app to prove every other one refuses without it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.intake import codenames, seal
from strongroom.intake.store import (
    DAY,
    IntakeError,
    Limits,
    Session,
    Store,
    Upload,
    day_text,
    today,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUMS = {"sha1": "sha1", "sha256": "sha256", "md5": "md5"}
COOKIE = "intake_session"
#: Routes that need no codename session (everything else refuses without one).
PUBLIC = {("GET", "/"), ("POST", "/new"), ("POST", "/login"), ("POST", "/api/sources"),
          ("POST", "/api/login"), ("OPTIONS", "/files"), ("GET", "/openapi.json"),
          ("GET", "/static")}
SMALL_BODY = 256 * 1024  # a 20,000-letter Cyrillic message, URL-encoded, fits
#: A request body that sends nothing for this long is cut off (its upload keeps what came);
#: a small body must arrive whole within SMALL_BODY_SECONDS.
IDLE_SECONDS = 60.0
SMALL_BODY_SECONDS = 30.0
TusVersionHeader = Annotated[str | None, Header(alias="Tus-Resumable")]
HERE = Path(__file__).parent


@dataclass
class IntakeSettings:
    data: Path
    public_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    cost: codenames.Cost = field(default_factory=codenames.Cost)
    session_hours: float = 12.0
    secure_cookie: bool = False  # set behind HTTPS; an onion service is its own transport
    failed_logins_per_minute: int = 30


class Failures:
    """A cap on wrong codenames per minute, for everyone at once (behind Tor there is no
    address to tell sources apart, and none is kept). A check takes its place in the count
    *before* the Argon2id work and gives it back if the codename was right, so codenames
    sent all at once cannot slip past the cap."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def _trim(self) -> None:
        while self._times and self._times[0] < time.monotonic() - 60:
            self._times.popleft()

    def take(self) -> float | None:
        """A place in the count (its time), or None when the cap is reached."""
        with self._lock:
            self._trim()
            if len(self._times) >= self.per_minute:
                return None
            now = time.monotonic()
            self._times.append(now)
            return now

    def give_back(self, taken: float) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._times.remove(taken)


def log(message: str) -> None:
    """The intake's log: the day, never the time; never an address or a browser."""
    print(f"{day_text(today())} intake: {message}", file=sys.stderr, flush=True)


class Headers:
    """Security headers on every response, and `Tus-Resumable` on every tus one."""

    CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        override = dict(scope.get("headers", [])).get(b"x-http-method-override", b"").upper()
        if scope["method"] == "POST" and override in (b"PATCH", b"DELETE", b"HEAD"):
            scope = {**scope, "method": override.decode()}  # tus 1.0 core: honoured
        tus = scope["path"].startswith("/files") and scope["method"] != "OPTIONS"
        streamed = (scope["method"] == "PATCH" and tus) or scope["path"] == "/upload"
        receive = _deadline(receive, None if streamed else SMALL_BODY_SECONDS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"server", b"date")]
                headers += [
                    (b"content-security-policy", self.CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    # same-origin: a form post still says where it comes from (Origin), and
                    # nothing of this address reaches another site
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cache-control", b"no-store"),
                ]
                if tus:
                    headers.append((b"tus-resumable", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _deadline(receive: Receive, total: float | None) -> Receive:
    """`receive`, cut off (as if the client had gone) when a body sends nothing for
    IDLE_SECONDS, or has not arrived whole after `total` seconds: a visitor trickling bytes
    cannot hold a connection, or an upload's lock, for ever."""
    started = time.monotonic()

    async def receive_in_time() -> Message:
        wait = IDLE_SECONDS
        if total is not None:
            wait = min(wait, total - (time.monotonic() - started))
        try:
            message: Message = await asyncio.wait_for(receive(), timeout=max(wait, 0.01))
        except TimeoutError:
            return {"type": "http.disconnect"}
        return message

    return receive_in_time


def create_app(settings: IntakeSettings) -> FastAPI:
    from jinja2 import Environment, PackageLoader, select_autoescape

    store = Store(settings.data, settings.public_key, limits=settings.limits, cost=settings.cost)
    store.recover()
    failures = Failures(settings.failed_logins_per_minute)
    ttl = int(settings.session_hours * 3600)
    pages = Environment(loader=PackageLoader("strongroom.intake", "templates"),
                        autoescape=select_autoescape(["html"]))
    app = FastAPI(title="Strongroom intake", version="1", docs_url=None, redoc_url=None)
    app.state.store = store
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(Headers)

    @app.exception_handler(IntakeError)
    async def refused(request: Request, exc: IntakeError) -> Response:
        if _wants_html(request):
            resp = _page(pages, "message.html", {"text": str(exc), "back": "/home"},
                         exc.status)
            resp.headers.update(exc.headers)
            return resp
        return JSONResponse({"error": str(exc)}, exc.status, headers=exc.headers)

    # -- sessions -------------------------------------------------------------------------
    def token_for(session: Session) -> str:
        return seal.make_token(store.server_key, {"s": session.source_id, "i": session.identity,
                                                  "e": store.epoch(session.source_id)})

    def session_of(request: Request) -> Session:
        token = request.cookies.get(COOKIE)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise IntakeError("sign in with your codename first", 401)
        ended = IntakeError("your session ended: sign in with your codename again", 401)
        try:
            claims = seal.read_token(store.server_key, token, ttl)
            session = Session(str(claims["s"]), str(claims["i"]))
            epoch = int(claims["e"])
        except (seal.BadToken, KeyError, TypeError, ValueError):
            raise ended from None
        try:
            current = store.epoch(session.source_id)
        except IntakeError:  # a source removed since
            raise ended from None
        if epoch != current:  # signed out since
            raise ended
        return session

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None:  # "null" too: a sandboxed frame or a redirect from elsewhere
            host = re.sub(r"^[a-z]+://", "", origin)
            if host != request.headers.get("host"):
                raise IntakeError("a form from another site cannot post here", 403)

    def signed_in(target: str, session: Session, request: Request) -> Response:
        resp: Response = RedirectResponse(target, 303)
        resp.set_cookie(COOKIE, token_for(session), max_age=ttl, httponly=True,
                        samesite="strict", secure=settings.secure_cookie, path="/")
        return resp

    async def small_form(request: Request) -> dict[str, str]:
        body = await _small_body(request)
        from urllib.parse import parse_qs

        try:
            pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            raise IntakeError("the form could not be read") from None
        return {k: v[0] for k, v in pairs.items()}

    async def unlock(codename: str) -> Session:
        taken = failures.take()
        if taken is None:
            raise IntakeError("too many wrong codenames just now: wait a minute", 429)
        session = await run_in_threadpool(store.unlock, codename)
        if session is None:
            raise IntakeError("no such codename (check the words and their order)", 403)
        failures.give_back(taken)
        return session

    # -- pages ----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> Response:
        return _page(pages, "index.html", {})

    @app.post("/new", response_class=HTMLResponse, include_in_schema=False)
    async def new(request: Request) -> Response:
        same_origin(request)
        form = await small_form(request)
        lang = form.get("lang", "ru") if form.get("lang") in codenames.LANGUAGES else "ru"
        codename, session = await run_in_threadpool(store.new_source, lang)
        log("a new source")
        resp = _page(pages, "codename.html", {"codename": codename})
        resp.set_cookie(COOKIE, token_for(session), max_age=ttl, httponly=True,
                        samesite="strict", secure=settings.secure_cookie, path="/")
        return resp

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        same_origin(request)
        form = await small_form(request)
        session = await unlock(form.get("codename", ""))
        return signed_in("/home", session, request)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        same_origin(request)
        session = session_of(request)
        await run_in_threadpool(store.end_sessions, session.source_id)
        resp = RedirectResponse("/", 303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/home", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> Response:
        session = session_of(request)
        uploads = [_shown_upload(store, u) for u in store.uploads(session.source_id)]
        messages = _read_messages(store, session)
        return _page(pages, "home.html", {"uploads": uploads, "messages": messages,
                                          "max_file": settings.limits.max_file})

    @app.post("/message", include_in_schema=False)
    async def message(request: Request) -> Response:
        same_origin(request)
        session = session_of(request)
        text = (await small_form(request)).get("text", "").strip()
        if text:
            await run_in_threadpool(store.add_message, session.source_id, "source",
                                    text.encode("utf-8"))
            log("a message")
        return RedirectResponse("/home", 303)

    @app.post("/upload", include_in_schema=False)
    async def upload_form(request: Request) -> Response:
        """The upload without JavaScript: one multipart form, streamed and encrypted a piece
        at a time like a tus upload (it cannot resume: the form has no way to)."""
        same_origin(request)
        session = session_of(request)
        received = await _receive_form(store, session, request)
        log(f"{len(received)} file(s) by form")
        return RedirectResponse("/home", 303)

    # -- JSON for `strongroom send` -------------------------------------------------------
    @app.post("/api/sources", openapi_extra=_json_body({"lang": {"enum": ["ru", "en"]}}))
    async def api_new_source(request: Request) -> dict[str, str]:
        """A new codename, and a session for it."""
        body = await _small_json(request)
        lang = body.get("lang", "ru") if body.get("lang") in codenames.LANGUAGES else "ru"
        codename, session = await run_in_threadpool(store.new_source, lang)
        log("a new source")
        return {"codename": codename, "token": token_for(session)}

    @app.post("/api/login", openapi_extra=_json_body({"codename": {"type": "string"}}))
    async def api_login(request: Request) -> dict[str, str]:
        """A session for a codename (seven words)."""
        body = await _small_json(request)
        session = await unlock(str(body.get("codename", "")))
        return {"token": token_for(session)}

    @app.get("/api/uploads")
    async def api_uploads(request: Request) -> list[dict[str, Any]]:
        session = session_of(request)
        return [u.public() for u in store.uploads(session.source_id)]

    @app.get("/api/messages")
    async def api_messages(request: Request) -> list[dict[str, Any]]:
        session = session_of(request)
        return _read_messages(store, session)

    # -- tus 1.0 --------------------------------------------------------------------------
    @app.options("/files")
    async def tus_options() -> Response:
        return Response(status_code=204, headers={
            "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS, "Tus-Max-Size": str(settings.limits.max_file),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS)})

    @app.post("/files", status_code=201)
    async def tus_create(
        request: Request,
        tus_resumable: TusVersionHeader = None,
        upload_length: Annotated[str | None, Header(alias="Upload-Length")] = None,
        upload_metadata: Annotated[str | None, Header(alias="Upload-Metadata")] = None,
    ) -> Response:
        """tus creation: a new upload of Upload-Length bytes."""
        _tus_version(request)
        session = session_of(request)
        if request.headers.get("upload-defer-length"):
            raise IntakeError("Upload-Defer-Length is not supported: give Upload-Length")
        length = _whole(request.headers.get("upload-length"), "Upload-Length")
        meta = _metadata(request.headers.get("upload-metadata", ""))
        if request.headers.get("content-length") not in (None, "0"):
            raise IntakeError("creation-with-upload is not supported: PATCH the bytes")
        up = await run_in_threadpool(store.create_upload, session.source_id, length, meta)
        return Response(status_code=201, headers={
            "Location": f"/files/{up.id}", **_expires(store, up)})

    @app.head("/files/{uid}")
    async def tus_head(uid: str, request: Request, tus_resumable: TusVersionHeader = None
                       ) -> Response:
        """tus: how many bytes of this upload the intake holds (Upload-Offset)."""
        _tus_version(request)
        session = session_of(request)
        up = store.upload(uid, session.source_id)
        if store.expired(up):
            raise IntakeError("this upload expired; start it again", 410)
        return Response(status_code=200, headers={
            "Upload-Offset": str(up.offset), "Upload-Length": str(up.length),
            **_expires(store, up)})

    @app.patch("/files/{uid}", status_code=204, openapi_extra={"requestBody": {
        "content": {"application/offset+octet-stream": {"schema": {"type": "string",
                                                                   "format": "binary"}}}}})
    async def tus_patch(
        uid: str,
        request: Request,
        tus_resumable: TusVersionHeader = None,
        upload_offset: Annotated[str | None, Header(alias="Upload-Offset")] = None,
        upload_checksum: Annotated[str | None, Header(alias="Upload-Checksum")] = None,
    ) -> Response:
        """tus: the next bytes of this upload, from Upload-Offset on."""
        _tus_version(request)
        session = session_of(request)
        if request.headers.get("content-type", "").split(";")[0].strip() \
                != "application/offset+octet-stream":
            raise IntakeError("Content-Type must be application/offset+octet-stream", 415)
        offset = _whole(request.headers.get("upload-offset"), "Upload-Offset")
        check = _checksum(request.headers.get("upload-checksum"))
        with store.receiving(uid, session.source_id, offset, eager=check is None) as rx:
            declared = request.headers.get("content-length")
            if declared is not None and _whole(declared, "Content-Length") > rx.room:
                raise IntakeError("more bytes than the Upload-Length announced", 413)
            hasher = hashlib.new(check[0]) if check else None
            try:
                async for piece in request.stream():
                    if hasher is not None:
                        hasher.update(piece)
                    if rx.feed(piece):
                        await run_in_threadpool(rx.flush)
            except ClientDisconnect:
                # Without a checksum every byte that arrived is kept: the source re-sends
                # less. With one, nothing of this request can be trusted.
                if check is None:
                    await run_in_threadpool(rx.commit)
                return Response(status_code=400)
            if check is not None and hasher is not None and hasher.digest() != check[1]:
                raise IntakeError("the checksum does not match the bytes received", 460)
            up = await run_in_threadpool(rx.commit)
        if up.done:
            log("an upload complete")
        return Response(status_code=204, headers={"Upload-Offset": str(up.offset),
                                                  **_expires(store, up)})

    @app.delete("/files/{uid}", status_code=204)
    async def tus_delete(uid: str, request: Request, tus_resumable: TusVersionHeader = None
                         ) -> Response:
        """tus termination: drop this upload."""
        _tus_version(request)
        session = session_of(request)
        await run_in_threadpool(store.terminate, uid, session.source_id)
        return Response(status_code=204)

    return app


# -- helpers ---------------------------------------------------------------------------------
def _json_body(properties: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a small JSON route (read by `_small_json`, size-capped)."""
    return {"requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "properties": {k: {**v} for k, v in properties.items()}}}}}}


def _page(pages: Any, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(pages.get_template(name).render(**context), status)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/files")) \
        and "text/html" in request.headers.get("accept", "text/html")


async def _small_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > SMALL_BODY:
        raise IntakeError("request too large", 413)
    body = bytearray()
    try:
        async for piece in request.stream():
            body += piece
            if len(body) > SMALL_BODY:
                raise IntakeError("request too large", 413)
    except ClientDisconnect:
        raise IntakeError("the request did not arrive in time", 408) from None
    return bytes(body)


async def _small_json(request: Request) -> dict[str, Any]:
    body = await _small_body(request)
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise IntakeError("the body is not JSON (or nested too deep)") from None
    if not isinstance(data, dict):
        raise IntakeError("the body must be a JSON object")
    return data


def _tus_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise IntakeError(f"this server speaks tus {TUS_VERSION} (send Tus-Resumable)", 412,
                          {"Tus-Version": TUS_VERSION})


def _whole(value: str | None, name: str) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 15:
        raise IntakeError(f"{name} must be a whole number of bytes")
    return int(value)


def _metadata(header: str) -> dict[str, bytes]:
    """tus Upload-Metadata: `key base64value` pairs separated by commas."""
    if len(header) > 8192:
        raise IntakeError("Upload-Metadata is too long")
    found: dict[str, bytes] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        parts = pair.split(" ")
        if len(parts) > 2 or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", parts[0]) \
                or parts[0] in found or len(found) >= 16:
            raise IntakeError("Upload-Metadata is malformed")
        try:
            found[parts[0]] = base64.b64decode(parts[1], validate=True) if len(parts) == 2 \
                else b""
        except (binascii.Error, ValueError):
            raise IntakeError("Upload-Metadata values must be base64") from None
    return found


def _checksum(header: str | None) -> tuple[str, bytes] | None:
    if header is None:
        return None
    parts = header.strip().split(" ")
    if len(parts) != 2 or parts[0] not in CHECKSUMS:
        raise IntakeError(f"Upload-Checksum: use one of {', '.join(CHECKSUMS)}")
    try:
        return CHECKSUMS[parts[0]], base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise IntakeError("Upload-Checksum: the value must be base64") from None


def _expires(store: Store, up: Upload) -> dict[str, str]:
    if up.done:
        return {}
    when = up.touched + (store.limits.expire_days + 1) * DAY
    return {"Upload-Expires": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))}


def _shown_upload(store: Store, up: Upload) -> dict[str, Any]:
    pct = 100 if up.length == 0 else int(up.offset * 100 / up.length)
    state = ("imported" if up.imported else "complete" if up.done
             else "expired" if store.expired(up) else "receiving")
    return {**up.public(), "percent": pct, "state": state}


def _read_messages(store: Store, session: Session) -> list[dict[str, Any]]:
    shown = []
    for m in store.messages(session.source_id):
        plain = seal.decrypt_for_source(m.ciphertext, session.identity)
        if plain is None:
            continue
        item: dict[str, Any] = {"seq": m.seq, "from": m.sender}
        if m.sender == "receipt":
            try:
                item["receipt"] = json.loads(plain)
            except ValueError:
                continue
        else:
            item["text"] = plain.decode("utf-8", "replace")
        shown.append(item)
    return shown


async def _receive_form(store: Store, session: Session, request: Request) -> list[str]:
    """Stream a multipart form's file parts into uploads, a piece at a time."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise IntakeError("send the files as multipart/form-data")
    declared = request.headers.get("content-length")
    bound = _whole(declared, "Content-Length") if declared else store.limits.max_file
    form = _FormFiles(store, session, min(bound, store.limits.max_file))
    parser = MultipartParser(boundary, form.callbacks(), max_size=store.limits.max_file)
    try:
        async for chunk in request.stream():
            await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except ClientDisconnect:
        form.abandon()
        return []
    except IntakeError:
        form.abandon()
        raise
    except Exception as exc:  # python-multipart's parse errors
        form.abandon()
        raise IntakeError(f"the form could not be read: {type(exc).__name__}") from None
    return form.done


class _FormFiles:
    """Callbacks for python-multipart: each `file` part becomes one upload of unknown length
    (bounded by the request's), sized when its part ends."""

    def __init__(self, store: Store, session: Session, bound: int) -> None:
        self.store, self.session, self.bound = store, session, bound
        self.header_field, self.header_value = b"", b""
        self.headers: dict[bytes, bytes] = {}
        self.current: Any = None
        self.context: Any = None
        self.done: list[str] = []

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
            "on_header_field": self._field, "on_header_value": self._value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
        }

    def _begin(self) -> None:
        self.headers = {}

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        filename = params.get(b"filename")
        if params.get(b"name") != b"file" or not filename:
            self.current = None
            return
        meta = {"filename": filename[-255:], "source": b"form"}
        up = self.store.create_upload(self.session.source_id, self.bound, meta, form=True)
        self.context = self.store.receiving(up.id, self.session.source_id, 0)
        self.current = self.context.__enter__()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.current is not None and self.current.feed(data[start:end]):
            self.current.flush()

    def _end(self) -> None:
        if self.current is None:
            return
        rx, self.current = self.current, None
        up = rx.commit(final_length=True)
        self.context.__exit__(None, None, None)
        self.done.append(up.id)

    def abandon(self) -> None:
        if self.current is not None:
            self.current, rx = None, self.current
            self.context.__exit__(None, None, None)
            self.store.purge(rx.up.id)
