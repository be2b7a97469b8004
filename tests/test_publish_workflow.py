"""Publishing from the command line (issue 16): `publish draft` keeps the redacted draft in
the vault, a second person (investigator or admin, signed in with password and TOTP) approves
it, `publish out` writes it signed with its C2PA provenance, `provenance` checks it, alone and
against the vault. Every step is on the custody record and `verify` checks it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from c2pa_fixtures import Chain, make_chain
from conftest import Template, built_once, cli, light_password_hashes, open_vault
from strongroom.catalogue.models import CustodyEvent, Derivative, Publication, Sighting
from strongroom.ingest import ingest
from strongroom.testfaces import faces_clip


@dataclass
class Prepared:
    path: Path
    template: Template
    faces: str  # sha256 of the clip with two faces
    empty: str  # sha256 of a clip with none
    secrets: dict[str, str]  # user -> TOTP secret
    chain: Chain


PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def prepared(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """Made once per test run (`built_once`: the xdist workers share it) and never changed
    after: tests copy the vault."""
    from strongroom.review.actions import add_user

    def make(root: Path) -> None:
        usb = root / "usb"
        usb.mkdir()
        faces_clip(usb / "faces.mp4", seed=5, seconds=3, audio=True)
        faces_clip(usb / "empty.mp4", seed=6, seconds=2, faces=0)
        path = root / "vault"
        shutil.copytree(template.path, path)
        secrets = {}
        with open_vault(path, template.keys) as v:
            ingest(v, usb, "test clips")
            with v.catalogue.read() as s:
                by_name = {Path(r.rel_path).name: r.original_sha256
                           for r in s.scalars(select(Sighting))}
            with light_password_hashes():
                for name, role in (("ivan", "investigator"), ("lara", "lawyer"),
                                   ("ada", "admin")):
                    secrets[name] = add_user(v, name, role, PASSWORD)
        make_chain(root / "certs")
        (root / "prepared.json").write_text(json.dumps(
            {"faces": by_name["faces.mp4"], "empty": by_name["empty.mp4"], "secrets": secrets}))

    root = built_once(tmp_path_factory, "publish-workflow", make)
    made = json.loads((root / "prepared.json").read_text())
    certs = root / "certs"
    return Prepared(root / "vault", template, made["faces"], made["empty"], made["secrets"],
                    Chain(certs / "chain.pem", certs / "key.pem", certs / "root.pem"))


@pytest.fixture
def vault(prepared: Prepared, tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    shutil.copytree(prepared.path, path)
    return path


def js(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    r = cli(*args, "--json", env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert isinstance(data, dict)
    return data


def code(prepared: Prepared, user: str, at: float | None = None) -> str:
    from strongroom.review.security import current_totp

    return current_totp(prepared.secrets[user], at)


def decide(prepared: Prepared, vault: Path, pub: int, user: str, tmp_path: Path,
           how: str = "approve", at: float | None = None) -> Any:
    pw = tmp_path / f"{user}.pw"
    pw.write_text(PASSWORD + "\n")
    return cli("publish", how, vault, str(pub), "--user", user, "--user-password-file", pw,
               "--totp", code(prepared, user, at), "--json")


def signing_env(prepared: Prepared) -> dict[str, str]:
    return {"STRONGROOM_C2PA_CERT": str(prepared.chain.chain),
            "STRONGROOM_C2PA_KEY": str(prepared.chain.key),
            "STRONGROOM_ORGANISATION": "Test NGO"}


def events(vault: Path, prepared: Prepared) -> list[CustodyEvent]:
    with open_vault(vault, prepared.template.keys) as v, v.catalogue.read() as s:
        rows = list(s.scalars(select(CustodyEvent).order_by(CustodyEvent.seq)))
        s.expunge_all()
    return rows


def test_a_clip_is_published_only_after_a_second_person_approves_it(
        prepared: Prepared, vault: Path, tmp_path: Path) -> None:
    d = js("publish", "draft", vault, prepared.faces[:12], "--from", "0", "--to", "2.5",
           "--mask-voice")
    pub = d["publication"]
    assert d["status"] == "drafted" and d["faces_found"] > 0 and d["tracks"] >= 2
    assert d["audio"] == "masked"
    out = tmp_path / "published.mp4"
    # not approved: nothing is written
    r = cli("publish", "out", vault, str(pub), "-o", out, env=signing_env(prepared))
    assert r.returncode != 0 and "approved" in r.stderr and not out.exists()
    # a lawyer may not approve
    r = decide(prepared, vault, pub, "lara", tmp_path)
    assert r.returncode != 0 and "investigator or an admin" in r.stderr
    # a wrong TOTP code is one clear refusal
    pw = tmp_path / "ivan.pw"
    pw.write_text(PASSWORD + "\n")
    r = cli("publish", "approve", vault, str(pub), "--user", "ivan", "--user-password-file",
            pw, "--totp", "000000")
    assert r.returncode != 0 and not out.exists()
    r = decide(prepared, vault, pub, "ivan", tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "approved"
    done = js("publish", "out", vault, str(pub), "-o", out, env=signing_env(prepared))
    assert out.is_file() and done["sha256"] == __import__("hashlib").sha256(
        out.read_bytes()).hexdigest()
    assert done["approved_by"].startswith("ivan")
    # the provenance reads back, alone and against the vault
    alone = js("provenance", out, "--trust", prepared.chain.root)
    assert alone["ok"] and alone["original_sha256"] == prepared.faces
    assert alone["spec_version"] == 1 and alone["trusted"] is True
    inside = js("provenance", out, "--vault", vault)
    assert inside["ok"] and inside["vault"]["publication"] == pub
    assert inside["vault"]["approved_by"].startswith("ivan")
    # on the record: the draft derived, the decision, the publication on the original
    evs = events(vault, prepared)
    published = [e for e in evs if e.action == "published"]
    assert len(published) == 1 and published[0].subject == f"original:{prepared.faces}"
    details = json.loads(published[0].details)
    assert details["output_sha256"] == done["sha256"] and details["publication"] == pub
    assert details["to"] == str(out)
    changes = [json.loads(e.details).get("change") for e in evs
               if e.subject == f"publication:{pub}"]
    assert changes == ["drafted", "approved", "published"]
    assert cli("verify", vault).returncode == 0
    # published once: not again
    r = cli("publish", "out", vault, str(pub), "-o", tmp_path / "again.mp4",
            env=signing_env(prepared))
    assert r.returncode != 0 and not (tmp_path / "again.mp4").exists()


def test_the_person_who_asked_cannot_approve_their_own_publication(
        prepared: Prepared, vault: Path, tmp_path: Path) -> None:
    d = js("publish", "draft", vault, prepared.faces[:12], "--to", "1",
           env={"STRONGROOM_ACTOR": "ivan"})
    r = decide(prepared, vault, d["publication"], "ivan", tmp_path)
    assert r.returncode != 0 and "someone else" in r.stderr
    assert decide(prepared, vault, d["publication"], "ada", tmp_path).returncode == 0


def test_a_corrected_spec_makes_a_new_version_and_voids_the_approval(
        prepared: Prepared, vault: Path, tmp_path: Path) -> None:
    d = js("publish", "draft", vault, prepared.faces[:12], "--to", "1")
    pub = d["publication"]
    assert decide(prepared, vault, pub, "ivan", tmp_path).returncode == 0
    spec_file = tmp_path / "spec.json"
    assert cli("publish", "spec", vault, str(pub), "-o", spec_file).returncode == 0
    spec = json.loads(spec_file.read_text())
    assert spec["schema"] == "strongroom.redaction/1" and spec["original"] == prepared.faces
    # a person marks one more region (a tattoo, say) on frames 0 to 20
    spec["tracks"].append({"id": 999, "boxes": {"0": [10, 10, 60, 60], "20": [30, 10, 80, 60]}})
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(spec))
    r = js("publish", "revise", vault, str(pub), fixed)
    assert r["spec_version"] == 2 and r["status"] == "drafted"
    assert js("publish", "spec", vault, str(pub))["tracks"][-1]["id"] == 999
    # the approval was of version 1: publishing now is refused
    out = tmp_path / "out.mp4"
    r2 = cli("publish", "out", vault, str(pub), "-o", out, env=signing_env(prepared))
    assert r2.returncode != 0 and not out.exists()
    with open_vault(vault, prepared.template.keys) as v, v.catalogue.read() as s:
        drafts = s.scalars(select(Derivative).where(Derivative.kind == "publication_draft"))
        assert len(list(drafts)) == 2
        row = s.get(Publication, pub)
        assert row is not None and row.decided_by is None
    assert cli("verify", vault).returncode == 0


@pytest.fixture(scope="module")
def drafted(prepared: Prepared, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The prepared vault with one draft of the faces clip (its first half second), and the
    draft's number: made once for the module and never changed (tests copy the vault)."""
    path = tmp_path_factory.mktemp("drafted") / "vault"
    shutil.copytree(prepared.path, path)
    return path, int(js("publish", "draft", path, prepared.faces[:12], "--to", "0.5")[
        "publication"])


