"""A review app on a real vault with generated DVR clips, processed by the real pipeline, and
one signed-in account per role (shared by the review tests, in-process and in Chromium)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from conftest import Template, open_vault
from strongroom.ingest import ingest
from strongroom.review import actions, security
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault import Vault

PASSWORD = "correct horse battery staple"
ROLES = ("admin", "investigator", "lawyer", "reviewer")


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


def build(template: Template, root: Path, steps: str) -> Reviewed:
    """A vault with three processed clips and one user per role (a reviewer with one clip
    assigned)."""
    from strongroom.pipeline.runner import process

    path = root / "vault"
    shutil.copytree(template.path, path)
    clips = make_clips(root / "usb")
    v = open_vault(path, template.keys)
    ingest(v, clips, "USB stick from a source (test)")
    process(v, steps=steps.split(","), workers=1)
    with v.catalogue.read() as s:
        from sqlalchemy import select

        from strongroom.catalogue.models import Original

        shas = list(s.scalars(select(Original.sha256).order_by(Original.sha256)))
    r = Reviewed(v, path, shas)
    for role in ROLES:
        r.secrets[role] = actions.add_user(v, role, role, PASSWORD)
    return r


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
