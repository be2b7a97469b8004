"""`strongroom send URL FILES...`: a source's command-line upload, resumable over days.

Each file is hashed here first (SHA-256), then sent through the intake's tus 1.0 endpoint in
chunks, each with an `Upload-Checksum`. The upload carries a fingerprint made from the codename
and the file's hash, so running the same command again (with `--codename`) finds the upload
and resumes it from the server's offset: nothing is kept on the source's machine.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.intake import codenames, seal

CHUNK = 8 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


class SendError(Exception):
    """Sending stopped; the message says whether running again resumes it."""


@dataclass
class Sent:
    name: str
    size: int
    sha256: str
    upload: str = ""
    resumed_from: int = 0
    sent_bytes: int = 0


@dataclass
class Report:
    codename: str
    new_codename: bool
    files: list[Sent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"codename": self.codename, "new_codename": self.new_codename,
                "files": [vars(f) for f in self.files]}


def sha256_file(path: Path, advance: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            if advance:
                advance(len(block))
    return h.hexdigest()


class Client:
    def __init__(self, url: str, *, timeout: float = 60.0, give_up_after: float = 300.0,
                 chunk: int = CHUNK, say: Callable[[str], None] = lambda _: None) -> None:
        import httpx

        self.base = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout, follow_redirects=False,
                                 headers={"User-Agent": "strongroom-send"})
        self.give_up_after, self.chunk, self.say = give_up_after, chunk, say
        self.token = ""

    def close(self) -> None:
        self.http.close()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        """One request, retried while the network or the server is away (up to
        `give_up_after` seconds); an answer that refuses is not retried."""
        import httpx

        started = time.monotonic()
        delay = 1.0
        while True:
            try:
                r = self.http.request(method, self.base + path, **kw)
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}"
            else:
                if r.status_code in (423, 502, 503, 504) or r.status_code >= 500:
                    why = f"HTTP {r.status_code}"
                else:
                    return r
            if time.monotonic() - started > self.give_up_after:
                raise SendError(f"the intake did not answer for {int(self.give_up_after)} s "
                                f"({why})")
            self.say(f"waiting for the intake ({why}); retrying in {delay:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def sign_in(self, codename: str | None, lang: str) -> tuple[str, bool]:
        if codename:
            if not codenames.plausible(codename):
                raise SendError("a codename is seven words from the intake's list")
            r = self._call("POST", "/api/login", json={"codename": codename})
            _ok(r, "sign in")
            self.token = r.json()["token"]
            return codename, False
        r = self._call("POST", "/api/sources", json={"lang": lang})
        _ok(r, "get a codename")
        data = r.json()
        self.token = data["token"]
        return str(data["codename"]), True

    def send_file(self, path: Path, sha256: str, key: bytes, before: os.stat_result,
                  advance: Callable[[int], None] | None = None) -> Sent:
        size = before.st_size
        item = Sent(path.name, size, sha256)
        fp = seal.fingerprint(key, sha256, size)
        r = self._call("GET", "/api/uploads", headers=self._auth())
        _ok(r, "list uploads")
        found = [u for u in r.json() if u.get("fingerprint") == fp and u["length"] == size
                 and not u.get("imported")]
        for candidate in found:
            probe = self._call("HEAD", f"/files/{candidate['id']}",
                               headers={**TUS, **self._auth()})
            if probe.status_code == 200:  # an expired one (410) is started again
                item.upload = candidate["id"]
                break
        if not item.upload:
            meta = {"filename": path.name.encode("utf-8", "surrogateescape"),
                    "sha256": sha256.encode(), "size": str(size).encode(),
                    "mtime": str(int(path.stat().st_mtime)).encode(),
                    "fingerprint": fp.encode(), "source": b"send"}
            header = ",".join(f"{k} {base64.b64encode(v).decode()}" for k, v in meta.items())
            r = self._call("POST", "/files", headers={
                **TUS, **self._auth(), "Upload-Length": str(size), "Upload-Metadata": header})
            _ok(r, f"start {path.name}", 201)
            item.upload = r.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        offset = self._offset(item.upload)
        item.resumed_from = offset
        if advance:
            advance(offset)
        refused = 0  # PATCHes in a row that moved nothing
        with path.open("rb") as f:
            while offset < size:
                f.seek(offset)
                data = f.read(self.chunk)
                digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                r = self._call("PATCH", f"/files/{item.upload}", content=data, headers={
                    **TUS, **self._auth(), "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Checksum": f"sha256 {digest}"})
                if r.status_code in (409, 400, 460):
                    refused += 1
                    if refused > 5:
                        raise SendError(f"the intake keeps refusing {path.name} at byte "
                                        f"{offset} (HTTP {r.status_code})")
                    offset = self._offset(item.upload)  # ask where the server really is
                    continue
                _ok(r, f"send {path.name}", 204)
                new = _offset_header(r, size)
                if new <= offset:
                    refused += 1
                    if refused > 5:
                        raise SendError(f"the intake takes {path.name}'s bytes but its offset "
                                        f"does not move from {offset}")
                    continue
                if new > offset + len(data):
                    raise SendError(f"the intake says it holds {new} bytes of {path.name} "
                                    f"after {offset + len(data)} were sent: it makes no sense")
                refused = 0
                item.sent_bytes += new - offset
                if advance:
                    advance(new - offset)
                offset = new
        after = path.stat()
        if (after.st_size, after.st_mtime_ns, after.st_ino) != \
                (before.st_size, before.st_mtime_ns, before.st_ino):
            raise SendError(f"{path.name} changed while it was being sent: its SHA-256 is no "
                            "longer the one sent; send it again when it is stable")
        return item

    def _offset(self, upload: str) -> int:
        r = self._call("HEAD", f"/files/{upload}", headers={**TUS, **self._auth()})
        _ok(r, "ask the offset", 200)
        return _offset_header(r, None)


def _offset_header(r: Any, size: int | None) -> int:
    value = r.headers.get("upload-offset", "")
    if not value.isascii() or not value.isdigit() or (size is not None and int(value) > size):
        raise SendError(f"the intake answered a nonsensical Upload-Offset {value[:30]!r}")
    return int(value)


def _ok(r: Any, what: str, status: int = 200) -> None:
    if r.status_code == status:
        return
    try:
        why = r.json().get("error", "")
    except ValueError:
        why = ""
    raise SendError(f"could not {what}: HTTP {r.status_code} {why}".rstrip())


def fingerprint_key(codename: str) -> bytes:
    """The key of the upload fingerprints: Argon2id of the codename (a fixed salt: the
    fingerprint must be the same on every run), so that a fingerprint on a seized disk tests a
    guessed codename no faster than the codename's own folder name does."""
    return codenames.derive(codename, b"strongroom send\x00", codenames.Cost()).wrap_key


