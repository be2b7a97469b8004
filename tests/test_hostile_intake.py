"""Hostile tests of the intake (issue 17): a hostile visitor, a hostile source, a policeman
who seizes (or quietly edits) the intake's disk, and a careless operator.

Each test asserts what a user would call the safe behaviour. A test marked `broken(...)` is
an xfail that names the break it shows: its xfail only accepts `Break`, the exception that
`expect` raises for the broken assertion itself, so a step that should hold and does not
still fails the run. Most tests speak to an intake app served in this process by the same
uvicorn configuration `intake-serve` uses (cheap Argon2id, their own data folders); the
tests that kill a server or an import use real processes. A docstring that begins "Broke at
0f9a385" names a break found at that commit and fixed in 59cdd8f: the test stays, to keep
it fixed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import CLI, CliResult, Template, cli, cli_env, open_vault, poll, small_tmpfs, sql
from intake_fixtures import (
    TUS,
    Server,
    bearer,
    create,
    free_port,
    head,
    holds,
    meta_header,
    new_source,
    patch,
)
from strongroom.intake import codenames, seal
from strongroom.intake.store import Limits

MiB = 2**20
DAY = 86400
CHEAP = codenames.Cost(time=1, memory_kib=8 * 1024)
MARKER = b"HOSTILE-PLAINTEXT-MARKER:"


# -- how a break is marked -------------------------------------------------------------------
class Break(AssertionError):
    """The assertion a BREAK test is about (its xfail accepts only this type)."""


def expect(condition: object, what: str) -> None:
    if not condition:
        raise Break(what)


def broken(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, raises=Break, reason=f"BREAK: {reason}")


# -- an intake served in this process --------------------------------------------------------
@dataclass
class Live:
    data: Path
    port: int
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sid(self, codename: str) -> str:
        store = self.app.state.store
        return codenames.derive(codename, store.salt, store.cost).source_id

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class _Quiet:
    """The app as uvicorn runs it, minus uvicorn's logging of an exception that escaped
    after the response (ServerErrorMiddleware has answered 500 by then; the exceptions are
    kept in `errors`). Python 3.11 formats such a traceback with ast.parse, whose state is
    shared between threads: pytest formatting a failure at the same moment then dies with
    "SystemError: AST constructor recursion depth mismatch"."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(repr(exc)[:200])


def start_live(data: Path, public_key: str, *, limits: Limits | None = None,
               cost: codenames.Cost = CHEAP, **settings: Any) -> Live:
    """`create_app` behind the uvicorn configuration `intake-serve` uses, in a thread."""
    import uvicorn

    from strongroom.intake.app import IntakeSettings, create_app
    from strongroom.review.serve import uvicorn_config

    app = create_app(IntakeSettings(data, public_key,
                                    limits=limits or Limits(max_file=64 * MiB, segment=MiB),
                                    cost=cost, **settings))
    port = free_port()
    config = uvicorn_config(_Quiet(app), "127.0.0.1", port)
    config.access_log = False
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    poll(lambda: server.started, timeout=30, what="the in-process intake to listen")
    return Live(data, port, app, server, thread)


@pytest.fixture(scope="module")
def public_key(template: Template) -> str:
    return template.keys.public.age_recipient


