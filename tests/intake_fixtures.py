"""A real intake server (`strongroom intake-serve` as its own process) for the intake tests,
with its own TMPDIR so that tests can search every file it wrote."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conftest import CLI, poll

TUS = {"Tus-Resumable": "1.0.0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    data: Path
    public_key: str
    scratch: Path
    extra: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tmp(self) -> Path:
        return self.scratch / "server-tmp"

    @property
    def log(self) -> Path:
        return self.scratch / "server.log"

    def start(self) -> Server:
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        env.pop("STRONGROOM_PASSPHRASE", None)  # the intake never has it
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "intake-serve", "--data", str(self.data), "--public-key",
                 self.public_key, "--port", str(self.port), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.starts += 1

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(self.url + "/", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        poll(up, timeout=60, interval=0.1, what="the intake server to answer")
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def new_source(url: str, lang: str = "ru") -> tuple[str, str]:
    r = httpx.post(url + "/api/sources", json={"lang": lang}, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    return str(data["codename"]), str(data["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(url: str, token: str, length: int, meta: str = "") -> tuple[httpx.Response, str]:
    headers = {**TUS, **bearer(token), "Upload-Length": str(length)}
    if meta:
        headers["Upload-Metadata"] = meta
    r = httpx.post(url + "/files", headers=headers, timeout=30)
    uid = r.headers.get("location", "").rsplit("/", 1)[-1]
    return r, uid


def patch(url: str, token: str, uid: str, offset: int, data: bytes,
          **headers: str) -> httpx.Response:
    h = {**TUS, **bearer(token), "Upload-Offset": str(offset),
         "Content-Type": "application/offset+octet-stream", **headers}
    return httpx.patch(f"{url}/files/{uid}", content=data, headers=h, timeout=60)


def head(url: str, token: str, uid: str) -> httpx.Response:
    return httpx.head(f"{url}/files/{uid}", headers={**TUS, **bearer(token)}, timeout=30)


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def holds(roots: tuple[Path, ...], needles: list[bytes]) -> list[str]:
    """Every file under `roots` that contains any of `needles`."""
    found = []
    for p in files_under(*roots):
        data = p.read_bytes()
        found += [f"{p}: {n[:20]!r}" for n in needles if n in data]
    return found


def meta_header(**values: str | bytes) -> str:
    import base64

    return ",".join(f"{k} {base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()}"
                    for k, v in values.items())


def any_json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None
