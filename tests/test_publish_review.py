"""Publication in the review app (issue 16): staff draft a redacted part of a clip, look at it
with its boxes and correct them, a second person approves it, staff publish it signed; lawyers
may look, reviewers may not. In process through the app's API (the same flow in Chromium on
the vault `make demo` builds is in test_demo_vault.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from c2pa_fixtures import Chain, make_chain
from conftest import Template, light_password_hashes, open_vault
from review_fixtures import PASSWORD, client
from strongroom.catalogue.models import CustodyEvent, Sighting
from strongroom.ingest import ingest
from strongroom.review import actions, security
from strongroom.testfaces import faces_clip
from strongroom.vault import Vault

ROLES = ("admin", "investigator", "lawyer", "reviewer")


@dataclass
class Served:
    vault: Vault
    app: Any
    sha: str
    secrets: dict[str, str]
    chain: Chain


def token(s: Served, user: str) -> str:
    import time

    from strongroom.catalogue.models import User

    with s.vault.catalogue.read() as r:
        last = r.scalar(select(User.totp_last_step).where(User.username == user))
    step = max(int(time.time()) // 30, (last or 0) + 1)
    return actions.login(s.vault, user, PASSWORD,
                         security.current_totp(s.secrets[user], at=step * 30),
                         clock=step * 30 + 1.0)


def as_user(s: Served, user: str) -> Any:
    c = client(s.app)
    c.headers["Authorization"] = f"Bearer {token(s, user)}"
    return c


@pytest.fixture(scope="module")
def served(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from strongroom.review.app import create_app

    root = tmp_path_factory.mktemp("publish-app")
    usb = root / "usb"
    usb.mkdir()
    faces_clip(usb / "two.mp4", seed=8, seconds=2)
    path = root / "vault"
    shutil.copytree(template.path, path)
    chain = make_chain(root / "certs")
    v = open_vault(path, template.keys, c2pa_cert=chain.chain, c2pa_key=chain.key,
                   organisation="Test NGO", export_dir=str(root / "exports"))
    ingest(v, usb, "test")
    with v.catalogue.read() as r:
        sha = r.scalar(select(Sighting.original_sha256))
    with light_password_hashes():
        secrets = {role: actions.add_user(v, role, role, PASSWORD) for role in ROLES}
    app = create_app(v.settings, v, heartbeat_seconds=1)
    yield Served(v, app, str(sha), secrets, chain)
    v.close()


def draft_through_the_app(s: Served, user: str = "investigator") -> int:
    c = as_user(s, user)
    r = c.post("/publications", data={"sha256": s.sha[:12], "start": "0", "end": "1.5",
                                      "hide": "blur"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_staff_draft_a_second_person_approves_and_staff_publish_a_signed_file(
        served: Served) -> None:
    from strongroom.publish.check import check_file

    pub = draft_through_the_app(served)
    inv = as_user(served, "investigator")
    page = inv.get(f"/publications/{pub}")
    assert page.status_code == 200 and 'id="draft"' in page.text and 'id="approve"' not in page.text
    video = inv.get(f"/publications/{pub}/draft.mp4")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    # the one who asked cannot approve
    r = inv.post(f"/publications/{pub}/approve", follow_redirects=False)
    assert r.status_code == 400 and "someone else" in r.text
    # a lawyer may look, not decide; a reviewer may not look
    lawyer = as_user(served, "lawyer")
    assert lawyer.get(f"/publications/{pub}").status_code == 200
    assert lawyer.post(f"/publications/{pub}/approve").status_code == 403
    assert as_user(served, "reviewer").get("/publications").status_code == 403
    # publishing before approval is refused
    admin = as_user(served, "admin")
    assert admin.post(f"/publications/{pub}/publish").status_code == 400
    assert 'id="approve"' in admin.get(f"/publications/{pub}").text
    r = admin.post(f"/publications/{pub}/approve", follow_redirects=False)
    assert r.status_code == 303
    r = admin.post(f"/publications/{pub}/publish", follow_redirects=False)
    assert r.status_code == 303, r.text
    listed = admin.get("/api/publications").json()["publications"]
    row = next(p for p in listed if p["publication"] == pub)
    assert row["status"] == "published" and row["decided_by"].startswith("admin")
    got = admin.get(f"/publications/{pub}/published.mp4")
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == row["published_sha256"]
    out = Path(served.vault.settings.export_dir) / "publications" / f"publication-{pub}.mp4"
    checked = check_file(out, trust_anchors=served.chain.root, vault=served.vault)
    assert checked["ok"] and checked["vault"]["approved_by"].startswith("admin")
    # a lawyer does not download the published file
    assert lawyer.get(f"/publications/{pub}/published.mp4").status_code == 403
    # the look at the draft is on the record with the investigator's name
    with served.vault.catalogue.read() as r2:
        seen = [json.loads(e.details) for e in r2.scalars(select(CustodyEvent).where(
            CustodyEvent.action == "viewed", CustodyEvent.actor.startswith("investigator")))]
    assert any(d.get("publication") == pub for d in seen)


def test_a_corrected_spec_from_the_page_makes_a_new_version(served: Served) -> None:
    pub = draft_through_the_app(served)
    inv = as_user(served, "investigator")
    spec = inv.get(f"/api/publications/{pub}/spec").json()
    spec["tracks"].append({"id": 500, "boxes": {"0": [5, 5, 60, 60], "10": [20, 5, 75, 60]}})
    r = inv.post(f"/api/publications/{pub}/spec", content=json.dumps(spec),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["spec_version"] == 2
    assert inv.get(f"/api/publications/{pub}/spec").json()["tracks"][-1]["id"] == 500
    # a malformed one: one clear refusal, nothing changes
    r = inv.post(f"/api/publications/{pub}/spec", content=b"{nope",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.text
    # the no-script way: upload a file
    spec["tracks"] = spec["tracks"][:-1]
    r = inv.post(f"/publications/{pub}/spec", files={"spec": (
        "spec.json", json.dumps(spec).encode(), "application/json")}, follow_redirects=False)
    assert r.status_code == 303
    assert inv.get(f"/api/publications/{pub}/spec").json()["tracks"] == spec["tracks"]