@pytest.fixture(scope="module")
def vault_dir(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-vault") / "vault"
    shutil.copytree(template.path, path)
    return path


@pytest.fixture(scope="module")
def lives(public_key: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Callable[..., Live]]:
    started: list[Live] = []

    def make(name: str, **kw: Any) -> Live:
        live = start_live(tmp_path_factory.mktemp(name) / "data", public_key, **kw)
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


@pytest.fixture(scope="module")
def site(lives: Callable[..., Live]) -> Live:
    """A shared intake for tests that change nothing others look at (1 MiB pieces)."""
    return lives("site")


# -- helpers ----------------------------------------------------------------------------------
def content(size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += MARKER + secrets.token_bytes(64 * 1024 - len(MARKER))
    return bytes(out[:size])


def needles(data: bytes) -> list[bytes]:
    return [MARKER, data[1000:1064], data[len(data) // 2:len(data) // 2 + 64]]


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"intake_session={token}"}


def complete(live: Live, token: str, data: bytes, name: str = "f.bin",
             sha: str | None = None, **meta: str) -> str:
    values: dict[str, str | bytes] = {"filename": name, **meta}
    if sha is not None:
        values["sha256"] = sha
    r, uid = create(live.url, token, len(data), meta_header(**values))
    assert r.status_code == 201, r.text
    if data:
        p = patch(live.url, token, uid, 0, data)
        assert p.status_code == 204, p.text
    return uid


def run_import(vault: Path, data: Path, *extra: str) -> tuple[int, dict[str, Any], CliResult]:
    r = cli("import-intake", vault, data, "--json", *extra)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        out = {}
    return r.returncode, out, r


def receipts(url: str, token: str) -> list[dict[str, Any]]:
    msgs = httpx.get(url + "/api/messages", headers=bearer(token), timeout=30).json()
    return [m["receipt"] for m in msgs if m["from"] == "receipt"]


def multipart(parts: list[tuple[str, str, bytes]], boundary: str = "hostile-boundary"
              ) -> tuple[bytes, str]:
    body = b""
    for name, filename, data in parts:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 ).encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def sighted(vault: Path, uids: list[str]) -> dict[str, str]:
    """upload id -> the name the vault recorded for it (the sighting's rel_path)."""
    rows = sql(vault, "SELECT rel_path FROM sighting")
    found = {}
    for (rel,) in rows:
        uid = str(rel).split("/", 1)[0]
        if uid in uids:
            found[uid] = str(rel)
    return found


def _atime_moves() -> bool:
    """Whether reading a file whose times were set to the day moves its atime here (relatime,
    strictatime); not on a noatime mount."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f"
        p.write_bytes(b"x")
        day = int(time.time()) // DAY * DAY
        os.utime(p, (day, day))
        p.read_bytes()
        return os.stat(p).st_atime != day


# == the protocol and the web surface, as a hostile visitor ==================================
def test_odd_requests_are_refused_politely_never_with_a_500(site: Live) -> None:
    _, token = new_source(site.url)
    _, uid = create(site.url, token, 100)
    auth = {**TUS, **bearer(token)}
    octet = {**auth, "Content-Type": "application/offset+octet-stream"}
    meta16 = ",".join(f"k{i} YQ==" for i in range(16))
    cases: list[tuple[str, str, dict[str, str], bytes, set[int]]] = [
        ("PROPFIND", "/", {}, b"", {405}),
        ("TRACE", "/", {}, b"", {405}),
        ("HEAD", "/", {}, b"", {200, 405}),
        ("OPTIONS", "/home", {}, b"", {405}),
        ("OPTIONS", f"/files/{uid}", auth, b"", {204, 405}),
        ("PUT", "/files", auth, b"", {405}),
        ("GET", f"/files/{uid}", auth, b"", {405}),
        ("GET", "/static/../app.py", {}, b"", {404}),
        ("GET", "/static/%2e%2e/app.py", {}, b"", {404}),
        ("GET", "/static/..%2fapp.py", {}, b"", {404}),
        ("GET", "/static/..%2f..%2fintake%2fstore.py", {}, b"", {404}),
        ("GET", "/static/", {}, b"", {404}),
        ("GET", "/static/intake.css%00.py", {}, b"", {404}),
        ("HEAD", "/files/..%2f..%2fintake.json", auth, b"", {404}),
        ("HEAD", f"/files/{uid}%00", auth, b"", {404}),
        ("HEAD", f"/files/{uid.upper()}", auth, b"", {404}),
        ("PATCH", f"/files/{uid}", {**octet, "Upload-Offset": "-0"}, b"x", {400}),
        ("PATCH", f"/files/{uid}", {**octet, "Upload-Offset": "0x0"}, b"x", {400}),
        ("PATCH", f"/files/{uid}", {**auth, "Upload-Offset": "0"}, b"x", {415}),
        ("PATCH", f"/files/{uid}", {**octet, "Upload-Offset": "0",
                                    "Upload-Checksum": "sha256 ===="}, b"x", {400}),
        ("PATCH", f"/files/{uid}", {**octet, "Upload-Offset": "0",
                                    "Upload-Checksum": "sha256 YQ== extra"}, b"x", {400}),
        ("PATCH", f"/files/{uid}", {**octet, "Upload-Offset": "0"}, b"", {204}),
        ("DELETE", f"/files/{uid}", bearer(token), b"", {412}),
        ("POST", "/files", {**auth, "Upload-Length": "0"}, b"", {201}),
        ("POST", "/files", {**auth, "Upload-Length": "5", "Upload-Metadata": meta16}, b"",
         {201}),
        ("POST", "/files", {**auth, "Upload-Length": "5",
                            "Upload-Metadata": meta16 + ",k16 YQ=="}, b"", {400}),
        ("POST", "/files", {**auth, "Upload-Length": "5", "Upload-Metadata": "k\u00e9y YQ=="},
         b"", {400}),
        ("POST", "/files", {**auth, "Upload-Length": "5", "Content-Length": "3"}, b"abc",
         {400}),
        ("GET", "/home", {"Cookie": "intake_session=garbage"}, b"", {401}),
        ("GET", "/home", {"Authorization": "Bearer " + "\u00e9" * 8}, b"", {401}),
        ("GET", "/home", {"Authorization": "Bearer " + "A" * 12000}, b"", {401}),
        ("GET", "/home", {"Authorization": "Bearer " + token[:-4] + "AAAA"}, b"", {401}),
        ("GET", "/api/uploads", {"Authorization": "Basic " + token}, b"", {401}),
        ("POST", "/api/sources", {"Content-Type": "application/json"}, b"null", {400}),
        ("POST", "/api/sources", {"Content-Type": "application/json"}, b"\xff\xfe", {400}),
        ("POST", "/api/sources", {"Content-Type": "application/json"}, b" " * 300_000, {413}),
        ("POST", "/api/login", {"Content-Type": "application/json"},
         b'{"codename": ["a", {"b": 1}]}', {403}),
        ("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
         b"&".join(b"f%d=1" % i for i in range(9)), {400}),
        ("POST", "/message", {**cookie(token),
                              "Content-Type": "application/x-www-form-urlencoded"},
         b"text=%ff%fe", {303, 400}),  # kept as U+FFFD, or refused
        ("POST", "/upload", {**cookie(token), "Content-Type": "multipart/form-data"},
         b"", {400}),
        ("POST", "/upload", {**cookie(token),
                             "Content-Type": "multipart/form-data; boundary=x"}, b"",
         {303, 400}),
        ("GET", "/openapi.json", {}, b"", {200}),
    ]
    problems = []
    for method, target, headers, body, allowed in cases:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
        conn.request(method, target, body=body or None, headers=headers)
        r = conn.getresponse()
        text = r.read()
        conn.close()
        if r.status not in allowed:
            problems.append((method, target[:60], r.status, text[:120]))
        elif r.getheader("content-security-policy") is None \
                or r.getheader("x-content-type-options") != "nosniff" \
                or r.getheader("cache-control") != "no-store":
            problems.append((method, target[:60], "no security headers"))
        if target.startswith("/static") and b"def create_app" in text:
            problems.append((method, target, "source code served"))
    assert problems == [], problems
    # chunked transfer encoding, and a body longer than its Content-Length
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    conn.request("PATCH", f"/files/{uid}", body=iter([b"12345", b"67890"]),
                 headers={**octet, "Upload-Offset": "0"}, encode_chunked=True)
    r = conn.getresponse()
    r.read()
    assert r.status == 204 and r.getheader("upload-offset") == "10"
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        sock.sendall(request_head("PATCH", f"/files/{uid}", {
            **octet, "Upload-Offset": "10", "Content-Length": "5"}) + b"abcde" + b"JUNK" * 5)
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 204"), reply[:200]
    assert head(site.url, token, uid).headers["upload-offset"] == "15"
    # a 100 KB header: refused or dropped, never a 500, and the server goes on
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        try:
            reply = sock.recv(4096)
        except ConnectionResetError:
            reply = b""
        assert not reply.startswith(b"HTTP/1.1 5"), reply[:200]
    assert httpx.get(site.url + "/", timeout=10).status_code == 200


def test_a_deeply_nested_json_body_is_a_400_not_a_500(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): a JSON body nested 50,000 deep makes
    json.loads raise RecursionError, which _small_json does not catch (only ValueError): HTTP
    500."""
    for path in ("/api/sources", "/api/login"):
        r = httpx.post(site.url + path, content=b"[" * 50_000, timeout=30,
                       headers={"Content-Type": "application/json"})
        expect(r.status_code == 400, f"{path}: HTTP {r.status_code}")


def test_a_412_names_the_tus_versions_the_server_speaks(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): a request with the wrong Tus-Resumable
    gets 412 without the Tus-Version header tus 1.0 requires on it."""
    _, token = new_source(site.url)
    r = httpx.post(site.url + "/files", timeout=30, headers={
        "Tus-Resumable": "0.2.2", **bearer(token), "Upload-Length": "1"})
    assert r.status_code == 412
    expect(r.headers.get("tus-version") == "1.0.0", f"headers: {dict(r.headers)}")


def test_tus_method_override_is_honoured(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): X-HTTP-Method-Override (tus 1.0 core:
    MUST be honoured) is ignored: a POST that says PATCH gets 405."""
    _, token = new_source(site.url)
    _, uid = create(site.url, token, 4)
    r = httpx.post(f"{site.url}/files/{uid}", content=b"abcd", timeout=30, headers={
        **TUS, **bearer(token), "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    expect(r.status_code == 204 and r.headers.get("upload-offset") == "4",
           f"HTTP {r.status_code}")


def test_many_patches_to_different_uploads_at_once(site: Live) -> None:
    _, token = new_source(site.url)
    datas = [content(1_500_000 + i) for i in range(6)]
    uids = [create(site.url, token, len(d))[1] for d in datas]
    codes: dict[str, int] = {}

    def send(uid: str, data: bytes) -> None:
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        codes[uid] = patch(site.url, token, uid, 0, data,
                           **{"Upload-Checksum": f"sha256 {digest}"}).status_code

    threads = [threading.Thread(target=send, args=a) for a in zip(uids, datas, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(codes.values()) == {204}
    for uid, data in zip(uids, datas, strict=True):
        assert head(site.url, token, uid).headers["upload-offset"] == str(len(data))
        folder = site.data / "uploads" / uid
        assert not list(folder.glob(".part-*")) and len(list(folder.glob("*.age"))) == 2
    assert not holds((site.data,), [MARKER])


def test_creations_racing_for_the_last_of_a_quota_cannot_overrun_it(
        lives: Callable[..., Live]) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): create_upload checks the quota and
    creates without a lock: creations racing for the last of a codename's quota all pass the
    check (3 MB allowed, more reserved)."""
    live = lives("race", limits=Limits(max_file=10**6, quota_source=3 * 10**6, segment=MiB))
    _, token = new_source(live.url)
    _, empty = create(live.url, token, 0)
    for _ in range(300):  # a busy intake: 300 finished (empty) uploads to look through
        shutil.copytree(live.data / "uploads" / empty,
                        live.data / "uploads" / secrets.token_hex(16))
    n = 10
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def go() -> None:
        barrier.wait()
        codes.append(create(live.url, token, 10**6)[0].status_code)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(codes) <= {201, 413} and len(codes) == n
    expect(codes.count(201) <= 3, f"{codes.count(201)} uploads of 1 MB made against a 3 MB "
                                  "quota")


def test_announced_but_unsent_bytes_do_not_lock_everyone_out(lives: Callable[..., Live]) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): announced lengths count against the
    total quota before any byte arrives: two fresh codenames reserve all of it with two empty
    creations and every other source gets 507 for as long as they touch them once a day."""
    live = lives("reserve", limits=Limits(max_file=3 * 10**6, quota_source=3 * 10**6,
                                          quota_total=6 * 10**6, segment=MiB))
    for _ in range(2):
        _, hostile = new_source(live.url)
        assert create(live.url, hostile, 3 * 10**6)[0].status_code == 201  # no byte sent
    _, honest = new_source(live.url)
    r, _ = create(live.url, honest, 10**6)
    expect(r.status_code == 201, f"an honest source's 1 MB: HTTP {r.status_code} "
                                 f"{r.text[:80]}")


def test_trickling_connections_cannot_lock_every_source_out(lives: Callable[..., Live]
                                                            ) -> None:
    live = lives("slow")
    socks = []
    try:
        for i in range(63):
            s = socket.create_connection(("127.0.0.1", live.port), timeout=30)
            if i % 2:
                s.sendall(request_head("POST", "/api/sources", {
                    "Content-Type": "application/json", "Content-Length": "100"}) + b"{")
            else:  # one quick request, then the headers of a second one, a byte at a time
                s.sendall(request_head("GET", "/", {}))
                s.recv(65536)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
            time.sleep(0.01)  # one at a time (a burst is refused as a whole)
        time.sleep(0.5)
        deadline = time.monotonic() + 8
        served = False
        while time.monotonic() < deadline and not served:
            for s in socks[::2]:
                with contextlib.suppress(OSError):
                    s.sendall(b"a")
            try:
                served = httpx.get(live.url + "/", timeout=3).status_code == 200
            except httpx.TransportError:
                served = False
            if not served:
                time.sleep(0.5)
        expect(served, "a new visitor got no page for 8 s while 63 connections trickled")
    finally:
        for s in socks:
            s.close()


# == codenames and sessions ==================================================================
def test_wrong_codenames_sent_all_at_once_are_capped_too(lives: Callable[..., Live]) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): Failures.blocked() is checked before
    the Argon2id work, and a failure is counted only after it: wrong codenames sent at once are
    all checked, far past the per-minute cap."""
    live = lives("ratelimit", cost=codenames.Cost(time=3, memory_kib=32 * 1024),
                 failed_logins_per_minute=3)
    n = 12
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def go() -> None:
        guess = codenames.generate("en")
        barrier.wait()
        codes.append(httpx.post(live.url + "/api/login", json={"codename": guess},
                                timeout=60).status_code)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(codes) <= {403, 429} and len(codes) == n
    expect(codes.count(403) <= 3, f"{codes.count(403)} of {n} guesses were checked; the cap "
                                  "is 3 a minute")


def test_a_wrong_codename_takes_as_long_as_a_right_one(lives: Callable[..., Live]) -> None:
    live = lives("timing", cost=codenames.Cost(time=1, memory_kib=32 * 1024),
                 failed_logins_per_minute=100_000)
    right, _ = new_source(live.url)
    wrong = codenames.generate("ru")  # seven listed words: the full Argon2id check
    times: dict[str, list[float]] = {"right": [], "wrong": []}
    with httpx.Client(base_url=live.url, timeout=30) as c:
        for i in range(28):
            kind = "right" if i % 2 else "wrong"
            started = time.perf_counter()
            r = c.post("/api/login", json={"codename": right if kind == "right" else wrong})
            took = time.perf_counter() - started
            assert r.status_code == (200 if kind == "right" else 403)
            if i >= 4:
                times[kind].append(took)
    ratio = statistics.median(times["right"]) / statistics.median(times["wrong"])
    assert 0.67 < ratio < 1.5, times


def test_a_session_ends_at_logout(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): logout only deletes the cookie: the
    same session token still opens /home (and /api/messages) for the rest of its 12 hours."""
    _, token = new_source(site.url)
    r = httpx.post(site.url + "/logout", headers={**cookie(token), "Origin": site.url},
                   timeout=30)
    assert r.status_code == 303
    again = httpx.get(site.url + "/api/messages", headers=bearer(token), timeout=30)
    expect(again.status_code == 401, f"the token still works after logout: HTTP "
                                     f"{again.status_code}")


def test_a_login_posted_from_an_opaque_origin_is_refused(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): same_origin lets 'Origin: null'
    through: a sandboxed iframe or a redirect chain on another site can sign a visitor into the
    attacker's codename (login CSRF), and the visitor then uploads into the attacker's
    codename."""
    codename, _ = new_source(site.url)
    evil = httpx.post(site.url + "/login", data={"codename": codename}, timeout=30,
                      headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    r = httpx.post(site.url + "/login", data={"codename": codename}, timeout=30,
                   headers={"Origin": "null"})
    expect(r.status_code == 403, f"Origin: null signed in: HTTP {r.status_code}")


def test_signing_in_leaves_no_exact_time_in_the_files_read(site: Live) -> None:
    codename, token = new_source(site.url)
    _, uid = create(site.url, token, 10)
    r = httpx.post(site.url + "/api/login", json={"codename": codename}, timeout=30)
    assert r.status_code == 200
    head(site.url, token, uid)
    for p in (site.data / "sources" / site.sid(codename) / "source.json",
              site.data / "uploads" / uid / "info.json"):
        st = os.stat(p)
        assert st.st_mtime % DAY == 0, p
        expect(st.st_atime % DAY == 0, f"{p.name}: atime {st.st_atime % DAY:.0f} s into the "
                                       "day")


def test_a_refused_patch_leaves_only_the_day_in_file_times(site: Live) -> None:
    _, token = new_source(site.url)
    _, uid = create(site.url, token, 3 * MiB)
    bad = "sha256 " + base64.b64encode(bytes(32)).decode()
    r = patch(site.url, token, uid, 0, secrets.token_bytes(3 * MiB),
              **{"Upload-Checksum": bad})
    assert r.status_code == 460
    folder = site.data / "uploads" / uid
    assert folder.stat().st_mtime % DAY == 0, folder.stat().st_mtime % DAY
    # without a checksum each piece joins the upload as it is written (eager); one byte
    # past Upload-Length then ends the request with 413, before commit
    _, uid = create(site.url, token, 2 * MiB)

    def body() -> Iterator[bytes]:
        yield secrets.token_bytes(2 * MiB)
        time.sleep(0.5)
        yield b"!"

    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    conn.request("PATCH", f"/files/{uid}", body=body(), encode_chunked=True, headers={
        **TUS, **bearer(token), "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    over = conn.getresponse()
    over.read()
    conn.close()
    assert over.status == 413
    folder = site.data / "uploads" / uid
    expect(folder.stat().st_mtime % DAY == 0,
           f"after an overrun the folder's mtime is {folder.stat().st_mtime % DAY:.0f} s "
           "into the day")


def test_a_seized_intake_holds_no_fast_test_of_a_codename(site: Live, tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): info.json keeps a `fingerprint` that is
    HMAC(SHA-256('strongroom send:' + codename), sha256:size): whoever seizes the disk and has
    the file (the police have the leaked video) tests a codename with one SHA-256, no Argon2id."""
    from strongroom.intake import client

    f = tmp_path / "known.mp4"
    f.write_bytes(b"a video the police have too " * 2000)
    report = client.send(site.url, [f], lang="en")
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    size = f.stat().st_size
    key = hashlib.sha256(b"strongroom send:"
                         + codenames.normalise(report.codename).encode()).digest()
    fast = hmac.new(key, f"{sha}:{size}".encode(), "sha256").hexdigest()[:32]
    on_disk = [json.loads(p.read_text()).get("fingerprint")
               for p in site.data.glob("uploads/*/info.json")]
    assert report.files[0].upload
    expect(fast not in on_disk, "a codename guess is confirmed against info.json by one "
                                "SHA-256 of the guess")


# == forms, without JavaScript ================================================================
def test_everything_works_without_javascript(site: Live) -> None:
    """A text browser: forms and a cookie, no script, no Origin header."""
    with httpx.Client(base_url=site.url, timeout=30) as b:
        index = b.get("/")
        assert re.findall(r'<form method="post" action="([^"]+)"', index.text) == [
            "/new", "/login"]
        r = b.post("/new", data={"lang": "en"})
        assert r.status_code == 200
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert r.headers["cache-control"] == "no-store"  # the page shows the codename
        m = re.search(r'id="codename">([^<]+)<', r.text)
        assert m
        codename = m.group(1)
        home = b.get("/home")
        assert home.status_code == 200
        assert set(re.findall(r'<form method="post" action="([^"]+)"', home.text)) == {
            "/upload", "/message", "/logout"}
        assert 'enctype="multipart/form-data"' in home.text
        body, ctype = multipart([("file", "a.txt", b"sent without javascript"),
                                 ("file", "b.txt", b"second file")])
        r = b.post("/upload", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 303 and r.headers["location"] == "/home"
        assert b.post("/message", data={"text": "без JS"}).status_code == 303
        home = b.get("/home")
        assert home.text.count("(100%)") == 2 and "без JS" in home.text
        assert b.post("/logout").status_code == 303
        assert b.get("/home").status_code == 401
        r = b.post("/login", data={"codename": codename})
        assert r.status_code == 303 and r.headers["location"] == "/home"
        assert b.get("/home").text.count("(100%)") == 2


def test_a_long_russian_message_the_form_allows_is_accepted(site: Live) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): the message form allows 60,000
    characters and the store 64 KiB, but the form body is capped at 128 KiB URL-encoded: 30,000
    Cyrillic letters (60 KB of UTF-8, 180 KB encoded) get 413 'request too large' and the
    source's text is lost."""
    _, token = new_source(site.url)
    text = "щ" * 30_000
    home = httpx.get(site.url + "/home", headers=cookie(token), timeout=30)
    m = re.search(r'maxlength="(\d+)"', home.text)
    assert m and len(text) <= int(m.group(1)) and len(text.encode()) <= 64 * 1024
    r = httpx.post(site.url + "/message", data={"text": text}, timeout=30,
                   headers={**cookie(token), "Origin": site.url})
    expect(r.status_code == 303, f"HTTP {r.status_code}")


def test_the_longest_message_the_intake_takes_can_be_read_by_the_vault(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    live = lives("longmessage")
    _, token = new_source(live.url)
    text = "a" * 65_500  # within Limits.message_bytes (65,536)
    r = httpx.post(live.url + "/message", data={"text": text}, timeout=30,
                   headers={**cookie(token), "Origin": live.url})
    assert r.status_code == 303
    out = cli("intake-messages", vault_dir, live.data, "--json")
    assert out.returncode == 0, out.stderr
    texts = [m["text"] for s in json.loads(out.stdout) for m in s["messages"]]
    expect(text in texts, f"the vault reads: {[t[:80] for t in texts]}")


def test_a_form_part_with_an_endless_header_is_refused_early(site: Live) -> None:
    _, token = new_source(site.url)
    with socket.create_connection(("127.0.0.1", site.port), timeout=15) as sock:
        sock.sendall(request_head("POST", "/upload", {
            **cookie(token), "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(50 * MiB)}))
        sock.sendall(b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
                     + b"a" * 300_000)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 4"), reply[:200]
    assert httpx.get(site.url + "/api/uploads", headers=bearer(token), timeout=30).json() == []


# == what a source sends, imported ============================================================
CRAFTED = {
    "dotdot": "../../x-escape.mp4",
    "absolute": "/etc/passwd",
    "windows": "C:\\Windows\\System32\\evil-escape.exe",
    "nul": "a\x00b.mp4",
    "long": "я" * 2500 + ".mp4",
    "rlo": "clip\u202egpj.exe",
    "c1": "clip\x9b31m\x9b2J.mp4",
    "esc": "clip\x1b[2J.mp4",
    "dots": "..",
    "empty": "",
    "html": "<b onmouseover=alert(3)>x.mp4",
}
HOSTILE_TEXT = "<script>alert(1)</script> \x1b]0;pwned\x07\x1b[2J\x9b31m end"


@dataclass
class Crafted:
    live: Live
    token: str
    uids: dict[str, str]
    form_uids: list[str]
    imported: CliResult
    messages: CliResult
    recorded: dict[str, str]
    home: str
    receipt: dict[str, Any]
    root: Path


@pytest.fixture(scope="module")
def crafted(lives: Callable[..., Live], vault_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Crafted:
    live = lives("crafted")
    _, token = new_source(live.url)
    uids = {}
    for key, name in CRAFTED.items():
        data = b"" if key == "dots" else f"crafted {key}".encode()
        # two of them claim another file's SHA-256, so their names are printed as MISMATCH
        sha = hashlib.sha256(b"other" if key in ("c1", "rlo") else data).hexdigest()
        uids[key] = complete(live, token, data, name=name, sha=sha)
    before = {p.name for p in (live.data / "uploads").iterdir()}
    body, ctype = multipart([("file", "../../form-escape.mp4", b"form one"),
                             ("file", "C:\\fakepath\\form-two.mp4", b"form two")])
    r = httpx.post(live.url + "/upload", content=body, timeout=30,
                   headers={**cookie(token), "Content-Type": ctype})
    assert r.status_code == 303
    form_uids = sorted({p.name for p in (live.data / "uploads").iterdir()} - before)
    r = httpx.post(live.url + "/message", data={"text": HOSTILE_TEXT}, timeout=30,
                   headers={**cookie(token), "Origin": live.url})
    assert r.status_code == 303
    imported = cli("import-intake", vault_dir, live.data)  # text, as an operator reads it
    messages = cli("intake-messages", vault_dir, live.data)
    recorded = sighted(vault_dir, [*uids.values(), *form_uids])
    home = httpx.get(live.url + "/home", headers=cookie(token), timeout=30).text
    (receipt,) = receipts(live.url, token)
    return Crafted(live, token, uids, form_uids, imported, messages, recorded, home, receipt,
                   tmp_path_factory.getbasetemp())


def test_crafted_names_are_recorded_as_names_never_paths(crafted: Crafted) -> None:
    assert crafted.imported.returncode == 1 and "MISMATCH" in crafted.imported.stdout
    assert set(crafted.recorded) == {*crafted.uids.values(), *crafted.form_uids}
    for rel in crafted.recorded.values():
        name = rel.split("/", 1)[1]
        assert "/" not in name and "\\" not in name and "\x00" not in name, rel
        assert name not in ("", ".", "..") and len(name) <= 200, rel
    assert crafted.recorded[crafted.uids["dotdot"]].endswith("/x-escape.mp4")
    assert crafted.recorded[crafted.uids["windows"]].endswith("/evil-escape.exe")
    assert crafted.recorded[crafted.uids["empty"]].endswith("/unnamed")
    escaped = [p for p in crafted.root.rglob("*")
               if p.name in ("x-escape.mp4", "evil-escape.exe", "form-escape.mp4")]
    assert escaped == []
    assert 0 in [f["size"] for f in crafted.receipt["files"]]  # Upload-Length 0 imported
    assert len(crafted.receipt["files"]) == len(CRAFTED) + 2


def test_recorded_names_keep_no_control_characters(crafted: Crafted) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): _safe_name removes only C0 controls: C1
    controls such as U+009B (CSI) stay in the recorded file name."""
    bad = {uid: rel for uid, rel in crafted.recorded.items()
           if any(unicodedata.category(c) == "Cc" for c in rel)}
    expect(bad == {}, f"control characters kept: {[ascii(r) for r in bad.values()]}")


def test_nothing_a_source_wrote_reaches_the_terminal_as_control_codes(crafted: Crafted
                                                                      ) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): import-intake (MISMATCH lines) and
    intake-messages print a source's file names and messages raw: ESC/OSC, C1 CSI and U+202E
    reach the operator's terminal."""
    assert "clip" in crafted.imported.stdout and "end" in crafted.messages.stdout
    for what, out in (("import-intake", crafted.imported.stdout),
                      ("intake-messages", crafted.messages.stdout)):
        raw = sorted({hex(ord(c)) for c in out if c in "\x1b\x9b\x07\u202e"})
        expect(raw == [], f"{what} printed {raw}")


def test_html_from_a_source_is_escaped_on_home(crafted: Crafted) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in crafted.home
    assert "&lt;b onmouseover=alert(3)&gt;x.mp4" in crafted.home
    assert "<script>alert" not in crafted.home and "<b onmouseover" not in crafted.home


# == a hacked intake (or a policeman who edits the seized disk and gives it back) ============
@dataclass
class Tampered:
    live: Live
    report: dict[str, Any]
    code: int
    uids: dict[str, str]
    attacker_token: str
    messages_after: CliResult
    reply: CliResult
    reply_file: bytes | None
    attacker_identity: str
    outside: Path


@pytest.fixture(scope="module")
def tampered(lives: Callable[..., Live], vault_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Tampered:
    from pyrage import x25519

    live = lives("tampered")
    up = live.data / "uploads"
    _, vt = new_source(live.url)
    attacker, at = new_source(live.url)
    inbox, it = new_source(live.url)
    pen, pt = new_source(live.url)
    d1, d2, d3, d4 = (content(2 * MiB) for _ in range(4))
    uids = {f"v{i}": complete(live, vt, d, name=f"v{i}.mp4",
                              sha=hashlib.sha256(d).hexdigest())
            for i, d in enumerate((d1, d2, d3, d4), 1)}
    secret_name = "протокол допроса Иванова.mp4"
    uids["moved"] = complete(live, vt, b"the victim's file", name=secret_name)
    uids["inbox"] = complete(live, it, b"goes to a symlinked inbox", name="s.bin")
    assert httpx.post(live.url + "/message", data={"text": "hello from P"}, timeout=30,
                      headers={**cookie(pt), "Origin": live.url}).status_code == 303
    assert cli("intake-messages", vault_dir, live.data).returncode == 0  # the vault sees P

    # swap the first pieces of v1 and v2 (same offset and length)
    a, b = (sorted((up / uids[k]).glob("*.age"))[0] for k in ("v1", "v2"))
    tmp = a.with_name("swap")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    # v3: its last piece loses its last age chunk (cut at a chunk boundary)
    last = sorted((up / uids["v3"]).glob("*.age"))[-1]
    last.write_bytes(last.read_bytes()[:-(64 * 1024 + 16)])
    # v4: info.json says it is one piece long
    info = up / uids["v4"] / "info.json"
    data = json.loads(info.read_text())
    data["length"] = MiB
    info.write_text(json.dumps(data))
    # moved: the victim's upload now belongs to the attacker's codename
    info = up / uids["moved"] / "info.json"
    data = json.loads(info.read_text())
    data["source"] = live.sid(attacker)
    info.write_text(json.dumps(data))
    # the inbox of one source is a symlink to a folder elsewhere on the importing machine
    outside = tmp_path_factory.mktemp("outside-the-intake")
    messages = live.data / "sources" / live.sid(inbox) / "messages"
    messages.rename(messages.with_name("messages.real"))
    messages.symlink_to(outside, target_is_directory=True)
    # P's public key replaced by the attacker's
    ident = x25519.Identity.generate()
    src = live.data / "sources" / live.sid(pen) / "source.json"
    data = json.loads(src.read_text())
    data["public"] = str(ident.to_public())
    src.write_text(json.dumps(data))
    # a source folder a kill left half made (between its mkdir and its messages/)
    (live.data / "sources" / secrets.token_hex(32)).mkdir(mode=0o700)

    code, report, _ = run_import(vault_dir, live.data)
    messages_after = cli("intake-messages", vault_dir, live.data, "--json")
    folder = live.data / "sources" / live.sid(pen) / "messages"
    before = set(folder.iterdir())
    reply = cli("intake-reply", vault_dir, live.data, live.sid(pen)[:16], "ответ для P")
    new = [p for p in set(folder.iterdir()) - before if p.name.endswith("-org.age")]
    return Tampered(live, report, code, uids, at, messages_after, reply,
                    new[0].read_bytes() if new else None, str(ident), outside)


def test_pieces_swapped_or_cut_by_a_hacked_intake_are_caught(tampered: Tampered
                                                                     ) -> None:
    report, uids = tampered.report, tampered.uids
    assert tampered.code == 1, report
    assert {m["upload"] for m in report["mismatches"]} == {uids["v1"], uids["v2"]}
    errors = " ".join(e["path"] + " " + e["error"] for e in report["errors"])
    assert uids["v3"] in errors and "v3.mp4" in errors and "decrypt" in errors


def test_an_upload_resized_below_its_pieces_is_reported(tampered: Tampered) -> None:
    errors = " ".join(e["path"] + " " + e["error"] for e in tampered.report["errors"])
    expect(tampered.uids["v4"] in errors, f"not reported; {tampered.report['incomplete']} "
                                          "counted as still arriving")


def test_an_upload_moved_to_another_codename_does_not_leak_its_name(tampered: Tampered
                                                                    ) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): import trusts info.json's `source`: an
    upload moved to the attacker's codename is listed (name, size, SHA-256: metadata the intake
    could not read) in a receipt encrypted to the attacker."""
    names = [f["name"] for r in receipts(tampered.live.url, tampered.attacker_token)
             for f in r["files"]]
    expect("протокол допроса Иванова.mp4" not in names, f"the attacker's receipt lists {names}")


def test_import_writes_nothing_outside_the_intake_folder(tampered: Tampered) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): import follows a symlinked
    sources/<id>/messages and writes the receipt (and a .lock) into a folder outside the intake
    folder."""
    expect(list(tampered.outside.iterdir()) == [],
           f"written outside: {[p.name for p in tampered.outside.iterdir()]}")


def test_a_half_made_source_folder_does_not_break_intake_messages(tampered: Tampered) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): a source folder without messages/ (a
    kill during /new) makes intake-messages fail for every source: FileNotFoundError from
    Store.messages."""
    expect(tampered.messages_after.returncode == 0, tampered.messages_after.stderr)


def test_a_swapped_source_key_does_not_get_the_reply(tampered: Tampered) -> None:
    if tampered.reply_file is None:
        assert tampered.reply.returncode != 0  # refused: safe
        return
    opened = seal.decrypt_for_source(tampered.reply_file, tampered.attacker_identity)
    expect(opened is None, f"the attacker reads the reply: {opened!r}")


def _fifo_intake(live: Live, where: str) -> Path:
    """A finished upload in `live`, then `where` (a file of the folder) made a FIFO."""
    codename, token = new_source(live.url)
    uid = complete(live, token, b"x" * 1000, name="fifo.bin")
    path = {
        "piece": lambda: next((live.data / "uploads" / uid).glob("*.age")),
        "info.json": lambda: live.data / "uploads" / uid / "info.json",
        "source.json": lambda: live.data / "sources" / live.sid(codename) / "source.json",
        "server.key": lambda: live.data / "server.key",
    }[where]()
    path.unlink()
    os.mkfifo(path)
    return path


def test_no_file_of_a_doctored_intake_folder_can_hang_the_import(
        lives: Callable[..., Live], template: Template, tmp_path: Path) -> None:
    from strongroom.ingest.intake import import_intake

    places = ["piece", "info.json", "source.json", "server.key"]
    runs: dict[str, dict[str, Any]] = {}
    threads = {}
    for where in places:
        live = lives(f"fifo-{where.replace('.', '-')}")
        fifo = _fifo_intake(live, where)
        vault = tmp_path / f"vault-{where}"
        shutil.copytree(template.path, vault)
        runs[where] = {"fifo": fifo}

        def run(vault: Path = vault, data: Path = live.data, out: dict[str, Any] = runs[where]
                ) -> None:
            v = open_vault(vault, template.keys)
            try:
                out["report"] = import_intake(v, data)
            except Exception as exc:
                out["error"] = repr(exc)[:200]
            finally:
                v.close()

        threads[where] = threading.Thread(target=run, daemon=True)
        threads[where].start()
    deadline = time.monotonic() + 10
    for t in threads.values():
        t.join(max(deadline - time.monotonic(), 0.1))
    hung = [w for w, t in threads.items() if t.is_alive()]
    for where in hung:  # let each blocked reader see an end of file, so its thread ends
        with contextlib.suppress(OSError):
            os.close(os.open(runs[where]["fifo"], os.O_WRONLY | os.O_NONBLOCK))
    for t in threads.values():
        t.join(60)
    assert "piece" not in hung and "report" in runs["piece"], runs["piece"]
    expect(hung == [], f"still reading a FIFO after 10 s: {hung}")


# == import and its receipts ==================================================================
def test_a_source_that_filled_its_inbox_still_gets_its_receipt(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): add_message counts receipts against
    messages_per_source: a source that sent 1000 messages gets no receipt, the IntakeError
    escapes import-intake (exit 2, 'unexpected'), and its uploads are never marked imported."""
    live = lives("inbox")
    codename, token = new_source(live.url)
    complete(live, token, b"evidence", name="e.bin")
    assert httpx.post(live.url + "/message", data={"text": "hi"}, timeout=30,
                      headers={**cookie(token), "Origin": live.url}).status_code == 303
    folder = live.data / "sources" / live.sid(codename) / "messages"
    one = next(folder.glob("*-source.age")).read_bytes()
    for i in range(2, 1001):  # what 999 more POST /message leave
        (folder / f"{i:06d}-source.age").write_bytes(one)
    code, _, r = run_import(vault_dir, live.data)
    expect(code in (0, 1) and list(folder.glob("*-receipt.age")),
           f"exit {code}: {r.stderr.strip()}")


def test_one_damaged_upload_record_does_not_stop_the_others(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): a damaged info.json (valid JSON, a key
    missing) raises KeyError in Store.upload, which uploads()/sweep() let through: every
    creation by anyone is a 500 and import-intake stops for all sources."""
    live = lives("damaged")
    _, t1 = new_source(live.url)
    complete(live, t1, b"good one", name="good.bin")
    _, t2 = new_source(live.url)
    _, bad = create(live.url, t2, 10)
    info = live.data / "uploads" / bad / "info.json"
    data = json.loads(info.read_text())
    del data["meta"]
    info.write_text(json.dumps(data))
    r, _ = create(live.url, t1, 5)
    code, out, rr = run_import(vault_dir, live.data)
    expect(r.status_code == 201, f"another source's creation: HTTP {r.status_code}")
    expect(code in (0, 1) and out.get("new_originals", 0) >= 1,
           f"import: exit {code} {rr.stderr.strip()}")


def test_a_finished_upload_whose_done_flag_was_lost_is_still_imported(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): Receiver.commit renames the pieces,
    then saves done=True: a kill in between leaves an upload whose HEAD says complete (no tus
    client sends more) but whose done flag is false, so import skips it as 'still arriving' and
    sweep deletes it in 7 days."""
    live = lives("doneflag")
    _, token = new_source(live.url)
    data = content(3 * MiB)
    uid = complete(live, token, data, name="done.bin")
    info = live.data / "uploads" / uid / "info.json"
    d = json.loads(info.read_text())
    d["done"] = False  # the state a kill after the last rename leaves
    info.write_text(json.dumps(d))
    assert head(live.url, token, uid).headers["upload-offset"] == str(len(data))
    code, out, r = run_import(vault_dir, live.data)
    assert code == 0, r.stderr
    expect((live.data / "uploads" / uid / "imported").exists(),
           f"not imported: {out.get('incomplete')} still arriving")


def test_a_patch_that_runs_one_byte_past_the_end_leaves_an_importable_upload(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): a PATCH without a checksum keeps each
    piece as it is written (eager), then runs past Upload-Length and gets 413 before commit:
    the upload holds all its bytes (HEAD says complete, no tus client sends more) but done
    stays false, so import skips it as 'still arriving' and sweep deletes it after 7 days."""
    live = lives("overrun")
    _, token = new_source(live.url)
    data = content(2 * MiB)
    _, uid = create(live.url, token, len(data), meta_header(filename="over.bin"))

    def body() -> Iterator[bytes]:
        yield data
        time.sleep(0.5)  # the pieces are on disk before the extra byte arrives
        yield b"!"

    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    conn.request("PATCH", f"/files/{uid}", body=body(), encode_chunked=True, headers={
        **TUS, **bearer(token), "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 413
    offset = int(head(live.url, token, uid).headers["upload-offset"])
    print("DBG", offset, sorted(p.name for p in (live.data / "uploads" / uid).iterdir()))
    code, _, rr = run_import(vault_dir, live.data)
    assert code == 0, rr.stderr
    expect(offset < len(data) or (live.data / "uploads" / uid / "imported").exists(),
           f"HEAD says {offset} of {len(data)} bytes, but import left it as still arriving")


def test_import_while_the_server_is_receiving(lives: Callable[..., Live],
                                              vault_dir: Path) -> None:
    live = lives("receiving")
    _, token = new_source(live.url)
    complete(live, token, content(MiB), name="a.bin")
    data = content(2 * MiB)
    _, uid = create(live.url, token, len(data), meta_header(filename="b.bin"))
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(request_head("PATCH", f"/files/{uid}", {
            **TUS, **bearer(token), "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(data))}) + data[:3 * MiB // 2])
        code, out, r = run_import(vault_dir, live.data)
        assert code == 0 and out["new_originals"] == 1 and out["incomplete"] == 1, r.stdout
        sock.sendall(data[3 * MiB // 2:])
        assert sock.recv(4096).startswith(b"HTTP/1.1 204")
    code, out, r = run_import(vault_dir, live.data)
    assert code == 0 and out["new_originals"] == 1 and out["incomplete"] == 0, r.stdout
    assert out["receipts"] == 1


def test_a_rerun_after_a_kill_between_receipt_and_mark_sends_no_second_receipt(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): the receipt is written before the
    uploads are marked imported: a kill between the two (simulated: the marker removed) and the
    re-run sends the source a second receipt for the same files."""
    live = lives("rereceipt")
    _, token = new_source(live.url)
    uid = complete(live, token, b"once", name="once.bin")
    assert run_import(vault_dir, live.data)[0] == 0
    (live.data / "uploads" / uid / "imported").unlink()
    assert run_import(vault_dir, live.data)[0] == 0
    got = receipts(live.url, token)
    expect(len(got) == 1, f"{len(got)} receipts for one file")


def test_purge_while_a_source_holds_its_finished_upload_open(
        lives: Callable[..., Live], vault_dir: Path) -> None:
    """A source holds its own finished upload open (a chunked PATCH that sends nothing):
    the import stores and receipts it, purges the rest, and says what it could not purge."""
    live = lives("purgebusy")
    _, t1 = new_source(live.url)
    held = complete(live, t1, b"held open", name="held.bin")
    _, t2 = new_source(live.url)
    other = complete(live, t2, b"another source's file", name="other.bin")
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(request_head("PATCH", f"/files/{held}", {
            **TUS, **bearer(t1), "Upload-Offset": "9",
            "Content-Type": "application/offset+octet-stream",
            "Transfer-Encoding": "chunked"}))
        poll(lambda: patch(live.url, t1, held, 9, b"").status_code == 423, timeout=10,
             what="the held PATCH to take the upload's lock")
        code, out, r = run_import(vault_dir, live.data, "--purge-imported")
    assert code == 1, r.stderr
    assert out["new_originals"] == 2 and out["receipts"] == 2 and out["purged"] == 1
    assert [e["path"] for e in out["errors"]] == [held]
    assert not (live.data / "uploads" / other).exists()
    assert (live.data / "uploads" / held / "imported").exists()


def test_an_import_killed_midway_then_run_again(lives: Callable[..., Live], template: Template,
                                                tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(template.path, vault)
    live = lives("killimport")
    _, token = new_source(live.url)
    datas = [content(8 * MiB) for _ in range(3)]
    uids = [complete(live, token, d, name=f"k{i}.bin", sha=hashlib.sha256(d).hexdigest())
            for i, d in enumerate(datas)]
    blobs = vault / "blobs"

    def count() -> int:
        return sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0

    before = count()
    proc = subprocess.Popen([*CLI, "import-intake", str(vault), str(live.data), "--json"],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    poll(lambda: count() > before or proc.poll() is not None, timeout=120, interval=0.005,
         what="the import to write its first blob")
    killed_midway = proc.poll() is None
    proc.kill()
    proc.communicate(timeout=30)
    assert killed_midway, "the import ended before it could be killed"
    code, out, r = run_import(vault, live.data)
    assert code == 0 and out["mismatches"] == [], r.stdout + r.stderr
    assert len(sighted(vault, uids)) == 3
    got = receipts(live.url, token)
    assert len(got) == 1 and sorted(f["name"] for f in got[0]["files"]) == [
        "k0.bin", "k1.bin", "k2.bin"]
    assert {f["sha256"] for f in got[0]["files"]} == {hashlib.sha256(d).hexdigest()
                                                      for d in datas}
    assert cli("verify", vault).returncode == 0


def test_what_kills_leave_behind_is_cleaned_or_skipped(
        lives: Callable[..., Live], public_key: str, vault_dir: Path) -> None:
    """State a kill at other moments leaves: a creation half made (.new-*), a piece half
    written (.part-*), a message cut short (written in place)."""
    from strongroom.intake.app import IntakeSettings, create_app

    live = lives("leftovers")
    _, token = new_source(live.url)
    uid = complete(live, token, b"whole", name="w.bin")
    assert httpx.post(live.url + "/message", data={"text": "первое"}, timeout=30,
                      headers={**cookie(token), "Origin": live.url}).status_code == 303
    uploads = live.data / "uploads"
    (uploads / f".new-{secrets.token_hex(16)}").mkdir()
    (uploads / uid / ".part-0123456789abcdef").write_bytes(b"age-encryption.org/v1\n-> X")
    folder = next((live.data / "sources").iterdir()) / "messages"
    first = next(folder.glob("*-source.age")).read_bytes()
    (folder / "000002-source.age").write_bytes(first[:len(first) // 2])
    create_app(IntakeSettings(live.data, public_key, cost=CHEAP))  # a restart's recover()
    assert not list(uploads.glob(".new-*")) and not list(uploads.glob("*/.part-*"))
    assert head(live.url, token, uid).headers["upload-offset"] == "5"
    home = httpx.get(live.url + "/home", headers=cookie(token), timeout=30)
    assert home.status_code == 200 and "первое" in home.text
    assert [m["text"] for m in httpx.get(live.url + "/api/messages", headers=bearer(token),
                                         timeout=30).json()] == ["первое"]
    r = cli("intake-messages", vault_dir, live.data, "--json")
    assert r.returncode == 0 and "unreadable" in r.stdout


def test_a_kill_during_a_plain_form_upload(public_key: str, tmp_path: Path) -> None:
    """A real server, SIGKILLed while a no-JS form streams a 7 MiB file.

    Broke at 0f9a385 (fixed in 59cdd8f): a form upload cut by a server kill
    stays 'receiving' with the multipart body's length: a form cannot resume, so it only holds
    quota (and shows 0%) until it expires; recover() drops .new-* creations but not these."""
    s = Server(tmp_path / "data", public_key, tmp_path, ("--max-file-gb", "0.1")).start()
    try:
        _, token = new_source(s.url)
        data = content(7 * MiB)
        body, ctype = multipart([("file", "k.mp4", data)])
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
            sock.sendall(request_head("POST", "/upload", {
                **cookie(token), "Content-Type": ctype, "Content-Length": str(len(body))}))
            sock.sendall(body[:5 * MiB])
            poll(lambda: list((s.data / "uploads").glob("*/.part-*")), timeout=30,
                 what="a piece of the form on disk")
            assert not holds((s.data, s.tmp), needles(data))
            s.kill()
        s.start()
        assert not list(s.data.rglob(".part-*"))
        assert not holds((s.data, s.tmp), needles(data))
        r, uid = create(s.url, token, 3)
        assert r.status_code == 201 and patch(s.url, token, uid, 0, b"abc").status_code == 204
        left = [u for u in httpx.get(s.url + "/api/uploads", headers=bearer(token),
                                     timeout=30).json() if not u["done"]]
        expect(left == [], "a form upload, which cannot resume, is left 'receiving' "
                           f"(holding {left[0]['length'] if left else 0} bytes of quota "
                           "for 7 days)")
    finally:
        s.kill()


def test_a_full_disk_is_a_507_not_a_500(public_key: str, tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): Store.add_message and Receiver.flush
    let ENOSPC through: a full disk is a 500, not 507."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with small_tmpfs(disk, "6m"):
        live = start_live(disk / "data", public_key,
                          limits=Limits(max_file=10**7, segment=256 * 1024))
        try:
            _, token = new_source(live.url)
            (ra, a), (rb, b) = (create(live.url, token, 4_000_000) for _ in range(2))
            assert ra.status_code == rb.status_code == 201
            assert patch(live.url, token, a, 0, secrets.token_bytes(4_000_000)
                         ).status_code == 204
            second = patch(live.url, token, b, 0, secrets.token_bytes(4_000_000))
            msg = httpx.post(live.url + "/message", data={"text": "x" * 3000}, timeout=30,
                             headers={**cookie(token), "Origin": live.url})
            newcomer = httpx.post(live.url + "/api/sources", json={}, timeout=30)
            expect(second.status_code == 507 and msg.status_code in (303, 507)
                   and newcomer.status_code in (200, 507),
                   f"on a full disk: PATCH HTTP {second.status_code}, message HTTP "
                   f"{msg.status_code}, new codename HTTP {newcomer.status_code}")
        finally:
            live.stop()


# == strongroom send ==========================================================================
def test_send_refuses_a_folder_or_a_fifo_and_sends_a_file_given_twice_once(
        site: Live, tmp_path: Path) -> None:
    from strongroom.intake import client

    with pytest.raises(client.SendError, match="not a file"):
        client.send(site.url, [tmp_path])
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(client.SendError, match="not a file"):
        client.send(site.url, [tmp_path / "fifo"])
    f = tmp_path / "twice.bin"
    f.write_bytes(b"the same file twice " * 100)
    report = client.send(site.url, [f, f], lang="en")
    assert report.files[0].upload == report.files[1].upload
    assert report.files[1].sent_bytes == 0
    token = httpx.post(site.url + "/api/login", json={"codename": report.codename},
                       timeout=30).json()["token"]
    assert len(httpx.get(site.url + "/api/uploads", headers=bearer(token), timeout=30).json()
               ) == 1


def test_send_starts_over_when_its_upload_expired(site: Live, tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): send picks the upload with its
    fingerprint even when it expired: HEAD says 410 and every run stops with 'could not ask the
    offset: HTTP 410' (only another source's creation sweeps it away)."""
    from strongroom.intake import client

    codename, token = new_source(site.url)
    data = secrets.token_bytes(300_000)
    f = tmp_path / "late.mp4"
    f.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    fp = seal.fingerprint(client.fingerprint_key(codename), sha, len(data))
    _, uid = create(site.url, token, len(data), meta_header(filename="late.mp4",
                                                            fingerprint=fp))
    assert patch(site.url, token, uid, 0, data[:1000]).status_code == 204
    info = site.data / "uploads" / uid / "info.json"
    aged = json.loads(info.read_text())
    aged["touched"] -= 8 * DAY  # a Tor outage of eight days
    info.write_text(json.dumps(aged))
    try:
        client.send(site.url, [f], codename=codename, give_up_after=2)
    except client.SendError as exc:
        raise Break(f"send: {exc}") from None
    ups = httpx.get(site.url + "/api/uploads", headers=bearer(token), timeout=30).json()
    assert any(u["done"] and u["length"] == len(data) for u in ups)


def test_send_notices_a_file_that_changes_while_it_is_hashed(site: Live, tmp_path: Path
                                                             ) -> None:
    from strongroom.intake import client

    f = tmp_path / "moving.mp4"
    f.write_bytes(secrets.token_bytes(4 * MiB))
    final = secrets.token_bytes(4 * MiB)

    def progress(label: str, total: int, done: int) -> Callable[[int], None]:
        def advance(n: int) -> None:
            if label.startswith("hashing") and f.read_bytes() != final:
                f.write_bytes(final)  # the copy into place goes on while send hashes
        return advance

    try:
        report = client.send(site.url, [f], lang="en", chunk=MiB, progress=progress)
    except client.SendError:
        return  # it said so: safe
    expect(report.files[0].sha256 == hashlib.sha256(final).hexdigest(),
           "send reported a SHA-256 of bytes it did not send")


class _Fake(BaseHTTPRequestHandler):
    """An intake that answers nonsense (server.mode says which)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_POST(self) -> None:
        self._body()
        mode = self.server.mode  # type: ignore[attr-defined]
        if self.path == "/api/login":
            self._reply(200, {"Content-Type": "application/json"}, b'{"token": "t"}')
        elif self.path == "/api/sources":
            if mode == "garbage":
                self._reply(200, {"Content-Type": "text/html"}, b"<html>hello</html>")
            else:
                self._reply(200, {"Content-Type": "application/json"}, json.dumps(
                    {"codename": "a b c d e f g", "token": "t"}).encode())
        else:
            self._reply(201, {"Location": "/files/abc"})

    def do_GET(self) -> None:
        body = b"[]"
        if self.server.mode == "inbox" and self.path == "/api/messages":  # type: ignore[attr-defined]
            body = json.dumps([
                {"seq": 1, "from": "org", "text": "hello " + HOSTILE_TEXT + " \u202eevil"},
                {"seq": 2, "from": "receipt", "receipt": {"files": [{
                    "name": "a\x1b]0;owned\x07\x9b2J.mp4", "size": 1, "sha256": "0" * 64,
                    "status": "received"}]}}]).encode()
        self._reply(200, {"Content-Type": "application/json"}, body)

    def do_HEAD(self) -> None:
        self._reply(200, {"Upload-Offset": "0"})

    def do_PATCH(self) -> None:
        body = self._body()
        server: Any = self.server
        server.patches += 1
        if server.patches > 20:
            self._reply(404)
        elif server.mode == "stuck":
            self._reply(204, {"Upload-Offset": "0"})
        elif server.mode == "conflict":
            self._reply(409)
        else:  # beyond: more than was sent, more than the file
            offset = int(self.headers["Upload-Offset"]) + len(body) + 1000
            self._reply(204, {"Upload-Offset": str(offset)})


class _FakeServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # no traceback printed from this thread (see _Quiet)


@pytest.fixture
def fake() -> Iterator[Callable[[str], tuple[str, Any]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str) -> tuple[str, Any]:
        srv: Any = _FakeServer(("127.0.0.1", 0), _Fake)
        srv.mode, srv.patches = mode, 0
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("mode", ["stuck", "conflict", "beyond"])
def test_send_stops_when_the_intake_makes_no_sense(
        mode: str, fake: Callable[[str], tuple[str, Any]], tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): send PATCHed for ever when every
    204 said Upload-Offset 0 (stuck) or every PATCH got 409 (conflict), and reported success
    when a 204 claimed an offset past the file (beyond)."""
    from strongroom.intake import client

    url, srv = fake(mode)
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 5000)
    try:
        client.send(url, [f], give_up_after=2)
    except client.SendError:
        expect(srv.patches <= 10, f"{srv.patches} PATCHes before it stopped")
    else:
        raise Break(f"send reported success after {srv.patches} PATCH(es)")


def test_send_against_an_intake_that_answers_garbage_fails_with_one_line(
        fake: Callable[[str], tuple[str, Any]], tmp_path: Path) -> None:
    url, _ = fake("garbage")
    f = tmp_path / "x.bin"
    f.write_bytes(b"x")
    r = cli("send", url, f, "--give-up-after", "2", "--json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert json.loads(r.stdout)["error"] and r.stderr.count("\n") == 1


def test_send_read_shows_no_control_codes_from_the_intake(
        fake: Callable[[str], tuple[str, Any]]) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): send --read prints the intake's replies
    and receipt names raw: a hacked intake writes OSC/C1/bidi control codes straight into the
    source's terminal."""
    url, _ = fake("inbox")
    r = cli("send", url, "--read", "--codename", codenames.generate("en"))
    assert r.returncode == 0 and "hello" in r.stdout and "received" in r.stdout, r.stderr
    raw = sorted({hex(ord(c)) for c in r.stdout if c in "\x1b\x9b\x07\u202e"})
    expect(raw == [], f"send --read printed {raw}")


# == a careless operator =======================================================================
def test_a_private_key_given_as_the_public_key_is_not_echoed(template: Template,
                                                             tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): check_recipient echoes the first 40
    characters of what it was given: the vault's private key pasted as --public-key puts 24 of
    its secret characters on the terminal (and in any service log)."""
    secret = template.keys.identity_text()
    r = cli("intake-serve", "--data", tmp_path / "d", "--public-key", secret)
    assert r.returncode == 2
    body = secret.split("1", 1)[1]
    said = r.stdout + r.stderr
    leaked = [body[i:i + 8] for i in range(len(body) - 8) if body[i:i + 8] in said]
    expect(leaked == [], f"{len(leaked)} 8-character runs of the private key printed")


def _serve_attempt(args: list[str], scratch: Path) -> tuple[bool, str]:
    """Start `intake-serve ARGS`; whether it served, and what it said."""
    port = free_port()
    log = scratch / f"serve-{port}.log"
    env = {k: v for k, v in cli_env().items() if k != "STRONGROOM_PASSPHRASE"}
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "intake-serve", *args, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

    def settled() -> str | None:
        if proc.poll() is not None:
            return "exited"
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError:
            return None
        return "served"

    state = poll(settled, timeout=60, interval=0.1, what="intake-serve to serve or stop")
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return state == "served", log.read_text()


def test_intake_serve_refuses_a_public_address(public_key: str, tmp_path: Path) -> None:
    """Broke at 0f9a385 (fixed in 59cdd8f): intake-serve binds any --host without a
    word (the review app refuses a public address): on 0.0.0.0 the intake answers on the clear
    network, where sources' addresses are seen, instead of only behind the onion service."""
    served, said = _serve_attempt(["--data", str(tmp_path / "d"), "--public-key", public_key,
                                   "--host", "0.0.0.0"], tmp_path)  # noqa: S104
    expect(not served, f"it served on every interface: {said.strip()[:200]}")


@pytest.mark.parametrize("where", [
    "inside",  # broke at 0f9a385 (it served from inside the vault); fixed since
    pytest.param("around"),
])
def test_intake_serve_refuses_a_data_folder_mixed_with_the_vault(
        where: str, template: Template, tmp_path: Path) -> None:
    vault = tmp_path / "shared" / "vault"
    shutil.copytree(template.path, vault)
    data = vault / "intake" if where == "inside" else vault.parent
    served, said = _serve_attempt(["--data", str(data), "--vault", str(vault)], tmp_path)
    expect(not served, f"it served from {where} the vault: {said.strip()[:200]}")