def send(url: str, files: list[Path], *, codename: str | None = None, lang: str = "ru",
         chunk: int = CHUNK, give_up_after: float = 300.0,
         say: Callable[[str], None] = lambda _: None,
         on_codename: Callable[[str], None] = lambda _: None,
         progress: Callable[[str, int, int], Callable[[int], None]] | None = None) -> Report:
    for f in files:
        if not f.is_file():
            raise SendError(f"{f}: not a file")
        if not os.access(f, os.R_OK):
            raise SendError(f"{f}: cannot be read")
    client = Client(url, chunk=chunk, give_up_after=give_up_after, say=say)
    try:
        name, new = client.sign_in(codename, lang)
        report = Report(name, new)
        if new:
            on_codename(name)
            say(f"Your new codename, to resume this and to read replies (write it down): "
                f"{name}")
        key = fingerprint_key(name)
        for f in files:
            before = f.stat()  # the file must stay as it is from its hash to its last byte
            size = before.st_size
            sha = sha256_file(f, progress(f"hashing {f.name}", size, 0) if progress else None)
            item = client.send_file(f, sha, key, before,
                                    progress(f"sending {f.name}", size, 0) if progress else None)
            report.files.append(item)
        return report
    finally:
        client.close()


def read(url: str, codename: str, *, give_up_after: float = 60.0) -> list[dict[str, Any]]:
    """The source's messages, replies and receipts, as the intake shows them."""
    client = Client(url, give_up_after=give_up_after)
    try:
        client.sign_in(codename, "ru")
        r = client._call("GET", "/api/messages", headers=client._auth())
        _ok(r, "read the messages")
        found: list[dict[str, Any]] = r.json()
        return found
    finally:
        client.close()
