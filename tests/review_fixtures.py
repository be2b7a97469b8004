"""A review app on a real vault with generated DVR clips, processed by the real pipeline, and
one signed-in account per role (shared by the review tests, in-process and in Chromium)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Template, built_once, light_password_hashes, open_vault
from strongroom.ingest import ingest
from strongroom.review import actions, security
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault import Vault

PASSWORD = "correct horse battery staple"
ROLES = ("admin", "investigator", "lawyer", "reviewer")
STEPS = "probe,overlay_ocr,proxy,review"


@dataclass
class Reviewed:
    vault: Vault
    path: Path
    clips: list[str]
    #: username → TOTP secret
    secrets: dict[str, str] = field(default_factory=dict)
    #: username → session token (made without the TOTP step, see `session_for`)
    tokens: dict[str, str] = field(default_factory=dict)


def make_clips(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        generate_clip(ClipSpec(name=f"cam0{i + 1}.mp4", duration=3, size=(320, 240),
                               camera_label=f"КАМ 0{i + 1} ПФРСИ",
                               clock_start=datetime(2021, 3, 14, 2, 17 + i, 5),
                               source="life", seed=i), folder)
    return folder


def build(template: Template, tmp_path_factory: pytest.TempPathFactory, name: str,
          steps: str) -> Reviewed:
    """A vault with three processed clips and one user per role, in a folder of its own
    (`name`) for the calling module to change as it likes.

    Generating, ingesting and processing the clips takes ~10 s, the same for every module
    that asks for the same `steps`: that is done once per test run (`built_once`, shared by
    the xdist workers), and each module gets a copy of the result."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Original
    from strongroom.pipeline.runner import process

    def make(folder: Path) -> None:
        path = folder / "vault"
        shutil.copytree(template.path, path)
        clips = make_clips(folder / "usb")
        v = open_vault(path, template.keys)
        try:
            ingest(v, clips, "USB stick from a source (test)")
            process(v, steps=steps.split(","), workers=1)
            with light_password_hashes():
                secrets = {role: actions.add_user(v, role, role, PASSWORD) for role in ROLES}
        finally:
            v.close()
        (folder / "secrets.json").write_text(json.dumps(secrets))

    built = built_once(tmp_path_factory, "reviewed-" + steps.replace(",", "+"), make)
    path = tmp_path_factory.mktemp(name) / "vault"
    shutil.copytree(built / "vault", path)
    v = open_vault(path, template.keys)
    with v.catalogue.read() as s:
        shas = list(s.scalars(select(Original.sha256).order_by(Original.sha256)))
    return Reviewed(v, path, shas, json.loads((built / "secrets.json").read_text()))


def session_for(r: Reviewed, username: str) -> str:
    """A session token for `username`, signing in with the real password and a TOTP code of
    a time step no earlier login used (a code is good once, so tests that sign the same user
    in twice within 30 s would otherwise be refused as replays)."""
    import time

    from sqlalchemy import select

    from strongroom.catalogue.models import User

    with r.vault.catalogue.read() as s:
        last = s.scalar(select(User.totp_last_step).where(User.username == username))
    step = max(int(time.time()) // 30, (last or 0) + 1)
    code = security.current_totp(r.secrets[username], at=step * 30)
    return actions.login(r.vault, username, PASSWORD, code, clock=step * 30 + 1.0)


def person(r: Reviewed, username: str) -> actions.Person:
    token = r.tokens.get(username) or session_for(r, username)
    r.tokens[username] = token
    who = actions.person(r.vault, token)
    if who is None:
        raise RuntimeError(f"no session for {username}")
    return who


@pytest.fixture(scope="module")
def reviewed(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    """Three processed clips, one user per role; the reviewer has the first clip only."""
    r = build(template, tmp_path_factory, "review", STEPS)
    actions.update_review(r.vault, person(r, "admin"), r.clips[0], assign_to="reviewer")
    yield r
    r.vault.close()


@pytest.fixture(scope="module")
def app(reviewed: Reviewed) -> Any:
    from strongroom.review.app import create_app

    return create_app(reviewed.vault.settings, reviewed.vault, heartbeat_seconds=1)


def client(app: Any, r: Reviewed | None = None, role: str | None = None, *,
           bearer: bool = True) -> Any:
    """An in-process client, signed in as `role` (a bearer token, or the session cookie)."""
    from fastapi.testclient import TestClient

    c = TestClient(app, raise_server_exceptions=False)
    if r is not None and role is not None:
        token = session_for(r, role)
        if bearer:
            c.headers["Authorization"] = f"Bearer {token}"
        else:
            c.cookies.set("sr_session", token)
    return c


@contextmanager
def serving(vault_or_app: Any, heartbeat: float = 1) -> Iterator[str]:
    """The app on uvicorn as `serve` runs it, on a free port of 127.0.0.1, in a thread;
    yields its base URL."""
    import uvicorn

    from strongroom.review.app import create_app
    from strongroom.review.serve import uvicorn_config

    app = vault_or_app if not isinstance(vault_or_app, Vault) else create_app(
        vault_or_app.settings, vault_or_app, heartbeat_seconds=heartbeat)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
