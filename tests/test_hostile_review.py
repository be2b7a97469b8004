"""A hostile user against the review app (issue 14): each test is one attack and asserts the
SAFE behaviour, so it passes where the app held and fails where the attack got through.

In-process through httpx (Starlette's TestClient) where HTTP semantics are enough; a real
uvicorn in a thread, spoken to over raw sockets, where the wire matters (chunked bodies,
aborted downloads, stalled headers, path tricks a client library would normalise away)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from review_fixtures import (  # noqa: F401 - fixtures
    PASSWORD,
    Reviewed,
    app,
    client,
    reviewed,
    serving,
    session_for,
)
from strongroom.catalogue.models import CustodyEvent, User
from strongroom.review import actions, security
from strongroom.review.app import CSP, MAX_FORM, create_app


@pytest.fixture(scope="module")
def served(app: Any) -> Iterator[tuple[str, int]]:
    with serving(app) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def cookie_client(app: Any, r: Reviewed, role: str) -> tuple[TestClient, str]:
    """A browser-like client: the session cookie, and the page's CSRF token."""
    c = client(app, r, role, bearer=False)
    m = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/me").text)
    assert m
    return c, m.group(1)


def events(r: Reviewed, action: str | None = None,
           subject: str | None = None) -> list[CustodyEvent]:
    with r.vault.catalogue.read() as s:
        q = select(CustodyEvent).order_by(CustodyEvent.seq)
        if action:
            q = q.where(CustodyEvent.action == action)
        if subject:
            q = q.where(CustodyEvent.subject == subject)
        rows = list(s.scalars(q))
        for e in rows:
            s.expunge(e)
        return rows


def secret_of(r: Reviewed, username: str) -> str:
    return r.secrets[username]


def new_user(r: Reviewed, role: str, prefix: str = "u") -> str:
    name = f"{prefix}{secrets.token_hex(4)}"
    r.secrets[name] = actions.add_user(r.vault, name, role, PASSWORD)
    return name


def login_form(c: TestClient) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    return m.group(1)


def raw(addr: tuple[str, int], data: bytes, *, timeout: float = 10) -> bytes:
    """Send `data` on a fresh connection; everything the server answers until it closes or
    goes quiet."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def status_of(answer: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert m, answer[:200]
    return int(m.group(1))


def failed_logins(r: Reviewed, username: str) -> int:
    with r.vault.catalogue.read() as s:
        return int(s.scalar(select(User.failed_logins).where(User.username == username)) or 0)


# ================================================================================================
# Signing in: TOTP, CSRF tokens, enumeration, brute force, races
# ================================================================================================
@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６", "12345٦"])
def test_unicode_digits_as_totp_are_a_counted_401_not_a_500_password_oracle(
        app: Any, reviewed: Reviewed, code: str) -> None:
    """Arabic-Indic or full-width digits pass `str.isdigit()`; `secrets.compare_digest` then
    raises on non-ASCII text. With the right password that is a 500 (and no failed attempt
    counted), with a wrong one a 401: an oracle for the password that skips the TOTP and the
    back-off."""
    name = new_user(reviewed, "investigator", "uni")
    r = client(app).post("/api/login", json={"username": name, "password": PASSWORD,
                                             "totp": code})
    assert r.status_code == 401, (r.status_code, r.text)
    assert failed_logins(reviewed, name) == 1


def test_a_non_ascii_csrf_field_on_the_sign_in_form_is_a_403_not_a_500(app: Any) -> None:
    c = client(app)
    login_form(c)
    r = c.post("/login", data={"username": "admin", "password": PASSWORD, "totp": "123456",
                               "csrf": "é" * 10}, follow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])


def test_a_non_ascii_csrf_token_on_a_signed_in_change_is_a_403_not_a_500(
        app: Any, reviewed: Reviewed) -> None:
    c, _token = cookie_client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    by_header = c.post(f"/api/clips/{sha}/review", json={"status": "incident"},
                       headers={"X-CSRF-Token": "\xe9t\xe9".encode("latin-1")})
    by_form = c.post(f"/clips/{sha}/review", data={"status": "incident", "csrf": "été"},
                     follow_redirects=False)
    assert (by_header.status_code, by_form.status_code) == (403, 403), (
        by_header.text[:200], by_form.text[:200])


def test_every_answer_even_a_500_carries_the_csp_and_anti_framing_headers(
        app: Any, reviewed: Reviewed) -> None:
    """A 500 page is HTML too: if it can be framed or run inline script, clickjacking and XSS
    protections end exactly where the app breaks. (Any 500 will do; a non-ASCII login CSRF
    field is one where this app gives one.)"""
    c = client(app)
    login_form(c)
    answers = [c.get("/"), c.get("/login"), c.get("/static/app.js"),
               client(app, reviewed, "reviewer").get(f"/clips/{reviewed.clips[1]}"),
               c.post("/login", data={"username": "x", "password": "y", "totp": "1",
                                      "csrf": "é"}, headers={"accept": "text/html"})]
    for r in answers:
        assert r.headers.get("content-security-policy") == CSP, (r.status_code, r.url)
        assert r.headers.get("x-frame-options") == "DENY", (r.status_code, r.url)


def test_a_locked_account_and_an_unknown_name_get_the_same_answer(app: Any,
                                                                   reviewed: Reviewed) -> None:
    """User enumeration: after a few wrong passwords a real account answers 'too many failed
    attempts: wait N s', while a name that does not exist keeps answering 'wrong user name,
    password or code' however often it is tried."""
    real = new_user(reviewed, "reviewer", "enum")
    c = client(app)
    answers: dict[str, list[str]] = {real: [], "no-such-person": []}
    for name in answers:
        for _ in range(security.BACKOFF_AFTER + 2):
            r = c.post("/api/login", json={"username": name, "password": "wrong password!",
                                           "totp": "123456"})
            answers[name].append(r.json().get("error", ""))
    assert answers[real] == answers["no-such-person"], answers


