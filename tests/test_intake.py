"""The intake (issue 17): a real `strongroom intake-serve` process, spoken to by tuspy (an
independent tus client), by httpx as a hostile client would, and by `strongroom send`; then
`strongroom import-intake` into a real vault. Invariant 5 is
`test_the_intake_host_never_holds_plaintext_or_the_vaults_private_key`."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import CLI, PASSPHRASE, Template, cli, cli_env, poll
from intake_fixtures import (
    TUS,
    Server,
    bearer,
    create,
    files_under,
    head,
    holds,
    meta_header,
    new_source,
    patch,
)

MiB = 1024 * 1024
MARKER = b"PLAINTEXT-MARKER-that-must-never-reach-the-intake-disk:"


def content(size: int) -> bytes:
    """Random bytes with a recognisable marker every 64 KiB: any plaintext written anywhere
    would carry one."""
    out = bytearray()
    while len(out) < size:
        out += MARKER + secrets.token_bytes(64 * 1024 - len(MARKER))
    return bytes(out[:size])


def needles(data: bytes) -> list[bytes]:
    return [MARKER, data[1000:1064], data[len(data) // 2:len(data) // 2 + 64]]


@pytest.fixture(scope="module")
def vault_dir(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("intake-vault") / "vault"
    shutil.copytree(template.path, path)
    return path


@pytest.fixture(scope="module")
def public_key(template: Template) -> str:
    return template.keys.public.age_recipient


@pytest.fixture(scope="module")
def server(public_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("intake")
    s = Server(root / "data", public_key, root, ("--max-file-gb", "0.1")).start()
    yield s
    s.stop()


@pytest.fixture
def fresh(public_key: str, tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own (to kill, or to age its uploads)."""
    s = Server(tmp_path / "data", public_key, tmp_path)
    yield s
    s.kill()


def import_intake(vault: Path, data: Path, *extra: str) -> dict[str, object]:
    r = cli("import-intake", vault, data, "--json", *extra)
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    out["exit"] = r.returncode
    return out


def cat(vault: Path, sha: str, out: Path) -> bytes:
    r = cli("cat", vault, sha, "-o", out)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