@pytest.mark.parametrize("bad", [
    "{not json", json.dumps({"schema": "other"}), json.dumps([1, 2]),
    "BOX_OUTSIDE", "NAN_BOX", "NO_KEYS"])
def test_a_corrupt_spec_is_refused_whole_and_nothing_changes(
        drafted: tuple[Path, int], tmp_path: Path, bad: str) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(drafted[0], vault)
    d = {"publication": drafted[1]}
    before = js("publish", "spec", vault, str(d["publication"]))
    spec = json.loads(json.dumps(before))
    if bad == "BOX_OUTSIDE":
        spec["tracks"] = [{"id": 1, "boxes": {"0": [700, 500, 900, 700]}}]
        bad = json.dumps(spec)
    elif bad == "NAN_BOX":
        spec["tracks"] = [{"id": 77, "boxes": {"0": [float("nan"), 1, 2, 3]}}]
        bad = json.dumps(spec)
    elif bad == "NO_KEYS":
        spec["tracks"] = [{"id": 1, "boxes": {}}]
        bad = json.dumps(spec)
    f = tmp_path / "bad.json"
    f.write_text(bad)
    r = cli("publish", "revise", vault, str(d["publication"]), f)
    assert r.returncode != 0
    assert "redaction spec" in r.stderr and "Traceback" not in r.stderr
    assert js("publish", "spec", vault, str(d["publication"])) == before
    assert js("publish", "list", vault)["publications"][0]["spec_version"] == 1