def test_parallel_wrong_passwords_cannot_outrun_the_back_off(served: tuple[str, int],
                                                             reviewed: Reviewed) -> None:
    """The gate reads the failure count, then Argon2 takes its time, then the count goes up:
    a burst of simultaneous guesses all pass the gate. Safe: at most BACKOFF_AFTER guesses are
    actually checked before the back-off applies."""
    import httpx

    name = new_user(reviewed, "investigator", "burst")
    url = f"http://{served[0]}:{served[1]}/api/login"

    def guess(i: int) -> str:
        r = httpx.post(url, json={"username": name, "password": f"guess number {i:04d}",
                                  "totp": "123456"}, timeout=60)
        return str(r.json().get("error", ""))

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(guess, range(24)))
    checked = sum("wrong user name" in a for a in answers)
    assert checked <= security.BACKOFF_AFTER, (
        f"{checked} of 24 simultaneous guesses were checked; "
        f"{failed_logins(reviewed, name)} failures counted")


def test_a_totp_code_is_good_once_even_for_two_simultaneous_sign_ins(
        served: tuple[str, int], reviewed: Reviewed) -> None:
    import httpx

    name = new_user(reviewed, "investigator", "replay")
    code = security.current_totp(secret_of(reviewed, name))
    url = f"http://{served[0]}:{served[1]}/api/login"
    barrier = threading.Barrier(6)

    def sign_in(_i: int) -> int:
        barrier.wait()
        return httpx.post(url, json={"username": name, "password": PASSWORD, "totp": code},
                          timeout=60).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(sign_in, range(6)))
    assert codes.count(200) == 1, codes


def test_a_locked_account_can_be_unlocked_by_an_admin_in_the_app(
        app: Any, reviewed: Reviewed) -> None:
    """Lockout as denial of service: anyone who knows a name locks it for an hour with ten
    requests (renewable forever). The message promises 'an admin can unlock it sooner'; the
    admin's page and API must offer that."""
    victim = new_user(reviewed, "investigator", "victim")
    for _ in range(security.LOCKOUT_AFTER):
        with reviewed.vault.write(checkpoint=False) as s:
            s.execute(update(User).where(User.username == victim).values(locked_until=None))
        with pytest.raises(actions.LoginFailed):
            actions.login(reviewed.vault, victim, "wrong password, long", "123456")
    admin = client(app, reviewed, "admin")
    page = admin.get("/admin/users").text
    schema = admin.get("/api/openapi.json").json()
    assert "unlock" in page.lower() or any("unlock" in p for p in schema["paths"]), (
        "no way for an admin to unlock a locked account")


def test_sign_in_cookies_resist_cookie_tossing_over_tls(app: Any, reviewed: Reviewed) -> None:
    """A sibling (sub)domain, or plain-http page on the same host, can set `sr_login` and
    `sr_session` for this site: with a double-submit sign-in token that is a login CSRF (the
    victim is signed in as the attacker and records their work there). Over TLS the
    `__Host-` prefix makes the browser refuse such cookies."""
    tls = create_app(reviewed.vault.settings, reviewed.vault, secure_cookies=True)
    c = TestClient(tls, base_url="https://testserver", raise_server_exceptions=False)
    r = c.get("/login")
    names = [h.split("=", 1)[0] for h in r.headers.get_list("set-cookie")]
    assert names and all(n.startswith("__Host-") for n in names), names


def test_a_session_cookie_planted_before_sign_in_is_replaced(app: Any,
                                                             reviewed: Reviewed) -> None:
    """Session fixation: whatever sr_session the browser held before, signing in issues a
    fresh token, and a made-up planted token never becomes a session."""
    name = new_user(reviewed, "lawyer", "fix")
    c = client(app)
    c.cookies.set("sr_session", "planted-by-the-attacker-" + "x" * 20)
    token = login_form(c)
    r = c.post("/login", data={"username": name, "password": PASSWORD, "csrf": token,
                               "totp": security.current_totp(secret_of(reviewed, name))},
               follow_redirects=False)
    assert r.status_code == 303
    fresh = r.cookies.get("sr_session")
    assert fresh and not fresh.startswith("planted")
    assert actions.person(reviewed.vault, "planted-by-the-attacker-" + "x" * 20) is None


