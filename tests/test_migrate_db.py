"""`migrate-db` (issue 18, point 5): a laptop vault's SQLCipher catalogue moved to Debian's
PostgreSQL — every row, counted; the custody chain checked there; the custody event
`migrated`; then the vault works from PostgreSQL (verify with fixity, another ingest, the
log), and a target that is not empty is refused without changing anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import create_engine, text

from conftest import cli
from strongroom.testmedia import still_clip


def test_a_laptop_catalogue_moves_to_postgresql(tmp_path: Path, postgres_url: str) -> None:
    vault = tmp_path / "vault"
    assert cli("init", vault).returncode == 0
    usb = tmp_path / "usb"
    usb.mkdir()
    still_clip(usb / "cam1.mp4", 320, 240, frames=5)
    (usb / "notes.bin").write_bytes(os.urandom(20_000))
    assert cli("ingest", vault, usb, "-a", "USB stick 1").returncode == 0
    r = cli("process", vault, "--workers", "1", "--steps", "probe,keyframes", "--json")
    # the clip analysed, the file that is not media with its errors: rows of both kinds
    assert r.returncode == 1 and {e["file"] for e in json.loads(r.stdout)["error_list"]} == {
        "notes.bin"}
    r = cli("migrate-db", vault, postgres_url, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"]["original"] == 2 and out["rows"]["custody_event"] > 5
    assert out["verify"]["ok"] is True
    assert json.loads((vault / "vault.json").read_text())["database"] == postgres_url
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM original")).scalar() == 2
        moved = conn.execute(text("SELECT details FROM custody_event WHERE action = "
                                  "'migrated'")).scalars().all()
    assert len(moved) == 1 and json.loads(moved[0])["what"] == "catalogue"
    # the vault works from PostgreSQL now, no setting needed, even once the old catalogue
    # file is gone
    for leftover in vault.glob("catalogue.db*"):
        leftover.unlink()
    r = cli("verify", vault, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stdout
    usb2 = tmp_path / "usb2"
    usb2.mkdir()
    (usb2 / "more.bin").write_bytes(os.urandom(10_000))
    assert cli("ingest", vault, usb2, "-a", "USB stick 2").returncode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM original")).scalar() == 3
    engine.dispose()
    r = cli("stats", vault, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["originals"] == 3, r.stdout + r.stderr
    assert cli("verify", vault, "--json").returncode == 0


def test_a_target_that_holds_a_catalogue_is_refused(tmp_path: Path, postgres_url: str) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for v in (first, second):
        assert cli("init", v).returncode == 0
    assert cli("migrate-db", first, postgres_url).returncode == 0
    before = (second / "vault.json").read_text()
    r = cli("migrate-db", second, postgres_url)
    assert r.returncode == 2 and "already holds a catalogue" in r.stderr
    assert (second / "vault.json").read_text() == before
    r = cli("stats", first, env={"STRONGROOM_DATABASE_URL": postgres_url + "x"})
    assert r.returncode == 2 and "this vault's catalogue is in" in r.stderr