def test_a_clip_without_faces_needs_a_confirmation_to_be_published(
        prepared: Prepared, vault: Path, tmp_path: Path) -> None:
    d = js("publish", "draft", vault, prepared.empty[:12])
    assert d["faces_found"] == 0 and "no face" in d["warning"]
    assert decide(prepared, vault, d["publication"], "ivan", tmp_path).returncode == 0
    out = tmp_path / "out.mp4"
    r = cli("publish", "out", vault, str(d["publication"]), "-o", out,
            env=signing_env(prepared))
    assert r.returncode != 0 and "--no-faces-ok" in r.stderr and not out.exists()
    js("publish", "out", vault, str(d["publication"]), "-o", out, "--no-faces-ok",
       env=signing_env(prepared))
    assert out.is_file()


def test_bad_requests_get_one_clear_error(prepared: Prepared, vault: Path,
                                          tmp_path: Path) -> None:
    r = cli("publish", "draft", vault, prepared.faces[:12], "--from", "60")
    assert r.returncode != 0 and "after the clip's end" in r.stderr
    r = cli("publish", "draft", vault, prepared.faces[:12], "--from", "2", "--to", "1")
    assert r.returncode != 0 and "must come after" in r.stderr
    r = cli("publish", "draft", vault, prepared.faces[:12], "--hide", "pixelate")
    assert r.returncode != 0 and "--hide" in r.stderr
    r = cli("publish", "approve", vault, "42", "--user", "ivan", "--totp", "123456",
            "--user-password-file", tmp_path / "missing.pw")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    # no signing credentials: refused before anything leaves the vault
    d = js("publish", "draft", vault, prepared.faces[:12], "--to", "0.5")
    assert decide(prepared, vault, d["publication"], "ivan", tmp_path).returncode == 0
    out = tmp_path / "out.mp4"
    r = cli("publish", "out", vault, str(d["publication"]), "-o", out)
    assert r.returncode != 0 and "STRONGROOM_C2PA_CERT" in r.stderr and not out.exists()
    assert not [e for e in events(vault, prepared) if e.action == "published"]