def test_the_sign_in_redirect_goes_nowhere_but_home(app: Any, reviewed: Reviewed) -> None:
    name = new_user(reviewed, "lawyer", "redir")
    c = client(app)
    token = login_form(c)
    r = c.post("/login?next=//evil.example/&return_to=https://evil.example/",
               data={"username": name, "password": PASSWORD, "csrf": token,
                     "next": "https://evil.example/",
                     "totp": security.current_totp(secret_of(reviewed, name))},
               headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_cross_site_sign_in_without_the_login_cookie_is_refused(app: Any,
                                                                  reviewed: Reviewed) -> None:
    name = new_user(reviewed, "lawyer", "xsite")
    r = client(app).post("/login", data={"username": name, "password": PASSWORD,
                                         "csrf": "guess",
                                         "totp": security.current_totp(
                                             secret_of(reviewed, name))},
                         follow_redirects=False)
    assert r.status_code == 403 and "sr_session" not in r.headers.get("set-cookie", "")


def test_a_disabled_users_live_cookie_and_token_stop_at_once(app: Any,
                                                             reviewed: Reviewed) -> None:
    name = new_user(reviewed, "investigator", "gone")
    bearer = actions.login(reviewed.vault, name, PASSWORD,
                           security.current_totp(secret_of(reviewed, name)))
    b = client(app)
    b.headers["Authorization"] = f"Bearer {bearer}"
    assert b.get("/api/clips").status_code == 200
    with reviewed.vault.catalogue.read() as s:
        uid = s.scalar(select(User.id).where(User.username == name))
    admin, csrf = cookie_client(app, reviewed, "admin")
    assert admin.post(f"/admin/users/{uid}/disable", data={"csrf": csrf},
                      follow_redirects=False).status_code == 303
    assert b.get("/api/clips").status_code == 401
    assert b.get(f"/clips/{reviewed.clips[0]}/poster.jpg").status_code == 401
    with pytest.raises(actions.LoginFailed):
        actions.login(reviewed.vault, name, PASSWORD,
                      security.current_totp(secret_of(reviewed, name), at=time.time() + 30))


def test_a_stolen_token_dies_with_log_out_everywhere(app: Any, reviewed: Reviewed) -> None:
    name = new_user(reviewed, "investigator", "stolen")
    token = actions.login(reviewed.vault, name, PASSWORD,
                          security.current_totp(secret_of(reviewed, name)))
    thief = client(app)
    thief.cookies.set("sr_session", token)
    owner = client(app)
    owner.headers["Authorization"] = "Bearer " + actions.login(
        reviewed.vault, name, PASSWORD,
        security.current_totp(secret_of(reviewed, name), at=time.time() + 30),
        clock=time.time() + 30)
    assert thief.get("/").status_code == 200
    assert owner.post("/api/logout", params={"everywhere": True}).status_code == 200
    assert thief.get("/", headers={"accept": "application/json"}).status_code == 401


# ================================================================================================
# Roles: a reviewer outside their clips, a lawyer changing evidence
# ================================================================================================
def test_a_reviewer_reaches_no_byte_of_a_clip_not_assigned_to_them(app: Any,
                                                                   reviewed: Reviewed) -> None:
    c, csrf = cookie_client(app, reviewed, "reviewer")
    other = reviewed.clips[1]
    gets = [f"/clips/{other}", f"/api/clips/{other}", f"/clips/{other}/safe.mp4",
            f"/clips/{other}/poster.jpg", f"/clips/{other}/thumb.jpg",
            f"/clips/{other}/clear.mp4", f"/clips/{other}/clear-poster.jpg",
            f"/clips/{other.upper()}", f"/clips/{other}%00", "/api/clips?facility=&camera="]
    for path in gets[:-1]:
        r = c.get(path, headers={"Range": "bytes=0-"})
        assert r.status_code in (403, 404), (path, r.status_code)
    listed = [x["sha256"] for x in c.get(gets[-1]).json()["clips"]]
    assert listed == [reviewed.clips[0]]
    h = {"X-CSRF-Token": csrf}
    for path, body in ((f"/api/clips/{other}/reveal", None),
                       (f"/api/clips/{other}/hide", None),
                       (f"/api/clips/{other}/exposure", {"seconds": 5}),
                       (f"/api/clips/{other}/review", {"status": "no incident"}),
                       (f"/api/clips/{other}/download", {"reason": "curious"})):
        r = c.post(path, json=body, headers=h)
        assert r.status_code == 403, (path, r.status_code)
    assert not [e for e in events(reviewed, "revealed", f"original:{other}")
                if "reviewer" in e.actor]


def test_a_reviewer_cannot_assign_clips_to_themself(app: Any, reviewed: Reviewed) -> None:
    c, csrf = cookie_client(app, reviewed, "reviewer")
    for sha in reviewed.clips[:2]:
        r = c.post(f"/clips/{sha}/review", data={"csrf": csrf, "assign_to": "reviewer"},
                   follow_redirects=False)
        assert r.status_code == 403, (sha, r.status_code)
        r = c.post(f"/api/clips/{sha}/review", json={"assign_to": "reviewer"},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
    listed = [x["sha256"] for x in c.get("/api/clips").json()["clips"]]
    assert listed == [reviewed.clips[0]]


def test_a_lawyer_cannot_change_evidence_by_any_door(app: Any, reviewed: Reviewed) -> None:
    sha = reviewed.clips[2]
    before = client(app, reviewed, "admin").get(f"/api/clips/{sha}").json()
    c, csrf = cookie_client(app, reviewed, "lawyer")
    tries = [
        c.post(f"/clips/{sha}/review", data={"csrf": csrf, "status": "no incident",
                                              "note": "nothing here"}),
        c.post(f"/clips/{sha}/review", data={"csrf": csrf, "status": "no incident"},
               headers={"HX-Request": "true", "X-CSRF-Token": csrf}),
        c.post(f"/api/clips/{sha}/review", json={"status": "no incident", "unassign": True},
               headers={"X-CSRF-Token": csrf}),
        c.post(f"/api/clips/{sha}/download", json={"reason": "x"},
               headers={"X-CSRF-Token": csrf}),
        c.post("/api/users", json={"username": "lawyer2", "role": "admin",
                                   "password": PASSWORD}, headers={"X-CSRF-Token": csrf}),
        c.post("/admin/users/1/disable", data={"csrf": csrf}),
    ]
    assert [t.status_code for t in tries] == [403] * len(tries)
    after = client(app, reviewed, "admin").get(f"/api/clips/{sha}").json()
    assert (after["status"], after["note"]) == (before["status"], before["note"])


def test_unassigning_a_reviewer_ends_their_live_reveal(app: Any, reviewed: Reviewed) -> None:
    sha = reviewed.clips[2]
    name = new_user(reviewed, "reviewer", "rev")
    admin = client(app, reviewed, "admin")
    assert admin.post(f"/api/clips/{sha}/review", json={"assign_to": name}).status_code == 200
    rev = client(app)
    rev.headers["Authorization"] = "Bearer " + actions.login(
        reviewed.vault, name, PASSWORD, security.current_totp(secret_of(reviewed, name)))
    assert rev.post(f"/api/clips/{sha}/reveal").status_code == 200
    assert rev.get(f"/clips/{sha}/clear.mp4", headers={"Range": "bytes=0-1"}).status_code == 206
    assert admin.post(f"/api/clips/{sha}/review", json={"unassign": True}).status_code == 200
    assert rev.get(f"/clips/{sha}/clear.mp4").status_code == 403
    assert rev.get(f"/clips/{sha}/clear-poster.jpg").status_code == 403


def test_nothing_a_non_admin_receives_holds_acquisitions_secrets_or_hashes(
        app: Any, reviewed: Reviewed) -> None:
    with reviewed.vault.catalogue.read() as s:
        hashes = [h for h in s.scalars(select(User.password_hash)) if h]
    forbidden = ["USB stick from a source", "$argon2", str(reviewed.path), "Traceback",
                 *[h[-22:] for h in hashes], *reviewed.secrets.values()]
    sha = reviewed.clips[0]
    for role in ("investigator", "lawyer", "reviewer"):
        c = client(app, reviewed, role)
        token = c.headers["Authorization"][7:]
        for path in ("/", "/me", "/api/me", f"/clips/{sha}", f"/api/clips/{sha}",
                     "/api/clips", "/api/openapi.json", "/admin/users", "/api/users",
                     "/admin/acquisitions", "/api/acquisitions", f"/clips/{'0' * 64}",
                     "/nope"):
            text = c.get(path).text
            for bad in [*forbidden, token]:
                assert bad not in text, (role, path, bad[:30])


# ================================================================================================
# XSS and injection through every field a hostile party controls
# ================================================================================================
XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _no_live_markup(text: str) -> None:
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "onerror=alert(2)>" not in text.replace("&gt;", "")  # only escaped copies


def test_html_in_camera_and_facility_names_is_escaped_everywhere(app: Any,
                                                                 reviewed: Reviewed) -> None:
    """Camera labels come from OCR of the hostile footage, and facility names from people:
    map and rename them to markup and look at every page that shows them."""
    from strongroom.catalogue.models import Camera
    from strongroom.catalogue.places import map_camera, rename_camera

    with reviewed.vault.catalogue.read() as s:
        labels = list(s.scalars(select(Camera.label).order_by(Camera.id)))
    assert labels, "the pipeline read no camera label"
    rename_camera(reviewed.vault, labels[-1], "CAM " + XSS)
    map_camera(reviewed.vault, "CAM " + XSS, "Facility " + XSS)
    for role in ("admin", "reviewer"):
        c = client(app, reviewed, role)
        for path in ["/", *[f"/clips/{sha}" for sha in reviewed.clips],
                     "/?camera=" + XSS, "/?facility=" + XSS]:
            r = c.get(path)
            _no_live_markup(r.text)
    shown = client(app, reviewed, "admin").get("/").text
    assert "CAM &#34;&gt;&lt;script&gt;alert(1)" in shown  # the label is there, escaped


def test_html_in_query_strings_notes_and_cookies_is_escaped(app: Any, reviewed: Reviewed
                                                            ) -> None:
    c, csrf = cookie_client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    for path in ("/?status=" + XSS, "/?day=" + XSS, f"/clips/{sha}?x=" + XSS,
                 "/api/clips?status=" + XSS, "/nope" + XSS):
        r = c.get(path, headers={"accept": "text/html", "Accept-Language": XSS,
                                 "User-Agent": XSS, "Referer": XSS})
        assert r.status_code < 500
        if r.headers["content-type"].startswith("application/json"):
            assert r.headers["x-content-type-options"] == "nosniff"  # JSON is never HTML
        else:
            _no_live_markup(r.text)
    r = c.post(f"/clips/{sha}/review", data={"csrf": csrf, "note": XSS},
               headers={"HX-Request": "true"})
    _no_live_markup(r.text)
    _no_live_markup(c.get(f"/clips/{sha}").text)
    anon = client(app)
    anon.cookies.set("sr_login", XSS.replace(" ", ""))
    for r in (anon.get("/login"), anon.get("/", headers={"accept": "text/html"}),
              anon.post("/login", data={"username": XSS, "password": "p" * 12, "totp": "1",
                                        "csrf": XSS.replace(" ", "")})):
        _no_live_markup(r.text)


def test_a_cross_site_json_post_without_the_csrf_header_is_refused(app: Any,
                                                                   reviewed: Reviewed) -> None:
    """A page elsewhere can send a cookie-carrying text/plain POST whose body is JSON (no
    pre-flight), or a form POST: neither carries X-CSRF-Token."""
    c, _csrf = cookie_client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    body = json.dumps({"status": "no incident", "note": "csrf"})
    for ct in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        r = c.post(f"/api/clips/{sha}/review", content=body, headers={"content-type": ct,
                                                                     "Origin": "https://evil"})
        assert r.status_code == 403, (ct, r.status_code)
    assert c.post(f"/clips/{sha}/reveal", data={"x": "1"}).status_code == 403
    assert c.post("/me/stop", data={}).status_code == 403
    assert c.post("/logout-everywhere", data={"csrf": ""}).status_code == 403


# ================================================================================================
# Media: Range abuse, path traversal, the clear video, custody gaps
# ================================================================================================
@pytest.mark.parametrize("header", [
    "bytes=-0", "bytes=99999999999999999999999999-", "bytes=0-" + "9" * 5000,
    "bytes=-" + "9" * 30, "bytes=-1--1", "bytes=1-0", "bytes=0-0,1-1,2-2",
    "bytes=" + ",".join(f"{i}-{i}" for i in range(2000)), "bytes=5-3", "items=0-10",
    "bytes=-", "bytes=", "bytes=abc-def", "bytes=0x10-", "bytes=\t1-2", "bytes=1e3-",
    "bytes=-1.5"])
def test_range_abuse_gets_206_or_416_never_500_nor_more_than_the_file(
        app: Any, reviewed: Reviewed, header: str) -> None:
    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[0]
    whole = c.get(f"/clips/{sha}/safe.mp4").content
    r = c.get(f"/clips/{sha}/safe.mp4", headers={"Range": header})
    assert r.status_code in (200, 206, 416), (header[:40], r.status_code)
    if r.status_code == 206:
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", r.headers["content-range"])
        assert m and int(m.group(3)) == len(whole)
        assert r.content == whole[int(m.group(1)):int(m.group(2)) + 1]


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/app.py",
    "/static/..%2f..%2f..%2fetc/passwd", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/..\\app.py", "/static/templates/../../app.py", "/static/app.js%00.png",
    "/clips/..%2f..%2fstatic%2fapp.js/poster.jpg", "/static/../api/users",
    "/static/.%2e/.%2e/review/app.py", "/static/%252e%252e/app.py"])
