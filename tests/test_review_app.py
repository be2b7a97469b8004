"""The review app in-process (httpx through Starlette's TestClient) on a real vault: deny by
default on every route, sign-in rules, nothing unblurred before a reveal, every reveal, play,
download and review change on the custody record, bad input answered with a clear 4xx."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from review_fixtures import (  # noqa: F401 - fixtures
    PASSWORD,
    ROLES,
    Reviewed,
    app,
    client,
    reviewed,
    session_for,
)
from strongroom.catalogue.models import CustodyEvent, Review, User, UserSession
from strongroom.review import actions, security
from strongroom.review.app import PUBLIC, PUBLIC_PREFIXES, Authenticated, create_app


def events(r: Reviewed, action: str | None = None) -> list[CustodyEvent]:
    with r.vault.catalogue.read() as s:
        q = select(CustodyEvent).order_by(CustodyEvent.seq)
        if action:
            q = q.where(CustodyEvent.action == action)
        rows = list(s.scalars(q))
        for e in rows:
            s.expunge(e)
        return rows


def _fill(path: str, sha: str) -> str:
    return path.replace("{sha256}", sha).replace("{user_id}", "1").replace("{change}", "unlock")


def _routes(app: Any) -> list[tuple[str, str, Authenticated | None]]:
    """Every (method, path) the app answers, with the auth dependency guarding it (None: none).
    Plain Starlette routes have no dependencies, so only the allow-list may hold them."""
    from starlette.routing import Mount, Route

    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path + "/" in PUBLIC_PREFIXES, f"unexpected mount {route.path}"
            continue
        assert isinstance(route, Route), route
        deps: list[Authenticated] = []
        if isinstance(route, APIRoute):
            for dep in route.dependant.dependencies:
                deps += [d for d in [dep.call, *[x.call for x in dep.dependencies]]
                         if isinstance(d, Authenticated)]
        for method in sorted(route.methods or ()):
            out.append((method, route.path, deps[0] if deps else None))
    return out


# -- deny by default ----------------------------------------------------------------------------
def test_deny_by_default_every_route_needs_a_session_and_a_strong_enough_role(
        app: Any, reviewed: Reviewed) -> None:
    """DESIGN invariant 6: every route of the app answers 401 without a session and 403 to a
    role it does not name, except the explicit allow-list (sign-in and static files)."""
    routes = _routes(app)
    assert len(routes) > 25, "the enumeration found too few routes to be looking right"
    anonymous = client(app)
    weakest = {role: client(app, reviewed, role) for role in ROLES}
    sha = reviewed.clips[1]  # not the reviewer's
    checked_403 = 0
    for method, path, guard in routes:
        if (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            assert guard is None
            continue
        assert guard is not None, f"{method} {path} has no auth dependency"
        url = _fill(path, sha)
        r = anonymous.request(method, url, json={})
        assert r.status_code == 401, f"{method} {path}: {r.status_code} without a session"
        for role in ROLES:
            if role in guard.roles:
                continue
            r = weakest[role].request(method, url, json={})
            assert r.status_code == 403, f"{method} {path} as {role}: {r.status_code}"
            checked_403 += 1
    assert checked_403 >= 10
    assert len([p for _m, p, _g in routes if p.startswith("/admin") or "users" in p]) >= 3


def test_a_reviewer_sees_only_the_clips_assigned_to_them(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "reviewer")
    listed = [x["sha256"] for x in c.get("/api/clips").json()["clips"]]
    assert listed == [reviewed.clips[0]]
    for path in (f"/clips/{reviewed.clips[1]}", f"/api/clips/{reviewed.clips[1]}",
                 f"/clips/{reviewed.clips[1]}/thumb.jpg"):
        assert c.get(path).status_code == 403, path
    assert c.post(f"/api/clips/{reviewed.clips[1]}/reveal").status_code == 403
    assert c.get(f"/api/clips/{reviewed.clips[0]}").status_code == 200


def test_the_openapi_schema_describes_the_api(app: Any, reviewed: Reviewed) -> None:
    schema = client(app, reviewed, "lawyer").get("/api/openapi.json").json()
    paths = schema["paths"]
    for p in ("/api/login", "/api/clips", "/api/clips/{sha256}/reveal",
              "/api/clips/{sha256}/review", "/api/me", "/api/users"):
        assert p in paths, p
    assert client(app).get("/api/openapi.json").status_code == 401


# -- signing in ---------------------------------------------------------------------------------
def _login_form(c: TestClient) -> str:
    page = c.get("/login")
    assert page.status_code == 200
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    return m.group(1)


def test_login_needs_password_and_totp_and_sets_a_strict_cookie(app: Any,
                                                                reviewed: Reviewed) -> None:
    actions.add_user(reviewed.vault, "signin", "investigator", PASSWORD)
    secret = _secret(reviewed, "signin")
    c = client(app)
    token = _login_form(c)
    bad = c.post("/login", data={"username": "signin", "password": PASSWORD, "totp": "000000",
                                 "csrf": token}, follow_redirects=False)
    assert bad.status_code == 401 and "wrong user name, password or code" in bad.text
    no_csrf = c.post("/login", data={"username": "signin", "password": PASSWORD,
                                     "totp": security.current_totp(secret)},
                     follow_redirects=False)
    assert no_csrf.status_code == 403
    good = c.post("/login", data={"username": "signin", "password": PASSWORD,
                                  "totp": security.current_totp(secret), "csrf": token},
                  follow_redirects=False)
    assert good.status_code == 303, good.text
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert c.get("/").status_code == 200
    # the same code again is a replay
    replay = client(app)
    t2 = _login_form(replay)
    again = replay.post("/login", data={"username": "signin", "password": PASSWORD,
                                        "totp": security.current_totp(secret), "csrf": t2},
                        follow_redirects=False)
    assert again.status_code == 401


def _secret(r: Reviewed, username: str) -> str:
    with r.vault.catalogue.read() as s:
        sealed = s.scalar(select(User.totp_secret_sealed).where(User.username == username))
    assert sealed is not None and b"age-encryption.org" in sealed
    return r.vault.open_secret(sealed).decode()


def test_failed_logins_back_off_then_lock_the_account(reviewed: Reviewed) -> None:
    actions.add_user(reviewed.vault, "guessed", "reviewer", PASSWORD)
    waits = []
    for _ in range(security.LOCKOUT_AFTER):
        with reviewed.vault.write(checkpoint=False) as s:  # let each try through the gate
            s.execute(update(User).where(User.username == "guessed").values(locked_until=None))
        tried_at = security.now()  # measured from before the try: a loaded machine is slow
        with pytest.raises(actions.LoginFailed) as info:
            actions.login(reviewed.vault, "guessed", "wrong password, long", "123456")
        waits.append(info.value.wait)
        with reviewed.vault.catalogue.read() as s:
            u = s.scalar(select(User).where(User.username == "guessed"))
            assert u is not None
            until = security.aware(u.locked_until)
        if until is not None:
            waits[-1] = round((until - tried_at).total_seconds())
    assert waits[:2] == [0, 0] and 0 < waits[2] < waits[3] < waits[4]
    assert waits[-1] > 3000, "the tenth failure locks the account for an hour"
    with pytest.raises(actions.LoginFailed, match="locked"):
        actions.login(reviewed.vault, "guessed", PASSWORD,
                      security.current_totp(_secret(reviewed, "guessed")))
    with pytest.raises(actions.LoginFailed, match="wrong user name"):
        actions.login(reviewed.vault, "nobody-here", PASSWORD, "123456")
    # an admin ends the lockout; then the right password and code work again
    admin = TestClient(create_app(reviewed.vault.settings, reviewed.vault),
                       headers={"Authorization": f"Bearer {session_for(reviewed, 'admin')}"})
    users = admin.get("/api/users").json()["users"]
    guessed = next(u for u in users if u["username"] == "guessed")
    assert guessed["locked"]
    assert admin.post(f"/api/users/{guessed['id']}/unlock").status_code == 200
    assert admin.post(f"/api/users/{guessed['id']}/explode").status_code == 422
    reviewed.secrets["guessed"] = _secret(reviewed, "guessed")
    assert session_for(reviewed, "guessed")


def test_sessions_end_when_idle_and_log_out_everywhere_ends_them_all(
        app: Any, reviewed: Reviewed) -> None:
    a, b = client(app, reviewed, "lawyer"), client(app, reviewed, "lawyer")
    assert a.get("/api/me").status_code == 200 and b.get("/api/me").status_code == 200
    with reviewed.vault.write(checkpoint=False) as s:
        s.execute(update(UserSession).where(UserSession.token_hash == security.token_hash(
            a.headers["Authorization"][7:])).values(
                last_seen_at=security.now() - security.IDLE * 2))
    assert a.get("/api/me").status_code == 401
    assert b.post("/api/logout", params={"everywhere": True}).status_code == 200
    assert b.get("/api/me").status_code == 401


def test_a_cookie_session_needs_the_csrf_token_for_every_change(
        app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "investigator", bearer=False)
    sha = reviewed.clips[2]
    before = len(events(reviewed))
    r = c.post(f"/clips/{sha}/review", data={"status": "incident"})
    assert r.status_code == 403 and "CSRF" in r.text
    assert c.post(f"/api/clips/{sha}/reveal").status_code == 403
    assert len(events(reviewed)) == before, "a refused change was stored"
    page = c.get(f"/clips/{sha}")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token
    ok = c.post(f"/clips/{sha}/review", data={"status": "in review", "csrf": token.group(1)},
                follow_redirects=False)
    assert ok.status_code == 303


# -- nothing unblurred before a reveal ----------------------------------------------------------
def _urls(html: str) -> list[str]:
    return re.findall(r'(?:src|poster|href)="([^"]+)"', html)


def test_nothing_unblurred_reaches_the_browser_before_reveal(app: Any, reviewed: Reviewed) -> None:
    """DESIGN invariant 7: the queue and the clip page point only at safe media, the clear
    video and poster are refused, and the safe bytes are greyscale."""
    from PIL import Image

    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    html = c.get("/").text + c.get(f"/clips/{sha}").text
    media = [u for u in _urls(html) if u.startswith("/clips/") and "." in u.rsplit("/", 1)[-1]]
    assert media and all(u.rsplit("/", 1)[-1] in ("safe.mp4", "poster.jpg", "thumb.jpg")
                         for u in media), media
    assert "clear" not in html
    for path in ("clear.mp4", "clear-poster.jpg"):
        assert c.get(f"/clips/{sha}/{path}").status_code == 403
    for path in ("poster.jpg", "thumb.jpg"):
        got = c.get(f"/clips/{sha}/{path}")
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        img = Image.open(io.BytesIO(got.content)).convert("RGB")
        px = list(img.getdata())
        assert max(max(p) - min(p) for p in px) <= 12, "the safe image has colour"


def test_reveal_and_play_are_on_the_record_with_the_persons_name(
        app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "lawyer")
    sha = reviewed.clips[2]
    assert c.post(f"/api/clips/{sha}/reveal").status_code == 200
    revealed = [e for e in events(reviewed, "revealed") if e.subject == f"original:{sha}"]
    assert revealed and revealed[-1].actor.startswith("lawyer (lawyer")
    first = c.get(f"/clips/{sha}/clear.mp4", headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and len(first.content) == 100
    assert first.headers["content-range"].endswith(f"/{_size(c, sha)}")
    c.get(f"/clips/{sha}/clear.mp4", headers={"Range": "bytes=100-199"})
    viewed = [e for e in events(reviewed, "viewed") if e.subject == f"original:{sha}"]
    assert len(viewed) == 1, "one `viewed` per reveal, not one per range request"
    assert "clear" in c.get(f"/clips/{sha}", headers={"Accept": "text/html"}).text
    assert c.post(f"/api/clips/{sha}/hide").status_code == 200
    assert c.get(f"/clips/{sha}/clear.mp4").status_code == 403
    assert reviewed.vault.verify(fixity=False).ok


def _size(c: TestClient, sha: str) -> int:
    head = c.get(f"/clips/{sha}/clear.mp4", headers={"Range": "bytes=0-0"})
    return int(head.headers["content-range"].rsplit("/", 1)[1])


def test_range_requests_are_exact_and_out_of_bounds_is_416(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[0]
    whole = c.get(f"/clips/{sha}/safe.mp4")
    assert whole.status_code == 200
    data = whole.content
    n = len(data)
    for spec, want in ((f"bytes=0-{n - 1}", data), ("bytes=10-20", data[10:21]),
                       (f"bytes={n - 5}-", data[-5:]), ("bytes=-7", data[-7:])):
        got = c.get(f"/clips/{sha}/safe.mp4", headers={"Range": spec})
        assert got.status_code == 206 and got.content == want, spec
    for bad in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=5-2", "bytes=0-1,4-5",
                "items=0-1", "bytes=abc"):
        got = c.get(f"/clips/{sha}/safe.mp4", headers={"Range": bad})
        assert got.status_code == 416, bad
        assert got.headers["content-range"] == f"bytes */{n}"


# -- reviews ------------------------------------------------------------------------------------
def test_a_status_change_is_an_annotated_event_and_a_hand_edit_is_caught(
        app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "reviewer")
    sha = reviewed.clips[0]
    r = c.post(f"/api/clips/{sha}/review", json={"status": "incident", "note": "02:17 КАМ 01",
                                                "labels": ["violence"]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "incident" and r.json()["labels"] == ["violence"]
    ev = events(reviewed, "annotated")[-1]
    assert ev.actor.startswith("reviewer (reviewer") and ev.subject.startswith("review:")
    assert "02:17" not in ev.details, "the note's text is not in the log, only its digest"
    assert reviewed.vault.verify(fixity=False).ok
    with reviewed.vault.write(checkpoint=False) as s:
        s.execute(update(Review).where(Review.original_sha256 == sha).values(
            status="no incident"))
    report = reviewed.vault.verify(fixity=False)
    assert not report.ok and any("edited by hand" in p.message for p in report.problems)
    c.post(f"/api/clips/{sha}/review", json={"status": "incident"})
    with reviewed.vault.write(checkpoint=False) as s:
        s.execute(update(Review).where(Review.original_sha256 == sha).values(
            status="incident"))
    assert c.post(f"/api/clips/{sha}/review", json={"status": "in review"}).status_code == 200
    assert reviewed.vault.verify(fixity=False).ok


def test_a_lawyer_reads_but_does_not_change_reviews(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "lawyer")
    r = c.post(f"/api/clips/{reviewed.clips[1]}/review", json={"status": "incident"})
    assert r.status_code == 403


def test_html_in_any_text_field_is_shown_escaped(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    assert c.post(f"/api/clips/{sha}/review", json={"note": evil}).status_code == 200
    page = c.get(f"/clips/{sha}").text
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "an inline script in the page"


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/clips/" + "0" * 64, None, 404),
    ("GET", "/api/clips/not-a-sha", None, 404),
    ("POST", "/api/clips/{sha}/review", {"status": "finished"}, 400),
    ("POST", "/api/clips/{sha}/review", {"note": "x" * 5000}, 422),
    ("POST", "/api/clips/{sha}/review", {"labels": ["gore"]}, 400),
    ("POST", "/api/clips/{sha}/exposure", {"seconds": -1}, 422),
    ("POST", "/api/me", {"blur": 9}, 422),
    ("POST", "/api/users", {"username": "<b>", "role": "admin", "password": PASSWORD}, 400),
    ("POST", "/api/users", {"username": "short", "role": "admin", "password": "abc"}, 400),
    ("POST", "/api/clips/{sha}/download", {"reason": " "}, 400),
])
def test_bad_input_gets_a_clear_4xx_and_no_traceback(app: Any, reviewed: Reviewed, method: str,
                                                     path: str, body: Any, status: int) -> None:
    c = client(app, reviewed, "admin")
    before = len(events(reviewed))
    r = c.request(method, path.replace("{sha}", reviewed.clips[1]), json=body,
                  headers={"Accept": "text/html"} if not path.startswith("/api") else {})
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text
    assert r.json()["error"] if path.startswith("/api") else "<h1>" in r.text
    assert len(events(reviewed)) == before


def test_an_oversized_request_is_refused(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "admin")
    r = c.post(f"/api/clips/{reviewed.clips[1]}/review", json={"note": "x" * 200_000})
    assert r.status_code == 413


# -- download, exposure, stop for today, language -----------------------------------------------
def test_download_asks_for_a_reason_and_records_it(app: Any, reviewed: Reviewed) -> None:
    import hashlib

    c = client(app, reviewed, "investigator")
    sha = reviewed.clips[1]
    r = c.post(f"/api/clips/{sha}/download", json={"reason": "for the prosecutor's expert"})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha
    ev = events(reviewed, "downloaded")[-1]
    assert ev.subject == f"original:{sha}" and ev.actor.startswith("investigator")
    assert "prosecutor's expert" in ev.details and '"complete":true' in ev.details
    assert client(app, reviewed, "lawyer").post(
        f"/api/clips/{sha}/download", json={"reason": "x"}).status_code == 403


def test_exposure_builds_up_to_the_break_prompt_and_stop_for_today_hides_the_queue(
        app: Any, reviewed: Reviewed) -> None:
    actions.add_user(reviewed.vault, "tired", "investigator", PASSWORD)
    reviewed.secrets["tired"] = _secret(reviewed, "tired")
    c = client(app, reviewed, "tired")
    sha = reviewed.clips[1]
    assert c.post("/api/me", json={"daily_limit_minutes": 0.05}).status_code == 200  # 3 s
    hb = c.post(f"/api/clips/{sha}/exposure", json={"seconds": 20})
    assert hb.json()["today_seconds"] == 0, "nothing counts without a reveal"
    c.post(f"/api/clips/{sha}/reveal")
    first = c.post(f"/api/clips/{sha}/exposure", json={"seconds": 600}).json()
    assert 0 < first["today_seconds"] <= 2.5, "never more than the time since the reveal"
    assert not first["needs_break"]
    import time

    time.sleep(1.5)
    assert c.post(f"/api/clips/{sha}/exposure", json={"seconds": 2}).json()["needs_break"]
    assert 'id="break" role="status" hidden' not in c.get(f"/clips/{sha}").text
    assert c.get("/api/me").json()["exposure_today_seconds"] >= 3
    assert c.post("/api/me/stop").status_code == 200
    assert "You stopped for today" in c.get("/").text
    assert c.get("/api/clips").status_code == 403
    assert c.get(f"/clips/{sha}/safe.mp4").status_code == 403


def test_the_interface_speaks_russian_when_asked(app: Any, reviewed: Reviewed) -> None:
    actions.add_user(reviewed.vault, "ru-reader", "lawyer", PASSWORD, locale="ru")
    reviewed.secrets["ru-reader"] = _secret(reviewed, "ru-reader")
    c = client(app, reviewed, "ru-reader")
    page = c.get("/").text
    assert "Очередь" in page and "Часы видеорегистратора" in page
    assert c.post("/api/me", json={"locale": "en"}).status_code == 200
    assert "Queue" in c.get("/").text


def test_pages_carry_a_strict_content_security_policy(app: Any, reviewed: Reviewed) -> None:
    c = client(app, reviewed, "admin")
    for path in ("/", f"/clips/{reviewed.clips[0]}", "/me", "/admin/users",
                 "/admin/acquisitions"):
        r = c.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path
        assert not re.search(r'https?://(?!testserver)', r.text.replace(
            "otpauth://", "")), f"{path} points outside the app"
    login = client(app).get("/login")
    assert login.status_code == 200 and "csrf" in login.text


def test_only_admins_see_acquisitions_which_can_identify_the_source(
        app: Any, reviewed: Reviewed) -> None:
    admin = client(app, reviewed, "admin").get("/api/acquisitions").json()
    assert admin["acquisitions"][0]["description"] == "USB stick from a source (test)"
    for role in ("investigator", "lawyer", "reviewer"):
        c = client(app, reviewed, role)
        assert c.get("/admin/acquisitions").status_code == 403
        assert "USB stick from a source" not in c.get("/").text


def test_user_add_prints_a_totp_secret_and_qr_code_once(reviewed: Reviewed, tmp_path: Path
                                                        ) -> None:
    from conftest import cli

    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    r = cli("user", "add", reviewed.path, "cli-made", "--role", "reviewer",
            "--user-password-file", pw)
    assert r.returncode == 0, r.stderr
    secret = re.search(r"shown only now: ([A-Z2-7]{32})", r.stdout)
    assert secret and any(ch in r.stdout for ch in "█▀▄"), r.stdout
    with reviewed.vault.catalogue.read() as s:
        row = s.scalar(select(User).where(User.username == "cli-made"))
        assert row is not None and row.role == "reviewer"
        assert row.password_hash.startswith("$argon2id$")
        assert secret is not None and secret.group(1).encode() not in (
            row.totp_secret_sealed or b"")
    code = cli("user", "totp", secret.group(1))
    assert re.fullmatch(r"\d{6}\n", code.stdout)


@pytest.mark.parametrize("stop", ["seal", "sigterm"])
def test_serve_unseals_serves_and_seal_or_sigterm_drop_the_keys(reviewed: Reviewed,
                                                                stop: str) -> None:
    """`strongroom serve` as a user runs it: it unseals once (an `unsealed` event), answers
    on 127.0.0.1, cannot dump core (the keys are in its memory); `strongroom seal` or a
    SIGTERM ends it cleanly, recorded as `sealed` with why."""
    import signal
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from conftest import CLI, cli_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*CLI, "serve", str(reviewed.path), "--port", str(port)],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200 and "Sign in" in r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/clips", timeout=2)
            raise AssertionError("the API answered without a session")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        core = next(ln for ln in limits.splitlines() if ln.startswith("Max core file size"))
        assert core.split()[4] == "0", core
        if stop == "seal":
            from conftest import cli

            sealed = cli("seal", reviewed.path, "--json")
            assert sealed.returncode == 0 and '"server": true' in sealed.stdout, sealed.stdout
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port}" in out and "Traceback" not in err
    ours = [e for e in events(reviewed) if e.subject.startswith("vault:")][-2:]
    assert [e.action for e in ours] == ["unsealed", "sealed"]
    assert f"127.0.0.1:{port}" in ours[0].details
    assert ("strongroom seal" if stop == "seal" else "signal") in ours[1].details


def test_an_incident_marked_on_a_clip_is_on_the_record_with_its_dvr_time(
        app: Any, reviewed: Reviewed) -> None:
    """Investigators mark incidents (offsets in the clip; the DVR time comes from the
    segments); a reviewer or a lawyer may not; the clip lists them."""
    sha = reviewed.clips[1]
    body = {"start_s": 0.5, "end_s": 2.0, "abuse_types": ["beating"], "severity": 3,
            "description": "Удар дубинкой <b>"}
    for role in ("reviewer", "lawyer"):
        assert client(app, reviewed, role).post(f"/api/clips/{sha}/incidents",
                                                json=body).status_code == 403
    c = client(app, reviewed, "investigator")
    made = c.post(f"/api/clips/{sha}/incidents", json=body)
    assert made.status_code == 200, made.text
    data = made.json()
    assert data["dvr_from"] and data["dvr_from"].startswith("2021-03-14 02:")
    ev = events(reviewed, "annotated")[-1]
    assert ev.subject == f"incident:{data['incident']}" and ev.actor.startswith("investigator")
    listed = c.get(f"/api/clips/{sha}").json()["incidents"]
    assert [i["incident"] for i in listed] == [data["incident"]]
    page = c.get(f"/clips/{sha}").text
    assert "Удар дубинкой &lt;b&gt;" in page
    bad = c.post(f"/api/clips/{sha}/incidents", json={**body, "end_s": 0.1})
    assert bad.status_code == 400 and "before the start" in bad.json()["error"]
    assert reviewed.vault.verify(fixity=False).ok


def test_search_finds_an_incident_by_another_form_of_its_words(app: Any,
                                                               reviewed: Reviewed) -> None:
    """The search box: Russian by the word's meaning (избиения finds Избиение), hits marked
    and escaped, linked to their clips; not for reviewers, who see only their own clips."""
    sha = reviewed.clips[2]
    c = client(app, reviewed, "investigator")
    made = c.post(f"/api/clips/{sha}/incidents", json={
        "start_s": 0, "end_s": 1, "description": "Избиение заключённого <i>у двери</i>"})
    assert made.status_code == 200, made.text
    hits = c.get("/api/search", params={"q": "избиения"}).json()["hits"]
    assert any(h["kind"] == "incident" and sha in h.get("clips", []) for h in hits), hits
    page = c.get("/search", params={"q": "избиения"}).text
    assert "<mark>Избиение</mark>" in page and "&lt;i&gt;у двери&lt;/i&gt;" in page
    assert f'href="/clips/{sha}"' in page
    assert "Nothing found." in c.get("/search", params={"q": "жираф"}).text
    for role in ("reviewer",):
        r = client(app, reviewed, role)
        assert r.get("/search", params={"q": "избиения"}).status_code == 403
        assert r.get("/api/search", params={"q": "избиения"}).status_code == 403
    assert client(app, reviewed, "lawyer").get("/api/search",
                                               params={"q": "избиение"}).status_code == 200
    assert c.get("/api/search", params={"q": ""}).status_code == 422