# -- tus with an independent client, a killed server, and the disk searched -----------------
def test_the_intake_host_never_holds_plaintext_or_the_vaults_private_key(
        fresh: Server, vault_dir: Path, tmp_path: Path, template: Template) -> None:
    """tuspy uploads 24 MiB in 4 MiB chunks; the server is SIGKILLed in the middle of a
    chunk and restarted; tuspy resumes from the server's offset (losing at most that chunk);
    the intake's folder and temp dir hold no plaintext and no private key at any point."""
    from tusclient import client as tus

    fresh.start()
    data = content(24 * MiB)
    codename, token = new_source(fresh.url)
    c = tus.TusClient(fresh.url + "/files", headers=bearer(token))
    up = c.uploader(file_stream=_stream(data), chunk_size=4 * MiB, metadata={
        "filename": "clip 01.mp4", "sha256": hashlib.sha256(data).hexdigest()})
    up.upload_chunk()
    up.upload_chunk()
    assert up.offset == 8 * MiB
    url = up.url
    uid = url.rsplit("/", 1)[-1]

    # half of the third chunk is on the wire when the server dies
    conn = http.client.HTTPConnection("127.0.0.1", fresh.port, timeout=30)
    conn.putrequest("PATCH", f"/files/{uid}")
    for k, v in {**TUS, **bearer(token), "Upload-Offset": str(8 * MiB),
                 "Content-Type": "application/offset+octet-stream",
                 "Content-Length": str(4 * MiB)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(data[8 * MiB:10 * MiB])
    time.sleep(0.5)
    assert not holds((fresh.data, fresh.tmp), needles(data))
    fresh.kill()
    conn.close()

    fresh.start()
    resumed = c.uploader(file_stream=_stream(data), url=url, chunk_size=4 * MiB)
    assert resumed.get_offset() == 8 * MiB  # the kill cost the chunk in flight, no more
    resumed.upload()
    assert head(fresh.url, token, uid).headers["upload-offset"] == str(24 * MiB)

    secret = template.keys.identity_text().encode()
    found = holds((fresh.data, fresh.tmp), [*needles(data), secret, codename.encode()])
    assert found == []
    pieces = sorted((fresh.data / "uploads" / uid).glob("*.age"))
    assert pieces and all(p.read_bytes().startswith(b"age-encryption.org/v1\n") for p in pieces)
    assert not list((fresh.data / "uploads" / uid).glob(".part-*"))

    report = import_intake(vault_dir, fresh.data)
    assert report["exit"] == 0 and report["new_originals"] == 1 and report["mismatches"] == []
    sha = hashlib.sha256(data).hexdigest()
    assert cat(vault_dir, sha, tmp_path / "out.bin") == data
    assert cli("verify", vault_dir).returncode == 0


def _stream(data: bytes) -> object:
    import io

    return io.BytesIO(data)


def test_a_patch_cut_off_by_the_client_keeps_what_arrived(server: Server) -> None:
    """Without a checksum, the bytes of a PATCH that arrived before the connection broke are
    kept (the source re-sends less); with one, none of them are."""
    _, token = new_source(server.url)
    for checksum, kept in ((None, 3 * MiB), ("sha256 " + "A" * 43 + "=", 0)):
        r, uid = create(server.url, token, 8 * MiB)
        assert r.status_code == 201
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            headers = {**TUS, **bearer(token), "Upload-Offset": "0", "Host": "x",
                       "Content-Type": "application/offset+octet-stream",
                       "Content-Length": str(4 * MiB)}
            if checksum:
                headers["Upload-Checksum"] = checksum
            sock.sendall(f"PATCH /files/{uid} HTTP/1.1\r\n".encode() + b"".join(
                f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n")
            sock.sendall(secrets.token_bytes(3 * MiB))
            time.sleep(0.3)
        poll(lambda uid=uid, kept=kept: head(server.url, token, uid).headers["upload-offset"]
             == str(kept), timeout=20, what="the server to settle the cut-off PATCH")


# -- the protocol, refused politely ---------------------------------------------------------
def test_tus_options_announce_what_the_server_speaks(server: Server) -> None:
    r = httpx.options(server.url + "/files")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {
        "creation", "termination", "checksum", "expiration"}
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")
    assert int(r.headers["tus-max-size"]) == 100_000_000


@pytest.mark.parametrize(("headers", "status"), [
    ({"Tus-Resumable": None}, 412),
    ({"Tus-Resumable": "0.2.2"}, 412),
    ({"Upload-Length": None}, 400),
    ({"Upload-Length": "-1"}, 400),
    ({"Upload-Length": "1e6"}, 400),
    ({"Upload-Length": "١٢٣".encode()}, 400),
    ({"Upload-Length": "99999999999999999999"}, 400),
    ({"Upload-Length": "100000001"}, 413),
    ({"Upload-Defer-Length": "1"}, 400),
    ({"Upload-Metadata": "filename"}, 201),
    ({"Upload-Metadata": "filename not*base64"}, 400),
    ({"Upload-Metadata": "a YQ==,a YQ=="}, 400),
    ({"Upload-Metadata": "../x YQ=="}, 400),
    ({"Upload-Metadata": "k " + "A" * 9000}, 400),
    ({"Authorization": None}, 401),
    ({"Authorization": "Bearer forged"}, 401),
])
def test_a_malformed_creation_is_refused_with_a_reason(
        server: Server, headers: dict[str, str | bytes | None], status: int) -> None:
    _, token = new_source(server.url)
    h: dict[str, str | bytes | None] = {**TUS, **bearer(token), "Upload-Length": "10", **headers}
    r = httpx.post(server.url + "/files", headers={k: v for k, v in h.items() if v is not None})
    assert r.status_code == status, r.text
    if status != 201:
        assert r.json()["error"]


def test_patch_refusals_offset_size_type_checksum_and_owner(server: Server) -> None:
    _, token = new_source(server.url)
    _, other = new_source(server.url)
    r, uid = create(server.url, token, 100)
    assert r.status_code == 201 and "upload-expires" in r.headers
    assert patch(server.url, token, uid, 0, b"x" * 10, **{"Content-Type": "text/plain"}
                 ).status_code == 415
    assert patch(server.url, token, uid, 5, b"x" * 10).status_code == 409
    assert patch(server.url, token, uid, 0, b"x" * 101).status_code == 413
    bad = patch(server.url, token, uid, 0, b"x" * 10,
                **{"Upload-Checksum": "sha1 " + "A" * 27 + "="})
    assert bad.status_code == 460
    assert patch(server.url, token, uid, 0, b"x", **{"Upload-Checksum": "crc32 AAAA"}
                 ).status_code == 400
    assert head(server.url, token, uid).headers["upload-offset"] == "0"
    import base64

    good = base64.b64encode(hashlib.sha1(b"y" * 10, usedforsecurity=False).digest()).decode()
    r = patch(server.url, token, uid, 0, b"y" * 10, **{"Upload-Checksum": f"sha1 {good}"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "10"
    assert r.headers["tus-resumable"] == "1.0.0"
    for attempt in (head(server.url, other, uid), patch(server.url, other, uid, 10, b"z"),
                    httpx.delete(f"{server.url}/files/{uid}", headers={**TUS, **bearer(other)}),
                    head(server.url, token, "../../sources"), head(server.url, token, "0" * 32)):
        assert attempt.status_code == 404
    assert httpx.delete(f"{server.url}/files/{uid}", headers={**TUS, **bearer(token)}
                        ).status_code == 204
    assert head(server.url, token, uid).status_code == 404
    assert not (server.data / "uploads" / uid).exists()


def test_two_patches_to_one_upload_at_once_one_is_told_to_wait(server: Server) -> None:
    _, token = new_source(server.url)
    _, uid = create(server.url, token, 8 * MiB)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"PATCH /files/{uid} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                     f"Authorization: Bearer {token}\r\nUpload-Offset: 0\r\n"
                     "Content-Type: application/offset+octet-stream\r\n"
                     f"Content-Length: {2 * MiB}\r\n\r\n".encode())
        sock.sendall(b"a" * MiB)
        time.sleep(0.3)
        second = patch(server.url, token, uid, 0, b"b" * MiB)
        assert second.status_code == 423
        sock.sendall(b"a" * MiB)
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 204"), reply
    assert head(server.url, token, uid).headers["upload-offset"] == str(2 * MiB)
    assert patch(server.url, token, uid, 2 * MiB, b"c").status_code == 204


def test_an_abandoned_upload_expires_and_is_swept(fresh: Server) -> None:
    fresh.start()
    _, token = new_source(fresh.url)
    _, uid = create(fresh.url, token, 1000)
    assert patch(fresh.url, token, uid, 0, b"q" * 10).status_code == 204
    info = fresh.data / "uploads" / uid / "info.json"
    aged = json.loads(info.read_text())
    aged["touched"] -= 8 * 86400  # eight days without a byte (the default allows seven)
    info.write_text(json.dumps(aged))
    assert head(fresh.url, token, uid).status_code == 410
    assert patch(fresh.url, token, uid, 10, b"q").status_code == 410
    r, _ = create(fresh.url, token, 10)  # a creation sweeps
    assert r.status_code == 201
    assert not (fresh.data / "uploads" / uid).exists()


def test_quotas_per_file_per_codename_and_in_all(public_key: str, tmp_path: Path) -> None:
    s = Server(tmp_path / "data", public_key, tmp_path,
               ("--max-file-gb", "0.002", "--source-quota-gb", "0.003", "--quota-gb", "0.005"))
    s.start()
    try:
        (_, a), (_, b), (_, c), (_, d) = (new_source(s.url) for _ in range(4))
        assert create(s.url, a, 2_000_001)[0].status_code == 413
        assert create(s.url, a, 2_000_000)[0].status_code == 201
        r = create(s.url, a, 1_500_000)[0]
        assert r.status_code == 413 and "codename" in r.json()["error"]
        r, uid = create(s.url, b, 2_000_000)
        assert r.status_code == 201
        assert create(s.url, c, 1_500_000)[0].status_code == 201  # announced only: 3.5 MB
        assert patch(s.url, b, uid, 0, b"b" * 2_000_000).status_code == 204
        first = create(s.url, a, 0)  # a's 2 MB is announced, never sent: not counted in all
        assert first[0].status_code == 201
        _, ua = create(s.url, c, 1_000_000)
        assert patch(s.url, c, ua, 0, b"c" * 1_000_000).status_code == 204  # 3 MB arrived
        assert create(s.url, c, 2_000_001)[0].status_code == 413  # c: 1.5 + 1 + 2 > 3 MB
        assert create(s.url, a, 900_000)[0].status_code == 201  # 3 + 0.9 ≤ 5
        r, ub = create(s.url, b, 900_000)
        assert patch(s.url, b, ub, 0, b"b" * 900_000).status_code == 204  # 3.9 MB arrived
        assert create(s.url, d, 1_200_000)[0].status_code == 507  # 3.9 + 1.2 > 5
    finally:
        s.kill()


# -- codenames, sessions, logs --------------------------------------------------------------
def test_codenames_are_seven_listed_words_stored_only_as_argon2id_and_rate_limited(
        fresh: Server) -> None:
    """On a server of its own: the cap it reaches shuts sign-in for a minute for everyone."""
    server = fresh.start()
    from strongroom.intake import codenames

    ru, _ = new_source(server.url, "ru")
    en, _ = new_source(server.url, "en")
    for name, lang in ((ru, "ru"), (en, "en")):
        words = name.split(" ")
        assert len(words) == 7 and set(words) <= set(codenames.words(lang))
    r = httpx.post(server.url + "/api/login", json={"codename": "  " + ru.upper() + " "})
    assert r.status_code == 200  # case and spacing do not matter
    for w in ru.split() + en.split():
        assert not holds((server.data,), [w.encode()]), w
    sid = [p.name for p in (server.data / "sources").iterdir()]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in sid)
    wrong = " ".join(ru.split()[::-1])
    r = httpx.post(server.url + "/api/login", json={"codename": wrong})
    assert r.status_code == 403
    codes = [httpx.post(server.url + "/api/login", json={"codename": f"not a codename {i}"}
                        ).status_code for i in range(40)]
    assert 429 in codes and set(codes) <= {403, 429}
    assert httpx.post(server.url + "/api/login", json={"codename": ru}).status_code == 429


def test_logs_and_file_times_hold_no_address_and_no_time_of_day(server: Server) -> None:
    _, token = new_source(server.url)
    _, uid = create(server.url, token, 5)
    patch(server.url, token, uid, 0, b"12345")
    httpx.get(server.url + "/nowhere")
    log = server.log.read_text()
    assert "127.0.0.1:" not in log.replace(f"http://127.0.0.1:{server.port}/", "")
    assert not re.search(r"\d\d:\d\d:\d\d", log), log
    assert "python-httpx" not in log
    for p in [*files_under(server.data), *(p for p in server.data.rglob("*") if p.is_dir())]:
        st = os.stat(p, follow_symlinks=False)
        if p.name != ".lock":
            assert st.st_mtime % 86400 == 0, p


def test_every_route_but_the_public_ones_needs_a_codename_session(public_key: str,
                                                                     tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from starlette.routing import Mount, Route

    from strongroom.intake.app import PUBLIC, IntakeSettings, create_app

    app = create_app(IntakeSettings(tmp_path / "data", public_key))
    client = TestClient(app)
    checked = 0
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static" and ("GET", "/static") in PUBLIC
            continue
        assert isinstance(route, Route)
        path = route.path.replace("{uid}", "0" * 32)
        for method in sorted(route.methods or ()):
            public = {(method, route.path), ("GET" if method == "HEAD" else method, route.path)}
            if public & PUBLIC:
                continue
            r = client.request(method, path, headers={**TUS, "Origin": "http://testserver"})
            assert r.status_code == 401, (method, route.path, r.status_code)
            checked += 1
    assert checked >= 10


def test_pages_carry_a_strict_policy_and_no_third_party_asset(server: Server) -> None:
    r = httpx.get(server.url + "/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
    assert "server" not in r.headers
    _, token = new_source(server.url)
    home = httpx.get(server.url + "/home", cookies={"intake_session": token})
    assert home.status_code == 200
    for page in (r.text, home.text):
        refs = re.findall(r'(?:src|href|action)="([^"]+)"', page)
        assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs)
    assert httpx.get(server.url + "/docs").status_code == 404
    js = httpx.get(server.url + "/static/tus.min.js")
    assert js.status_code == 200 and "tus" in js.text


def test_a_form_post_from_another_site_is_refused(server: Server) -> None:
    _, token = new_source(server.url)
    r = httpx.post(server.url + "/message", data={"text": "hi"},
                   cookies={"intake_session": token},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


# -- no JavaScript: the plain form ----------------------------------------------------------
def test_the_plain_form_upload_is_streamed_and_encrypted_like_tus(
        server: Server, vault_dir: Path, tmp_path: Path) -> None:
    data = content(9 * MiB + 123)
    _codename, token = new_source(server.url)
    r = httpx.post(server.url + "/upload", cookies={"intake_session": token},
                   files={"file": ("камера 3.mp4", data, "video/mp4")}, timeout=60)
    assert r.status_code == 303 and r.headers["location"] == "/home"
    assert holds((server.data, server.tmp), needles(data)) == []
    mine = httpx.get(server.url + "/api/uploads", headers=bearer(token)).json()
    assert [(u["length"], u["done"]) for u in mine] == [(len(data), True)]
    report = import_intake(vault_dir, server.data)
    assert report["exit"] == 0
    assert cat(vault_dir, hashlib.sha256(data).hexdigest(), tmp_path / "o") == data
    r = httpx.post(server.url + "/upload", cookies={"intake_session": token},
                   content=b"--x\r\nnot a form", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400


# -- import, receipts, messages -------------------------------------------------------------
def test_import_is_idempotent_leaves_a_receipt_the_source_reads_and_purges(
        server: Server, vault_dir: Path, tmp_path: Path) -> None:
    codename, token = new_source(server.url)
    a, b = content(3 * MiB), b"second file"
    uids = []
    for data, name in ((a, "a.mp4"), (b, "b.txt")):
        _, uid = create(server.url, token, len(data), meta_header(
            filename=name, sha256=hashlib.sha256(data).hexdigest()))
        assert patch(server.url, token, uid, 0, data).status_code == 204
        uids.append(uid)
    _, pending = create(server.url, token, 50)  # still arriving: left alone
    first = import_intake(vault_dir, server.data)
    assert first["exit"] == 0 and first["new_originals"] >= 2 and first["receipts"] >= 1
    again = import_intake(vault_dir, server.data)
    assert again["new_originals"] == 0 and again["receipts"] == 0

    fresh_token = httpx.post(server.url + "/api/login", json={"codename": codename}).json()["token"]
    msgs = httpx.get(server.url + "/api/messages", headers=bearer(fresh_token)).json()
    receipts = [m["receipt"] for m in msgs if m["from"] == "receipt"]
    assert len(receipts) == 1
    got = {f["name"]: f for f in receipts[0]["files"]}
    assert got["a.mp4"]["sha256"] == hashlib.sha256(a).hexdigest()
    assert got["b.txt"]["size"] == len(b) and got["b.txt"]["status"] == "received"
    inbox = cli("send", server.url, "--codename", codename, "--read")
    assert inbox.returncode == 0, inbox.stderr
    assert f"{hashlib.sha256(a).hexdigest()}  a.mp4" in inbox.stdout  # as sha256sum prints it
    assert cli("send", server.url, "--read").returncode != 0
    ups = {u["id"]: u for u in httpx.get(server.url + "/api/uploads",
                                         headers=bearer(token)).json()}
    assert all(ups[u]["imported"] for u in uids) and not ups[pending]["imported"]

    purged = import_intake(vault_dir, server.data, "--purge-imported")
    assert purged["purged"] >= 2 and purged["new_originals"] == 0
    assert not any((server.data / "uploads" / u).exists() for u in uids)
    assert (server.data / "uploads" / pending).exists()
    assert cli("verify", vault_dir).returncode == 0


def test_a_file_that_differs_from_what_send_hashed_is_kept_and_reported(
        server: Server, vault_dir: Path) -> None:
    _, token = new_source(server.url)
    data = b"what arrived"
    _, uid = create(server.url, token, len(data), meta_header(
        filename="x.bin", sha256=hashlib.sha256(b"what was sent").hexdigest()))
    patch(server.url, token, uid, 0, data)
    r = cli("import-intake", vault_dir, server.data)
    assert r.returncode == 1 and "MISMATCH" in r.stdout and "x.bin" in r.stdout


def test_a_damaged_piece_is_an_error_not_a_shorter_original(
        fresh: Server, vault_dir: Path) -> None:
    fresh.start()
    _, token = new_source(fresh.url)
    data = content(5 * MiB)
    _, uid = create(fresh.url, token, len(data), meta_header(filename="d.bin"))
    patch(fresh.url, token, uid, 0, data)
    piece = sorted((fresh.data / "uploads" / uid).glob("*.age"))[-1]
    raw = bytearray(piece.read_bytes())
    raw[-100] ^= 1
    piece.write_bytes(bytes(raw))
    r = cli("import-intake", vault_dir, fresh.data, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["new_originals"] == 0
    assert any("d.bin" in e["path"] and "decrypt" in e["error"] for e in out["errors"])


def test_an_intake_folder_of_another_vault_is_refused(
        server: Server, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert cli("init", other).returncode == 0
    r = cli("import-intake", other, server.data)
    assert r.returncode != 0 and "another vault" in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("import-intake", other, tmp_path / "empty")
    assert r.returncode != 0 and "not an intake folder" in r.stderr


def test_messages_go_both_ways_encrypted_at_rest(server: Server, vault_dir: Path) -> None:
    _, token = new_source(server.url)
    text = "Камера 3, 14 мая, около полуночи — спросите про второй этаж."
    r = httpx.post(server.url + "/message", data={"text": text},
                   cookies={"intake_session": token})
    assert r.status_code == 303
    assert not holds((server.data,), [text.encode(), "Камера 3".encode()])
    r = cli("intake-messages", vault_dir, server.data, "--json")
    assert r.returncode == 0
    found = [s for s in json.loads(r.stdout) if any(m["text"] == text for m in s["messages"])]
    assert len(found) == 1
    src = found[0]["source"]
    assert cli("intake-reply", vault_dir, server.data, src, "Получили, спасибо.").returncode == 0
    msgs = httpx.get(server.url + "/api/messages", headers=bearer(token)).json()
    assert [(m["from"], m["text"]) for m in msgs if "text" in m] == [
        ("source", text), ("org", "Получили, спасибо.")]
    _, stranger = new_source(server.url)
    assert httpx.get(server.url + "/api/messages", headers=bearer(stranger)).json() == []


# -- strongroom send ------------------------------------------------------------------------
def test_send_resumes_after_the_server_dies_by_running_the_same_command_again(
        fresh: Server, vault_dir: Path, tmp_path: Path) -> None:
    fresh.start()
    data = content(40 * MiB)
    f = tmp_path / "видео 7.mp4"
    f.write_bytes(data)
    first = subprocess.Popen([*CLI, "send", fresh.url, str(f), "--chunk-mb", "1",
                              "--give-up-after", "3", "--json"], env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    poll(lambda: len(list((fresh.data / "uploads").glob("*/*.age"))) >= 3, timeout=60,
         interval=0.01, what="a few pieces to arrive")
    fresh.kill()
    _out, err = first.communicate(timeout=120)
    assert first.returncode != 0
    m = re.search(r"--codename '([^']+)'", err.decode())
    assert m, err.decode()
    fresh.start()
    r = subprocess.run([*CLI, "send", fresh.url, str(f), "--codename", m.group(1),
                        "--chunk-mb", "1", "--json"], env=cli_env(), capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    sent = json.loads(r.stdout)["files"][0]
    assert sent["resumed_from"] >= 3 * MiB and sent["sha256"] == hashlib.sha256(data).hexdigest()
    assert sent["resumed_from"] + sent["sent_bytes"] == len(data)
    report = import_intake(vault_dir, fresh.data)
    assert report["exit"] == 0 and report["mismatches"] == []
    assert cat(vault_dir, sent["sha256"], tmp_path / "o") == data


def test_send_refuses_what_it_cannot_send_with_one_clear_line(server: Server,
                                                               tmp_path: Path) -> None:
    r = cli("send", server.url, tmp_path / "missing.mp4")
    assert r.returncode != 0 and "not a file" in r.stderr
    f = tmp_path / "x"
    f.write_bytes(b"x")
    r = cli("send", server.url, f, "--codename", "two words")
    assert r.returncode != 0 and "seven words" in r.stderr
    r = cli("send", "http://127.0.0.1:9", f, "--give-up-after", "1")
    assert r.returncode != 0 and "did not answer" in r.stderr and "codename" not in r.stderr


def test_the_intake_never_needs_the_passphrase(server: Server) -> None:
    assert server.proc is not None
    environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes()
    assert b"STRONGROOM_PASSPHRASE" not in environ and PASSPHRASE.encode() not in environ


def test_the_intake_reader_is_no_back_door_to_the_vaults_blobs(
        vault_dir: Path, template: Template, tmp_path: Path) -> None:
    """`intake_reader` decrypts without a custody event (the ingest that stores its output
    records it): it must refuse the vault's own blobs, which would come out unrecorded."""
    from conftest import open_vault
    from strongroom.errors import StrongroomError
    from strongroom.ingest import ingest

    (tmp_path / "stick").mkdir()
    (tmp_path / "stick" / "a.bin").write_bytes(b"evidence")
    with open_vault(vault_dir, template.keys) as v:
        ingest(v, tmp_path / "stick", "a stick")
        blobs = [p for p in (vault_dir / "blobs").rglob("*") if p.is_file()]
        assert blobs
        with pytest.raises(StrongroomError, match="inside the vault"):
            v.intake_reader([(blobs[0], 1)], what="x")