def test_path_tricks_in_static_and_clip_urls_reach_no_file_outside(
        served: tuple[str, int], path: str) -> None:
    answer = raw(served, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 .encode())
    assert status_of(answer) in (400, 401, 404), answer[:300]
    assert b"create_app" not in answer and b"root:" not in answer


def test_after_log_out_and_back_in_the_clear_video_needs_a_new_reveal(
        app: Any, reviewed: Reviewed) -> None:
    """A reveal is for the session that made it. Session ids are SQLite rowids: the newest
    session deleted at log-out leaves its id free for the next sign-in, which then inherits
    the old session's live reveal."""
    name = new_user(reviewed, "investigator", "reuse")
    sha = reviewed.clips[1]

    def sign_in(offset: int) -> TestClient:
        c = client(app)
        c.headers["Authorization"] = "Bearer " + actions.login(
            reviewed.vault, name, PASSWORD,
            security.current_totp(secret_of(reviewed, name), at=time.time() + offset),
            clock=time.time() + offset)
        return c

    first = sign_in(0)
    assert first.post(f"/api/clips/{sha}/reveal").status_code == 200
    assert first.post("/api/logout").status_code == 200
    second = sign_in(30)
    assert second.get(f"/api/clips/{sha}").json()["revealed"] is False
    assert second.get(f"/clips/{sha}/clear.mp4").status_code == 403


