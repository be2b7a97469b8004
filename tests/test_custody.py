"""Invariant 3: every access is on the record, and `verify` catches any change to that record
or to the evidence — each tampering a defence lawyer could allege has its own test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from conftest import Template, cli, drop_append_only_triggers, sql
from strongroom.catalogue.models import CustodyEvent, Original
from strongroom.custody.verify import verify
from strongroom.errors import StrongroomError
from strongroom.ingest import ingest
from strongroom.vault import Vault


@pytest.fixture
def filled(vault: Vault, source: Path) -> Vault:
    ingest(vault, source, "USB stick 1")
    return vault


def problems(vault: Vault, fixity: bool = True) -> list[str]:
    return [f"[{p.check}] {p.subject}: {p.message}" for p in verify(vault, fixity=fixity).problems]


def actions(vault: Vault) -> list[str]:
    with vault.catalogue.read() as s:
        return list(s.scalars(select(CustodyEvent.action).order_by(CustodyEvent.seq)))


def test_verify_passes_on_an_untouched_vault(filled: Vault) -> None:
    report = verify(filled)
    assert report.ok, report.problems
    assert report.originals == 4 and report.blobs_checked == 4
    assert report.last_checkpoint == report.events


def test_ingest_records_acquisition_ingest_and_every_sighting(filled: Vault) -> None:
    assert actions(filled) == ["vault_created", "acquired"] + ["ingested"] * 4 + ["sighted"] * 6


def test_the_log_does_not_reveal_the_acquisition_description(filled: Vault) -> None:
    with filled.catalogue.read() as s:
        details = " ".join(s.scalars(select(CustodyEvent.details)))
    assert "USB stick 1" not in details
    assert '"commitment":' in details


def test_custody_tables_are_append_only(filled: Vault) -> None:
    for statement in ("UPDATE custody_event SET actor = 'x' WHERE seq = 1",
                      "DELETE FROM custody_event WHERE seq = 3",
                      "DELETE FROM custody_checkpoint"):
        with pytest.raises((StrongroomError, DBAPIError), match="append-only"), \
                filled.catalogue.write() as s:
            s.execute(text(statement))


def test_verify_detects_an_edited_event(filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    row = sql(vault_path, "SELECT details FROM custody_event WHERE action='sighted' LIMIT 1")
    details = json.loads(str(row[0][0]))
    details["path"] = "DVR/cam99/innocent.h264"
    sql(vault_path, "UPDATE custody_event SET details=? WHERE details=?",
        (json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
         row[0][0]))
    found = problems(filled, fixity=False)
    assert found[0].startswith("[custody]") and "was edited" in found[0]
    # ... and the catalogue row the edited event claims to record no longer has its event
    assert all(p.startswith("[catalogue] sighting") for p in found[1:]), found


def test_verify_detects_an_edited_time(filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    sql(vault_path, "UPDATE custody_event SET time='2019-01-01T00:00:00+00:00' WHERE seq=2")
    assert any("event 2" in p and "was edited" in p for p in problems(filled, fixity=False))


def test_verify_detects_a_deleted_event(filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    sql(vault_path, "DELETE FROM custody_event WHERE seq=5")
    found = problems(filled, fixity=False)
    assert any("sequence gap: expected event 5, found 6" in p for p in found)
    assert any("event 6" in p and "does not link" in p for p in found)


def test_verify_detects_reordered_events(filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    sql(vault_path, "UPDATE custody_event SET seq=-1 WHERE seq=4")
    sql(vault_path, "UPDATE custody_event SET seq=4 WHERE seq=5")
    sql(vault_path, "UPDATE custody_event SET seq=5 WHERE seq=-1")
    found = problems(filled, fixity=False)
    assert any("event 4" in p and "was edited" in p for p in found)
    assert any("event 4" in p and "does not link" in p for p in found)


def test_verify_detects_an_event_appended_by_hand(filled: Vault, vault_path: Path) -> None:
    last = sql(vault_path, "SELECT seq, hash FROM custody_event ORDER BY seq DESC LIMIT 1")[0]
    from strongroom.custody.chain import event_hash

    seq, prev = int(str(last[0])) + 1, str(last[1])
    details = {"sha256": "0" * 64, "to": "stdout"}
    time = "2030-01-01T00:00:00.000000+00:00"
    digest = event_hash(seq=seq, time=time, actor="mallory", action="downloaded",
                        subject="original:" + "0" * 64, details=details, prev_hash=prev)
    sql(vault_path, "INSERT INTO custody_event VALUES (?,?,?,?,?,?,?,?,?)",
        (seq, time, "mallory", "downloaded", "original:" + "0" * 64,
         json.dumps(details, sort_keys=True, separators=(",", ":")), prev, digest,
         "A" * 88))
    found = problems(filled, fixity=False)
    assert found == [f"[custody] event {seq}: signature is not the vault's "
                     "(forged or appended by hand)"]


def test_verify_detects_a_truncated_tail(filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    sql(vault_path, "DELETE FROM custody_event WHERE seq > 9")
    sql(vault_path, "DELETE FROM custody_checkpoint WHERE seq > 9")
    found = problems(filled, fixity=False)
    assert any("truncated" in p for p in found), found
    assert any("removed from the catalogue" in p for p in found)


def test_verify_detects_a_truncated_tail_from_the_catalogue_checkpoints_alone(
        filled: Vault, vault_path: Path) -> None:
    drop_append_only_triggers(vault_path)
    filled.checkpoint_file.unlink()
    sql(vault_path, "DELETE FROM custody_event WHERE seq > 9")
    assert any("truncated" in p for p in problems(filled, fixity=False))


def test_verify_detects_a_changed_blob_ciphertext(filled: Vault) -> None:
    name = next(iter(filled.blobs.names()))
    blob = filled.blobs.root / name[:2] / name
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    found = problems(filled)
    assert len(found) == 1 and "cannot be decrypted" in found[0]


def test_verify_detects_a_blob_swapped_for_other_content(filled: Vault) -> None:
    """Valid age ciphertext for the vault's key, of different plaintext of the same size
    (the largest original: it was encrypted by the same `age` binary, so sizes agree)."""
    with filled.catalogue.read() as s:
        o = s.scalars(select(Original).order_by(Original.size.desc()).limit(1)).one()
    forged = subprocess.run(["age", "-r", filled.public.age_recipient],
                            input=os.urandom(o.size), capture_output=True, check=True).stdout
    (filled.blobs.root / o.blob_name[:2] / o.blob_name).write_bytes(forged)
    found = problems(filled)
    assert len(found) == 1 and "plaintext no longer matches" in found[0]


def test_verify_detects_a_deleted_blob(filled: Vault, vault_path: Path) -> None:
    name = next(iter(filled.blobs.names()))
    (filled.blobs.root / name[:2] / name).unlink()
    found = problems(filled)
    assert len(found) == 1 and "is missing" in found[0]
    r = cli("verify", vault_path)
    assert r.returncode == 1
    assert "is missing" in r.stdout


def test_verify_detects_a_catalogue_row_edited_to_match_a_tampered_file(
        filled: Vault, vault_path: Path) -> None:
    sql(vault_path, "UPDATE original SET md5=? WHERE rowid=1", ("0" * 32,))
    found = problems(filled, fixity=False)
    assert len(found) == 1 and "differs from the custody record" in found[0]


def test_every_access_is_on_the_record(filled: Vault, vault_path: Path,
                                       template: Template, tmp_path: Path) -> None:
    with filled.catalogue.read() as s:
        sha = s.scalars(select(Original.sha256).limit(1)).one()
    r = cli("cat", vault_path, sha[:12], "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).hexdigest() == sha
    assert cli("verify", vault_path, "--quick").returncode == 0
    events = json.loads(cli("log", vault_path, "--json").stdout)
    assert [e["action"] for e in events[-2:]] == ["downloaded", "verified"]
    assert events[-2]["subject"] == f"original:{sha}"
    assert events[-1]["details"]["ok"] is True
    # and the additions themselves verify
    assert cli("verify", vault_path).returncode == 0


def test_cat_streams_the_bit_exact_original_to_stdout(filled: Vault, vault_path: Path,
                                                      source: Path) -> None:
    f = source / "DVR" / "cam07" / "0001.h264"
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    r = cli("cat", vault_path, sha)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == f.read_bytes()


def test_cat_of_an_unknown_hash_is_a_clear_error(vault_path: Path) -> None:
    r = cli("cat", vault_path, "deadbeefdeadbeef")
    assert r.returncode == 2 and "no original with SHA-256 deadbeefdeadbeef" in r.stderr


def test_checkpoint_file_is_an_independent_witness(filled: Vault) -> None:
    lines = [json.loads(x) for x in filled.checkpoint_file.read_text().splitlines()]
    with filled.catalogue.read() as s:
        head = s.execute(select(CustodyEvent.seq, CustodyEvent.hash)
                         .order_by(CustodyEvent.seq.desc()).limit(1)).one()
    assert (lines[-1]["seq"], lines[-1]["head_hash"]) == (head[0], head[1])


def test_sha512_is_recorded_and_checked_when_configured(template: Template, vault_path: Path,
                                                        source: Path) -> None:
    from conftest import open_vault

    v = open_vault(vault_path, template.keys, sha512=True)
    try:
        ingest(v, source, "USB stick 1")
        f = source / "DVR" / "cam07" / "0001.h264"
        with v.catalogue.read() as s:
            o = s.get(Original, hashlib.sha256(f.read_bytes()).hexdigest())
        assert o is not None and o.sha512 == hashlib.sha512(f.read_bytes()).hexdigest()
        assert verify(v).ok
        drop_append_only_triggers(vault_path)
        sql(vault_path, "UPDATE original SET sha512=? WHERE sha256=?", ("0" * 128, o.sha256))
        found = problems(v)
        assert any("plaintext no longer matches" in p for p in found)
        assert any("sha512" in p and "differs from the custody record" in p for p in found)
    finally:
        v.close()


def test_cat_of_a_deleted_blob_is_an_integrity_failure(filled: Vault, vault_path: Path) -> None:
    with filled.catalogue.read() as s:
        o = s.scalars(select(Original).limit(1)).one()
    (filled.blobs.root / o.blob_name[:2] / o.blob_name).unlink()
    r = cli("cat", vault_path, o.sha256, "-o", vault_path.parent / "out.bin", "--json")
    assert r.returncode == 1 and "is missing" in r.stderr
    assert not (vault_path.parent / "out.bin").exists()