def test_a_changed_published_file_fails_its_provenance_check(
        prepared: Prepared, vault: Path, tmp_path: Path) -> None:
    d = js("publish", "draft", vault, prepared.faces[:12], "--to", "1")
    assert decide(prepared, vault, d["publication"], "ada", tmp_path).returncode == 0
    out = tmp_path / "out.mp4"
    js("publish", "out", vault, str(d["publication"]), "-o", out, env=signing_env(prepared))
    data = bytearray(out.read_bytes())
    i = data.find(b"mdat") + 200
    data[i] ^= 0xFF
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(bytes(data))
    r = cli("provenance", changed, "--json")
    assert r.returncode != 0 and json.loads(r.stdout)["ok"] is False
    r = cli("provenance", changed, "--vault", vault, "--json")
    assert r.returncode != 0 and json.loads(r.stdout)["vault"]["ok"] is False


def test_the_camera_label_can_be_hidden_and_the_dvr_clock_stays(
        template: Template, tmp_path: Path) -> None:
    """`--hide-label`: the label OCR read is hidden on every frame (a cell or ward name can
    say too much); the DVR clock stays, it is evidence of time."""
    import av
    import numpy as np

    from review_fixtures import make_clips
    from strongroom.pipeline.runner import process

    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    with open_vault(path, template.keys) as v:
        ingest(v, make_clips(tmp_path / "usb", n=1), "test")
        process(v, steps=["probe", "overlay_ocr"], workers=1)
        with v.catalogue.read() as s:
            sha = s.scalar(select(Sighting.original_sha256))
    d = js("publish", "draft", path, str(sha)[:12], "--to", "1", "--hide-label", "--no-audio")
    spec = js("publish", "spec", path, str(d["publication"]))
    (label,) = [t for t in spec["tracks"] if len(t["boxes"]) == 2 and "0" in t["boxes"]]
    x0, y0, x1, y1 = (int(v) for v in label["boxes"]["0"])
    out = tmp_path / "draft.mp4"
    assert cli("publish", "show", path, str(d["publication"]), "-o", out).returncode == 0
    with av.open(str(out)) as c:
        after = next(c.decode(video=0)).to_ndarray(format="gray").astype(int)
    with open_vault(path, template.keys) as v:
        plain = tmp_path / "original.mp4"
        with v.open_original(str(sha), to="test") as opened, open(plain, "wb") as f:
            opened.copy_to(f.write)
    with av.open(str(plain)) as c:
        before = next(c.decode(video=0)).to_ndarray(format="gray").astype(int)
    changed = np.abs(after - before)
    assert changed[y0:y1, x0:x1].mean() > 15  # the label is gone
    rest = changed.copy()
    rest[max(0, y0 - 8):y1 + 8, max(0, x0 - 8):x1 + 8] = 0
    assert rest.mean() < 4  # the clock and the scene are as they were



def test_hiding_a_label_never_read_is_one_clear_error(prepared: Prepared, vault: Path) -> None:
    r = cli("publish", "draft", vault, prepared.faces[:12], "--hide-label")
    assert r.returncode != 0 and "no camera label was read" in r.stderr