def test_clear_bytes_never_leave_without_a_reveal_by_that_person(app: Any,
                                                                  reviewed: Reviewed) -> None:
    sha = reviewed.clips[2]
    a = client(app, reviewed, "investigator")
    b = client(app, reviewed, "investigator")  # the same person, another session
    assert a.post(f"/api/clips/{sha}/reveal").status_code == 200
    for path in (f"/clips/{sha}/clear.mp4", f"/clips/{sha}/clear-poster.jpg"):
        assert b.get(path).status_code == 403
        assert client(app, reviewed, "admin").get(path).status_code == 403
    assert a.post(f"/api/clips/{sha}/hide").status_code == 200
    assert a.get(f"/clips/{sha}/clear.mp4").status_code == 403
    assert a.get(f"/clips/{sha}/clear-poster.jpg").status_code == 403


def test_two_simultaneous_first_plays_record_one_viewed_and_bytes_only_with_it(
        served: tuple[str, int], reviewed: Reviewed) -> None:
    import httpx

    sha = reviewed.clips[0]
    token = session_for(reviewed, "investigator")
    base = f"http://{served[0]}:{served[1]}"
    h = {"Authorization": f"Bearer {token}"}
    before = len(events(reviewed, "viewed", f"original:{sha}"))
    assert httpx.post(f"{base}/api/clips/{sha}/reveal", headers=h).status_code == 200
    barrier = threading.Barrier(8)

    def play(i: int) -> int:
        barrier.wait()
        return httpx.get(f"{base}/clips/{sha}/clear.mp4",
                         headers={**h, "Range": f"bytes={i}-{i + 100}"}, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(play, range(8)))
    assert codes == [206] * 8
    viewed = events(reviewed, "viewed", f"original:{sha}")
    assert len(viewed) == before + 1 and "investigator" in viewed[-1].actor


def test_a_download_broken_off_by_the_reader_is_still_on_the_record(
        served: tuple[str, int], reviewed: Reviewed, tmp_path: Path) -> None:
    """Custody gap: the original is streamed from a producer thread through a queue of 8 MiB;
    a reader who takes the first megabytes and hangs up leaves the producer blocked on the
    queue forever, so the `downloaded` event (written when the block ends) never comes."""
    from strongroom.ingest.ingestor import ingest

    big = tmp_path / "big"
    big.mkdir()
    (big / "dvr-export.bin").write_bytes(secrets.token_bytes(24 * 1024 * 1024))
    ingest(reviewed.vault, big, "a large export (test)")
    with reviewed.vault.catalogue.read() as s:
        from strongroom.catalogue.models import Original

        sha = next(o for o in s.scalars(select(Original)) if o.size == 24 * 1024 * 1024).sha256
    token = session_for(reviewed, "investigator")
    body = json.dumps({"reason": "take a copy"}).encode()
    got = 0
    with socket.create_connection(served, timeout=20) as s:
        s.sendall(f"POST /api/clips/{sha}/download HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while got < 2 * 1024 * 1024:
            chunk = s.recv(65536)
            assert chunk
            got += len(chunk)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        if events(reviewed, "downloaded", f"original:{sha}"):
            break
        time.sleep(0.2)
    assert events(reviewed, "downloaded", f"original:{sha}"), (
        f"{got} bytes of the original left and no `downloaded` event names anyone")


# ================================================================================================
# Bodies, connections, malformed requests
# ================================================================================================
def test_a_chunked_body_without_content_length_is_capped_before_sign_in(
        served: tuple[str, int]) -> None:
    """The size gate reads Content-Length only; a chunked body has none. Safe: the public
    sign-in route refuses (413) a body past MAX_FORM instead of reading it all."""
    big = json.dumps({"username": "a" * (4 * 1024 * 1024), "password": "x", "totp": "1"})
    data = big.encode()
    chunks = b"".join(f"{len(data[i:i + 65536]):x}\r\n".encode() + data[i:i + 65536] + b"\r\n"
                      for i in range(0, len(data), 65536)) + b"0\r\n\r\n"
    try:
        answer = raw(served, b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: "
                     b"close\r\n\r\n" + chunks, timeout=20)
    except ConnectionResetError:
        return  # the server answered 413 and closed while the rest was still arriving
    assert status_of(answer) == 413, answer[:300]
    assert len(data) > MAX_FORM


@pytest.mark.parametrize("request_bytes", [
    b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 20\r\n\r\nusername=%ff%fe%zz&&",
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    b"Content-Length: 30\r\n\r\n--b\r\nContent-Disposition: x\r\n\r\n",
    b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 12\r\n\r\n{\"a\": NaN}\r\n",
    b"GET /api/clips HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    b"GET /api/clips HTTP/1.1\r\nHost: x\r\nCookie: sr_session=\xc3\xa9\xc3\xa9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"sr_session=a; " * 500 + b"\r\n\r\n",
])
def test_malformed_requests_get_a_4xx_and_no_traceback(served: tuple[str, int],
                                                       request_bytes: bytes) -> None:
    closing = request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n", 1)
    answer = raw(served, closing, timeout=2)
    if answer:
        assert 400 <= status_of(answer) < 500, answer[:300]
        assert b"Traceback" not in answer and b"/src/strongroom" not in answer


def test_json_nan_infinity_and_deep_nesting_are_4xx(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    for path, body in ((f"/api/clips/{sha}/exposure", '{"seconds": NaN}'),
                       (f"/api/clips/{sha}/exposure", '{"seconds": Infinity}'),
                       ("/api/me", '{"daily_limit_minutes": NaN}'),
                       ("/api/me", '{"blur": 1e400}'),
                       ("/api/login", "[" * 20000 + "]" * 20000),
                       (f"/api/clips/{sha}/review", '{"labels": ' + "[" * 5000 + "]" * 5000
                        + "}")):
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (path, body[:30], r.status_code)
    assert c.get("/api/me").json()["prefs"]["daily_limit_minutes"] == 60.0


def test_a_connection_stalled_inside_its_headers_is_dropped(served: tuple[str, int]) -> None:
    """Slowloris: a client that sends half a request line and its headers one byte at a time
    (or not at all) holds a connection and a file descriptor for as long as it likes."""
    with socket.create_connection(served, timeout=20) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-a: ")
        start = time.monotonic()
        s.settimeout(8)
        try:
            s.recv(1024)  # an answer (408/400) or the close both end the stall
            closed = True
        except TimeoutError:
            closed = False
        assert closed and time.monotonic() - start < 8, "still open after 8 s"


# ================================================================================================
# Wellbeing: exposure and stop-for-today
# ================================================================================================
def test_exposure_cannot_be_inflated_past_the_time_that_passed(app: Any,
                                                               reviewed: Reviewed) -> None:
    name = new_user(reviewed, "investigator", "expo")
    c = client(app)
    c.headers["Authorization"] = "Bearer " + actions.login(
        reviewed.vault, name, PASSWORD, security.current_totp(secret_of(reviewed, name)))
    sha = reviewed.clips[1]
    before = c.post(f"/api/clips/{sha}/exposure", json={"seconds": 30}).json()
    assert before["today_seconds"] == 0, "no exposure without a reveal"
    start = time.monotonic()
    assert c.post(f"/api/clips/{sha}/reveal").status_code == 200
    for _ in range(20):
        today = c.post(f"/api/clips/{sha}/exposure", json={"seconds": 30}).json()
    elapsed = time.monotonic() - start
    assert today["today_seconds"] <= elapsed + actions.MAX_HEARTBEAT, (today, elapsed)


def test_stop_for_today_hides_every_clip_door_and_cannot_be_undone(app: Any,
                                                                    reviewed: Reviewed) -> None:
    name = new_user(reviewed, "investigator", "stop")
    c = client(app)
    c.headers["Authorization"] = "Bearer " + actions.login(
        reviewed.vault, name, PASSWORD, security.current_totp(secret_of(reviewed, name)))
    sha = reviewed.clips[1]
    assert c.post(f"/api/clips/{sha}/reveal").status_code == 200
    assert c.post("/api/me/stop").status_code == 200
    assert "stopped" in c.get("/", headers={"accept": "text/html"}).text.lower()
    for method, path, body in (
            ("GET", "/api/clips", None), ("GET", f"/clips/{sha}", None),
            ("GET", f"/api/clips/{sha}", None), ("GET", f"/clips/{sha}/clear.mp4", None),
            ("GET", f"/clips/{sha}/clear-poster.jpg", None),
            ("GET", f"/clips/{sha}/safe.mp4", None),
            ("POST", f"/api/clips/{reviewed.clips[0]}/reveal", None),
            ("POST", f"/api/clips/{sha}/review", {"status": "incident"}),
            ("POST", f"/api/clips/{sha}/download", {"reason": "x"})):
        r = c.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code)
    c.post("/api/me", json={"daily_limit_minutes": 1440, "locale": "ru"})
    later = client(app)
    later.headers["Authorization"] = "Bearer " + actions.login(
        reviewed.vault, name, PASSWORD,
        security.current_totp(secret_of(reviewed, name), at=time.time() + 30),
        clock=time.time() + 30)
    assert later.get("/api/clips").status_code == 403


# ================================================================================================
# Races on reviews and reveals
# ================================================================================================
def test_simultaneous_review_changes_each_leave_an_event_and_the_last_one_wins(
        served: tuple[str, int], reviewed: Reviewed) -> None:
    import httpx

    sha = reviewed.clips[1]
    base = f"http://{served[0]}:{served[1]}"
    token = session_for(reviewed, "admin")
    h = {"Authorization": f"Bearer {token}"}
    def subject_events() -> list[tuple[int, dict[str, Any]]]:
        out = []
        for e in events(reviewed, "annotated"):
            d = e.details if isinstance(e.details, dict) else json.loads(e.details or "{}")
            if d.get("original") == sha:
                out.append((e.seq, d))
        return out

    before = len(subject_events())
    statuses = ["incident", "no incident", "needs second look", "in review"] * 3

    def set_status(s: str) -> int:
        return httpx.post(f"{base}/api/clips/{sha}/review", headers=h, json={"status": s},
                          timeout=60).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(set_status, statuses))
    assert codes == [200] * 12
    after = subject_events()[before:]
    final = httpx.get(f"{base}/api/clips/{sha}", headers=h).json()["status"]
    assert after and [d for _s, d in after if "status" in d][-1]["status"] == final


# ================================================================================================
# The command line misused
# ================================================================================================
@pytest.mark.parametrize(("name", "role", "password"), [
    ("../../etc", "reviewer", PASSWORD), ("<script>", "reviewer", PASSWORD),
    ("", "reviewer", PASSWORD), ("a" * 65, "reviewer", PASSWORD),
    ("bob1", "root", PASSWORD), ("bob2", "ADMIN", PASSWORD), ("bob3", "reviewer", "short"),
    ("bob4", "reviewer", " " * 12), ("bob5", "reviewer", "a" * 12),
    ("bob6", "reviewer", "123456789012"), ("admin", "reviewer", PASSWORD),
    ("bob\u202eimda", "reviewer", PASSWORD), ("bob7\x00", "reviewer", PASSWORD)])
def test_user_add_refuses_bad_names_roles_and_passwords(reviewed: Reviewed, tmp_path: Path,
                                                        name: str, role: str,
                                                        password: str) -> None:
    from conftest import cli

    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    r = cli("user", "add", reviewed.path, name, "--role", role, "--user-password-file", pw)
    assert r.returncode != 0, (name, role, r.stdout)
    assert "Traceback" not in r.stderr
    with reviewed.vault.catalogue.read() as s:
        assert s.scalar(select(User).where(User.username == name.strip(),
                                           User.role == role)) is None or name == "admin"


@pytest.mark.parametrize("name", ["аdmin", "ａｄｍｉｎ", "admin\u200b", "ad\u0455min"])
def test_user_add_refuses_a_name_that_reads_as_an_existing_one(reviewed: Reviewed,
                                                               tmp_path: Path,
                                                               name: str) -> None:
    """Custody events name people as 'NAME (role, review app)': a Cyrillic 'а', full-width
    letters or a case change give a second account that reads as 'admin' in the log."""
    from conftest import cli

    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    r = cli("user", "add", reviewed.path, name, "--role", "admin", "--user-password-file", pw)
    assert r.returncode != 0, (name, r.stdout[:200])


def test_user_add_on_a_sealed_vault_with_a_wrong_passphrase_makes_nothing(
        reviewed: Reviewed, tmp_path: Path) -> None:
    from conftest import cli

    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    r = cli("user", "add", reviewed.path, "sealedtry", "--role", "admin",
            "--user-password-file", pw, env={"STRONGROOM_PASSPHRASE": "not the passphrase"})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    with reviewed.vault.catalogue.read() as s:
        assert s.scalar(select(User).where(User.username == "sealedtry")) is None


def test_serve_refuses_a_network_address_without_tls(reviewed: Reviewed) -> None:
    """Without TLS cookies are not Secure and the session token crosses the network in
    clear: `serve --host 0.0.0.0` without --ssl-certfile should refuse (the threat model says
    'Serve on 127.0.0.1, or behind TLS')."""
    import subprocess

    from conftest import CLI, cli_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*CLI, "serve", str(reviewed.path), "--host", "0.0.0.0",  # noqa: S104
                             "--port", str(port), "--hours", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        out, err = proc.communicate(timeout=5)
        refused = proc.returncode != 0
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        refused = False
    assert refused, f"served on 0.0.0.0 without TLS: {out[:200]} {err[:200]}"


@pytest.mark.parametrize("args", [["--hours", "0"], ["--hours", "25"], ["--hours", "nan"],
                                  ["--port", "0"], ["--ssl-certfile", "/nonexistent"]])
def test_serve_refuses_bad_options(reviewed: Reviewed, args: list[str]) -> None:
    import subprocess

    from conftest import CLI, cli_env

    proc = subprocess.Popen([*CLI, "serve", str(reviewed.path), "--port", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        out, err = proc.communicate(timeout=8)
        refused = proc.returncode != 0 and "Serving" not in out
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        refused = False
    assert refused and "Traceback" not in err, (args, out[:200], err[-300:])
