"""Issue 10: the data-loss, tamper-detection and error-handling holes a hostile test found.

Each test is named after the promise it keeps. The vault's own doors (init, demo, verify, the
checkpoint file, every command's errors) are here; export, ingest and pipeline hardening have
their own files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import (
    CLI,
    Template,
    cli,
    cli_env,
    cli_subprocess,
    drop_append_only_triggers,
    open_vault,
    sql,
    write,
)
from strongroom.catalogue.models import CustodyCheckpoint, CustodyEvent
from strongroom.custody.verify import verify
from strongroom.ingest import ingest
from strongroom.vault import Vault


def problems(vault: Vault, fixity: bool = False, **kw: object) -> list[str]:
    return [f"[{p.check}] {p.subject}: {p.message}"
            for p in verify(vault, fixity=fixity, **kw).problems]  # type: ignore[arg-type]


@pytest.fixture
def filled(vault: Vault, source: Path) -> Vault:
    ingest(vault, source, "USB stick 1", received_by="A.B.")
    return vault


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


# -- data loss: demo and init -----------------------------------------------------------------
def test_demo_never_deletes_a_folder_it_did_not_make(vault_path: Path, tmp_path: Path) -> None:
    someones = tmp_path / "thesis"
    write(someones / "chapter1.docx", b"two years of work")
    for target in (vault_path, someones):
        before = tree(target)
        for extra in ([], ["--force"]):
            r = cli("demo", target, *extra)
            assert r.returncode == 2, r.stderr
            assert "not a folder that `strongroom demo` made" in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
            assert tree(target) == before


def test_demo_refuses_a_file_as_its_path(tmp_path: Path) -> None:
    f = write(tmp_path / "notes.txt", b"keep me")
    r = cli("demo", f, "--force")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f.read_bytes() == b"keep me"


def test_demo_folders_of_a_real_vault_beside_a_demo_are_not_touched(tmp_path: Path) -> None:
    """The demo also writes NAME-media and NAME-handover: a real folder by that name stops it
    before anything is removed, even with --force."""
    from strongroom.demo import DEMO_MARK, clear_demo_folders

    root = tmp_path / "demo-vault"
    write(root / DEMO_MARK, b"")
    write(tmp_path / "demo-vault-handover" / "bag" / "evidence.mp4", b"real")
    with pytest.raises(Exception, match="not a folder that `strongroom demo` made"):
        clear_demo_folders(root, force=True)
    assert (root / DEMO_MARK).exists()
    assert (tmp_path / "demo-vault-handover" / "bag" / "evidence.mp4").read_bytes() == b"real"
    shutil.rmtree(tmp_path / "demo-vault-handover")
    with pytest.raises(Exception, match="add --force"):
        clear_demo_folders(root, force=False)
    clear_demo_folders(root, force=True)
    assert not root.exists()


def test_init_never_deletes_a_vault_that_lost_its_marker(filled: Vault, vault_path: Path) -> None:
    filled.close()
    (vault_path / "vault.json").unlink()
    before = tree(vault_path)
    r = cli("init", vault_path)
    assert r.returncode == 2
    assert "holds vault files" in r.stderr and "keys.age" in r.stderr
    assert tree(vault_path) == before


def test_init_under_a_file_is_one_clear_line(tmp_path: Path) -> None:
    f = write(tmp_path / "afile", b"x")
    r = cli("init", f / "v")
    assert r.returncode == 2 and "is not a folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert f.read_bytes() == b"x"


def test_a_new_passphrase_has_the_same_minimum_from_anywhere(tmp_path: Path) -> None:
    r = cli("init", tmp_path / "v1", env={"STRONGROOM_PASSPHRASE": "x"})
    assert r.returncode == 2 and "at least 12 characters" in r.stderr
    pf = write(tmp_path / "pass.txt", b"short\n")
    r = cli("init", tmp_path / "v2", "--passphrase-file", pf)
    assert r.returncode == 2 and "at least 12 characters" in r.stderr
    assert not (tmp_path / "v1").exists() and not (tmp_path / "v2").exists()


# -- tampering verify must see ----------------------------------------------------------------
def test_verify_sees_a_deleted_original_even_with_its_blob_gone(filled: Vault,
                                                                vault_path: Path) -> None:
    sha, blob = sql(vault_path, "SELECT sha256, blob_name FROM original LIMIT 1")[0]
    drop_append_only_triggers(vault_path)
    sql(vault_path, "PRAGMA foreign_keys=OFF")
    sql(vault_path, "DELETE FROM sighting WHERE original_sha256=?", (sha,))
    sql(vault_path, "DELETE FROM original WHERE sha256=?", (sha,))
    found = problems(filled)
    assert any(f"original {sha}" in p and "(deleted)" in p for p in found), found
    assert any("sighting" in p and "missing from the catalogue" in p for p in found), found
    (filled.blobs.root / str(blob)[:2] / str(blob)).unlink()
    found = problems(filled, fixity=True)
    assert any(f"original {sha}" in p and "(deleted)" in p for p in found), found


EDITS = {
    "sighting path": ("UPDATE sighting SET rel_path='DVR/cam99/other.h264' WHERE id=1",
                      "sighting"),
    "sighting mtime": ("UPDATE sighting SET mtime_ns=mtime_ns+1000000000 WHERE id=1",
                       "mtime_ns"),
    "acquisition description": (
        "UPDATE acquisition SET description='USB stick 9'", "commitment"),
    "acquisition received_by": ("UPDATE acquisition SET received_by='nobody'", "commitment"),
    "original mime": ("UPDATE original SET mime='video/mp4'", "mime"),
    "original ingested_at": (
        "UPDATE original SET ingested_at='2019-01-01 00:00:00.000000'", "ingested_at"),
    "original first_acquisition_id": (
        "INSERT INTO acquisition (id, description, source_path, medium, created_at, actor, "
        "nonce) VALUES (7, 'x', '/x', 'folder', '2020-01-01', 'x', 'x'); "
        "UPDATE original SET first_acquisition_id=7", "first_acquisition_id"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_every_evidence_field_of_the_catalogue_is_covered_by_the_log(
        filled: Vault, vault_path: Path, edit: str) -> None:
    statements, needle = EDITS[edit]
    assert problems(filled) == []
    for statement in statements.split("; "):
        sql(vault_path, statement)
    found = problems(filled)
    assert any(needle in p for p in found), found


def test_a_row_added_by_hand_has_no_event_and_is_reported(filled: Vault,
                                                          vault_path: Path) -> None:
    sha = sql(vault_path, "SELECT sha256 FROM original LIMIT 1")[0][0]
    sql(vault_path, "INSERT INTO sighting (acquisition_id, original_sha256, rel_path, kind, "
                    "size, seen_at) VALUES (1, ?, 'planted.mp4', 'file', 1, '2020-01-01')",
        (sha,))
    assert any("planted.mp4" in p and "no custody event" in p for p in problems(filled))


# -- every command ends with a checkpoint ---------------------------------------------------------
def test_every_command_that_appends_events_ends_with_a_checkpoint(filled: Vault) -> None:
    with filled.write(checkpoint=False) as s:
        filled.record(s, "annotated", "vault:test", {"note": "no checkpoint in this write"})
    with filled.catalogue.read() as s:
        head = s.scalar(select(func.max(CustodyEvent.seq)))
        last = s.scalar(select(func.max(CustodyCheckpoint.seq)))
    assert last is not None and head is not None and last < head
    filled.close()
    with filled.catalogue.read() as s:
        assert s.scalar(select(func.max(CustodyCheckpoint.seq))) == head
    lines = filled.checkpoint_file.read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == head


# -- the checkpoint file --------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["deleted", "emptied", "shortened"])
def test_a_missing_or_shortened_checkpoint_file_is_a_problem(filled: Vault, how: str) -> None:
    f = filled.checkpoint_file
    lines = f.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 2
    if how == "deleted":
        f.unlink()
    elif how == "emptied":
        f.write_bytes(b"")
    else:
        f.write_bytes(b"".join(lines[:-1]))
    found = problems(filled)
    assert any("not in the checkpoint file" in p for p in found), found
    assert not verify(filled, fixity=False).ok


def test_a_checkpoint_a_kill_kept_from_the_file_is_published_by_the_next_write(
        filled: Vault, source: Path) -> None:
    """`process` killed between committing a checkpoint and appending it to the file (seen
    under kill -9 in test_process_resumes_after_sigkill): the file lacks the catalogue's last
    checkpoint, and `verify` took it for a file shortened by hand. The next command that
    writes appends what the file's tail lacks, in order, before its own."""
    f = filled.checkpoint_file
    lines = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(lines[:-1]))  # the state such a kill leaves
    missing = json.loads(lines[-1])["seq"]
    write(source / "later.h264", b"recorded later" * 1000)
    ingest(filled, source, "USB stick 1", received_by="A.B.")
    seqs = [json.loads(x)["seq"] for x in f.read_bytes().splitlines()]
    assert missing in seqs and seqs == sorted(set(seqs)), seqs
    with filled.catalogue.read() as s:
        assert seqs[-1] == s.scalar(select(func.max(CustodyCheckpoint.seq)))
    assert problems(filled) == []


@pytest.mark.parametrize("line", [b"{}", b'{"seq":"abc"}', b"[1,2]", b"5", b"\xff\xfe{",
                                  b'{"seq":3,"head_hash":"zz","time":"t","signature":"s"}',
                                  b"[" * 200_000 + b"]" * 200_000, b"[" * 3000 + b"]" * 3000,
                                  b'{"seq":' + b"9" * 5000 + b"}"])
def test_a_crafted_checkpoint_line_is_a_named_problem(filled: Vault, line: bytes) -> None:
    with open(filled.checkpoint_file, "ab") as f:
        f.write(line + b"\n")
    n = len(filled.checkpoint_file.read_bytes().splitlines())
    found = problems(filled)
    assert any(f"custody-checkpoints.jsonl line {n}: not a checkpoint" in p for p in found), found


def test_an_offsite_checkpoint_copy_catches_a_rollback_of_database_and_file(
        filled: Vault, vault_path: Path, tmp_path: Path, source: Path) -> None:
    copy = tmp_path / "offsite-checkpoints.jsonl"
    write(source / "later.h264", b"recorded later" * 1000)
    ingest(filled, source, "USB stick 1", received_by="A.B.")
    shutil.copy(filled.checkpoint_file, copy)
    assert verify(filled, fixity=False, checkpoints_copy=copy).ok
    # Roll the vault back to before the second ingest, in the database *and* the file.
    keep = 12
    drop_append_only_triggers(vault_path)
    sql(vault_path, "PRAGMA foreign_keys=OFF")
    sql(vault_path, "DELETE FROM custody_event WHERE seq > ?", (keep,))
    sql(vault_path, "DELETE FROM custody_checkpoint WHERE seq > ?", (keep,))
    sql(vault_path, "DELETE FROM sighting WHERE rel_path='later.h264'")
    sql(vault_path, "DELETE FROM original WHERE sha256 NOT IN (SELECT original_sha256 FROM "
                    "sighting WHERE original_sha256 IS NOT NULL)")
    kept = [ln for ln in filled.checkpoint_file.read_text().splitlines()
            if json.loads(ln)["seq"] <= keep]
    filled.checkpoint_file.write_text("\n".join(kept) + "\n")
    assert verify(filled, fixity=False).ok  # consistent with itself ...
    found = problems(filled, checkpoints_copy=copy)  # ... but not with the copy kept elsewhere
    assert any("off-site copy" in p and "truncated" in p for p in found), found


def test_verify_checkpoints_option_compares_with_a_copy(filled: Vault, vault_path: Path,
                                                        tmp_path: Path) -> None:
    filled.close()
    copy = tmp_path / "copy.jsonl"
    shutil.copy(vault_path / "custody-checkpoints.jsonl", copy)
    r = cli("verify", vault_path, "--quick", "--checkpoints", copy, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["offsite_checkpoints"] == len(copy.read_text().splitlines())
    r = cli("verify", vault_path, "--checkpoints", tmp_path / "nothing.jsonl")
    assert r.returncode == 2 and "no checkpoint file" in r.stderr


# -- verify is a snapshot --------------------------------------------------------------------------
def test_verify_during_an_ingest_reports_no_false_problems(
        template: Template, vault_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "many"
    for i in range(300):
        write(src / f"d{i % 7}" / f"clip{i:04d}.h264", bytes([i % 256]) * (20_000 + i))
    writer = open_vault(vault_path, template.keys, commit_files=4)
    reader = open_vault(vault_path, template.keys)
    done = threading.Event()

    def run() -> None:
        try:
            ingest(writer, src, "a big stick")
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    rounds, seen = 0, []
    while not done.is_set() or rounds == 0:
        seen += problems(reader, fixity=True)
        rounds += 1
    t.join()
    writer.close()
    assert seen == [], seen[:5]
    assert rounds >= 2
    assert verify(reader).ok
    reader.close()


# -- every error is one line with exit code 2 -----------------------------------------------------
def bad_paths(tmp: Path, template: Template) -> dict[str, Path]:
    garbage_db = tmp / "garbage-db"
    shutil.copytree(template.path, garbage_db)
    for suffix in ("-wal", "-shm"):
        (garbage_db / f"catalogue.db{suffix}").unlink(missing_ok=True)
    (garbage_db / "catalogue.db").write_bytes(b"this is not SQLite" * 100)
    garbage_keys = tmp / "garbage-keys"
    shutil.copytree(template.path, garbage_keys)
    (garbage_keys / "keys.age").write_bytes(b"\x00garbage")
    write(tmp / "afile", b"not a vault")
    (tmp / "empty").mkdir()
    return {"missing": tmp / "missing", "a file": tmp / "afile", "empty folder": tmp / "empty",
            "garbage catalogue": garbage_db, "garbage keys.age": garbage_keys}


SHA = "deadbeef" * 8
COMMANDS: dict[str, list[str]] = {
    "init": ["init", "{p}"],
    "ingest": ["ingest", "{p}", "{src}", "-a", "stick"],
    "verify": ["verify", "{p}"],
    "log": ["log", "{p}"],
    "cat": ["cat", "{p}", SHA],
    "stats": ["stats", "{p}"],
    "process": ["process", "{p}"],
    "timeline": ["timeline", "{p}"],
    "dupes": ["dupes", "{p}"],
    "cameras": ["cameras", "list", "{p}"],
    "map camera": ["cameras", "map", "{p}", "КАМ 01", "--facility", "ОТБ-1"],
    "rename camera": ["cameras", "rename", "{p}", "КАМ 01", "КАМ 1"],
    "merge cameras": ["cameras", "merge", "{p}", "КАМ 01", "КАМ 02"],
    "contact-sheet": ["contact-sheet", "{p}", SHA, "-o", "{out}/sheet.jpg"],
    "export": ["export", "{p}", "--all", "--to", "{out}"],
    "verify-export": ["verify-export", "{p}"],
    "handed-over": ["handed-over", "{p}", "bag-id", "--to", "court"],
    "receipt": ["receipt", "{p}", "--sign-with", "{src}/key"],
    "import-receipt": ["import-receipt", "{p}", "{src}/receipt.json"],
    "demo": ["demo", "{p}"],
}
# `init` and `demo` make what is missing, and `init` takes an empty folder; commands that need
# no passphrase never read keys.age: those succeed.
SUCCEEDS = {("init", "missing"), ("init", "empty folder"), ("demo", "missing")} | {
    (c, "garbage keys.age") for c in ("log", "stats", "timeline", "dupes", "cameras")}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_fails_on_bad_vault_paths_with_one_line_and_exit_2(
        command: str, template: Template, tmp_path: Path) -> None:
    paths = bad_paths(tmp_path, template)
    src = tmp_path / "src"
    write(src / "a.bin", b"a")
    write(src / "receipt.json", b"{}")
    write(src / "key", b"not a key")
    out = tmp_path / "out"
    out.mkdir()
    for kind, p in paths.items():
        if (command, kind) in SUCCEEDS:
            continue
        args = [a.format(p=p, src=src, out=out) for a in COMMANDS[command]]
        # --json once per command (each run costs a Python start-up and often an unseal)
        for as_json in (False, True) if kind == "garbage catalogue" else (False,):
            r = cli(*args, *(["--json"] if as_json else []))
            where = f"{command} on {kind}{' --json' if as_json else ''}"
            assert r.returncode == 2, f"{where}: exit {r.returncode}: {r.stderr}"
            assert "Traceback" not in r.stderr, where
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}: {r.stderr}"
            if as_json:
                assert json.loads(r.stdout)["exit_code"] == 2, where
            else:
                assert r.stdout == "", where


def test_garbage_or_damaged_keys_are_not_called_a_wrong_passphrase(vault_path: Path) -> None:
    keys = vault_path / "keys.age"
    sealed = keys.read_bytes()
    for content in (b"", b"garbage", sealed[:60]):
        keys.write_bytes(content)
        r = cli("verify", vault_path)
        assert r.returncode == 2 and "wrong passphrase" not in r.stderr, r.stderr
        assert "keys.age" in r.stderr
    keys.unlink()
    keys.mkdir()
    r = cli("verify", vault_path)
    assert r.returncode == 2 and "keys.age cannot be read" in r.stderr


def test_a_passphrase_file_that_is_not_utf8_is_one_clear_line(vault_path: Path,
                                                              tmp_path: Path) -> None:
    pf = write(tmp_path / "pass", b"\xff\xfe not text\n")
    r = cli("stats", vault_path)  # no passphrase needed: still fine
    assert r.returncode == 0
    r = cli("verify", vault_path, "--passphrase-file", pf)
    assert r.returncode == 2 and r.stderr.strip().endswith("is not UTF-8 text")


def test_verify_never_creates_a_missing_catalogue(vault_path: Path) -> None:
    for name in ("catalogue.db", "catalogue.db-wal", "catalogue.db-shm"):
        (vault_path / name).unlink(missing_ok=True)
    r = cli("verify", vault_path)
    assert r.returncode == 2 and "catalogue.db is missing" in r.stderr
    assert not (vault_path / "catalogue.db").exists()


def test_a_usage_error_is_the_usage_and_one_line(tmp_path: Path) -> None:
    r = cli("ingest", tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("Usage: strongroom ingest")
    assert lines[-1].startswith("error: ") and len(lines) == 2, r.stderr
    assert "╭" not in r.stderr
    r = cli("process", tmp_path, "--workers", "many", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["exit_code"] == 2


def test_cat_to_a_bad_destination_is_one_line_and_not_logged(filled: Vault, vault_path: Path,
                                                             tmp_path: Path) -> None:
    filled.close()
    sha = str(sql(vault_path, "SELECT sha256 FROM original LIMIT 1")[0][0])
    (tmp_path / "somedir").mkdir()
    for dest in (tmp_path / "missing" / "x", tmp_path / "somedir"):
        r = cli("cat", vault_path, sha, "-o", dest)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    downloads = sql(vault_path, "SELECT count(*) FROM custody_event WHERE action='downloaded'")
    assert downloads[0][0] == 0
    r = cli("cat", vault_path, sha, "-o", tmp_path / "ok.bin")
    assert r.returncode == 0, r.stderr
    assert sql(vault_path, "SELECT count(*) FROM custody_event "
                           "WHERE action='downloaded'")[0][0] == 1


def test_cat_with_stdout_closed_is_one_line_and_logged_as_incomplete(
        filled: Vault, vault_path: Path) -> None:
    filled.close()
    sha = str(sql(vault_path, "SELECT sha256 FROM original ORDER BY size DESC LIMIT 1")[0][0])
    proc = subprocess.Popen([*CLI, "cat", str(vault_path), sha],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1000)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    rows = sql(vault_path, "SELECT details FROM custody_event WHERE action='downloaded'")
    assert len(rows) == 1 and json.loads(str(rows[0][0]))["complete"] is False


def test_a_camera_mapped_to_another_facility_by_hand_is_reported(filled: Vault,
                                                                  vault_path: Path) -> None:
    from strongroom.catalogue.places import map_camera

    sql(vault_path, "INSERT INTO camera (id, label) VALUES (1, 'КАМ 03 ПФРСИ'), (2, 'КАМ 07')")
    map_camera(filled, "КАМ 03 ПФРСИ", "ОТБ-1", facility_type="ОТБ", region="Саратов")
    map_camera(filled, "КАМ 07", "ОТБ-1", facility_type="ОТБ", region="Саратовская обл.")
    assert problems(filled) == []
    sql(vault_path, "INSERT INTO facility (id, name) VALUES (9, 'ИК-10')")
    sql(vault_path, "UPDATE camera SET facility_id=9 WHERE id=1")
    assert any("camera 'КАМ 03 ПФРСИ'" in p and "facility_id" in p for p in problems(filled))
    sql(vault_path, "UPDATE camera SET facility_id=(SELECT id FROM facility WHERE "
                    "name='ОТБ-1') WHERE id=1")
    # a facility is a record of its own: one added by hand is named even when no camera uses it
    assert problems(filled) == ["[catalogue] facility 9: no custody event records it (added "
                                "by hand)"]
    sql(vault_path, "DELETE FROM facility WHERE id=9")
    assert problems(filled) == []
    sql(vault_path, "UPDATE facility SET region='Москва' WHERE name='ОТБ-1'")
    assert any("facility 'ОТБ-1'" in p and "region" in p for p in problems(filled))


def test_two_different_checkpoints_for_one_position_are_reported(filled: Vault) -> None:
    from strongroom.custody.chain import checkpoint_signing_input

    lines = filled.checkpoint_file.read_text().splitlines()
    cp = json.loads(lines[-1])
    forged = {**cp, "time": "2030-01-01T00:00:00+00:00"}
    sig = filled.keys.sign(checkpoint_signing_input(cp["seq"], cp["head_hash"], forged["time"]))
    import base64

    forged["signature"] = base64.b64encode(sig).decode()
    with open(filled.checkpoint_file, "a") as f:
        f.write(json.dumps(forged) + "\n")
    assert any("two different checkpoints" in p for p in problems(filled))


def test_a_planted_demo_marker_does_not_let_demo_delete_real_files(tmp_path: Path) -> None:
    from strongroom.demo import DEMO_MARK

    planted = tmp_path / "planted"
    write(planted / "precious.doc", b"precious")
    write(planted / DEMO_MARK, b"made by `strongroom demo`")
    r = cli("demo", planted, "--force")
    assert r.returncode == 2 and "not a folder that `strongroom demo` made" in r.stderr
    assert (planted / "precious.doc").read_bytes() == b"precious"
    for name in (".", ""):
        r = cli("demo", name, "--force")
        assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("how", ["emptied", "zero bytes", "from another vault"])
def test_an_emptied_or_foreign_catalogue_is_refused_not_verified_ok(
        filled: Vault, vault_path: Path, tmp_path: Path, how: str) -> None:
    filled.close()
    db = vault_path / "catalogue.db"
    for suffix in ("-wal", "-shm"):
        (vault_path / f"catalogue.db{suffix}").unlink(missing_ok=True)
    if how == "emptied":
        drop_append_only_triggers(vault_path)
        for table in ("custody_event", "custody_checkpoint", "sighting", "original",
                      "acquisition"):
            sql(vault_path, f"DELETE FROM {table}")  # noqa: S608 - fixed names
    elif how == "zero bytes":
        db.write_bytes(b"")
    else:
        other = tmp_path / "other"
        assert cli("init", other).returncode == 0
        shutil.copy(other / "catalogue.db", db)
    (vault_path / "custody-checkpoints.jsonl").unlink()
    size = db.stat().st_size
    for command in (["verify", "--quick"], ["stats"], ["ingest", str(tmp_path), "-a", "x"]):
        r = cli(command[0], vault_path, *command[1:])
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "restore it from a backup" in r.stderr
    assert db.stat().st_size == size  # nothing was written into it


def test_a_duplicated_checkpoint_line_is_a_problem(filled: Vault) -> None:
    lines = filled.checkpoint_file.read_bytes().splitlines(keepends=True)
    filled.checkpoint_file.write_bytes(lines[0] + b"".join(lines))
    assert any("holds this checkpoint twice" in p for p in problems(filled))


@pytest.mark.parametrize("edit", ["UPDATE custody_event SET seq=9223372036854775807 WHERE seq=5",
                                  "UPDATE custody_event SET actor=x'ff00' WHERE seq=5",
                                  "UPDATE custody_event SET details='[[[[[[' WHERE seq=5"])
def test_a_malformed_event_is_a_named_problem_not_a_crash(filled: Vault, vault_path: Path,
                                                          edit: str) -> None:
    drop_append_only_triggers(vault_path)
    sql(vault_path, edit)
    report = verify(filled, fixity=False)
    assert not report.ok and any(p.check == "custody" for p in report.problems)


def test_two_inits_of_one_folder_at_once_make_one_vault(tmp_path: Path) -> None:
    for trial in range(3):
        target = tmp_path / f"v{trial}"
        procs = [subprocess.Popen([*CLI, "init", str(target), "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=cli_env(), text=True) for _ in range(2)]
        results = [(p.wait(120), p.stdout.read() if p.stdout else "",
                    p.stderr.read() if p.stderr else "") for p in procs]
        codes = sorted(r[0] for r in results)
        assert codes == [0, 2], results
        winner = next(json.loads(out) for code, out, _ in results if code == 0)
        marker = json.loads((target / "vault.json").read_text())
        assert marker["public"]["fingerprint"] == winner["signing_key_fingerprint"]
        r = cli("verify", target)
        assert r.returncode == 0, r.stdout + r.stderr


def test_files_a_user_names_are_read_with_a_cap(vault_path: Path, tmp_path: Path) -> None:
    """/dev/zero as a passphrase file or a key: one clear line, not a machine out of memory."""
    r = cli("verify", vault_path, "--passphrase-file", "/dev/zero")
    assert r.returncode == 2 and "larger than any passphrase file" in r.stderr
    (tmp_path / "bag").mkdir()
    r = cli("verify", vault_path, "--quick", "--checkpoints", "/dev/zero")
    assert r.returncode == 1 and "not a regular file" in r.stdout


def test_bad_option_values_and_closed_stdout_are_one_line(vault_path: Path,
                                                         tmp_path: Path) -> None:
    for args in (["log", vault_path, "--limit", "-1"],
                 ["log", vault_path, "--limit", "99999999999999999999"],
                 ["verify-export", tmp_path, "--workers", "-5"],
                 ["verify-export", tmp_path, "--tsa-cert", tmp_path / "nothing.pem"],
                 ["init", vault_path / "blobs" / "inner"]):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip().splitlines()[-1].startswith("error: "), (args, r.stderr)
    r = subprocess.run(["bash", "-c", 'exec "$0" -m strongroom.cli cat "$1" "$2" >&-',
                        sys.executable, str(vault_path), "ab" * 8], capture_output=True,
                       text=True,
                       env=cli_env())
    assert r.returncode == 2 and "standard output is closed" in r.stderr, r.stderr
    r = cli("init", tmp_path / "v", env={"STRONGROOM_PASSPHRASE": " " * 12})
    assert r.returncode == 2 and "at least 12" in r.stderr


def test_demo_force_never_deletes_files_added_inside_a_finished_demo(tmp_path: Path) -> None:
    from strongroom.demo import _mark, clear_demo_folders, demo_folders

    root = tmp_path / "demo-vault"
    vault, media, handover = demo_folders(root)
    write(vault / "blobs" / "ab" / "abcd", b"ciphertext")
    write(media / "usb1" / "DVR" / "clip.mp4", b"generated")
    write(handover / "bag" / "bagit.txt", b"BagIt")
    for folder in (vault, media, handover):
        _mark(folder, finished=True)
    real = write(media / "usb1" / "DVR" / "real-clip.mp4", b"copied from a real stick")
    with pytest.raises(Exception, match="not a folder that `strongroom demo` made"):
        clear_demo_folders(root, force=True)
    assert real.read_bytes() == b"copied from a real stick"
    real.unlink()
    write(vault / "catalogue.db-wal", b"")  # SQLite's own comings and goings are fine
    clear_demo_folders(root, force=True)
    assert not any(f.exists() for f in (vault, media, handover))


def test_quick_verify_notices_missing_blobs_and_malformed_cells(filled: Vault,
                                                               vault_path: Path) -> None:
    name = str(sql(vault_path, "SELECT blob_name FROM original LIMIT 1")[0][0])
    (filled.blobs.root / name[:2] / name).unlink()
    assert any("fixity" in p for p in problems(filled, fixity=False))
    sql(vault_path, "UPDATE original SET ingested_at='2020-03-15 23:49:56.000000xyz' "
                    "WHERE blob_name=?", (name,))
    assert any("edited by hand" in p for p in problems(filled, fixity=False))


def test_an_empty_passphrase_is_not_called_damaged_keys(vault_path: Path) -> None:
    r = cli("verify", vault_path, "--quick", env={"STRONGROOM_PASSPHRASE": ""})
    assert r.returncode == 2 and "passphrase is empty" in r.stderr, r.stderr


def test_a_fifo_as_the_checkpoint_file_is_a_named_problem(filled: Vault) -> None:
    import os

    filled.checkpoint_file.unlink()
    os.mkfifo(filled.checkpoint_file)
    assert any("not a regular file" in p for p in problems(filled))


def test_a_case_or_incident_planted_or_edited_by_hand_is_reported(filled: Vault,
                                                                  vault_path: Path) -> None:
    from datetime import UTC, datetime

    from strongroom.catalogue.models import CaseFile, CaseIncident, Incident, IncidentOriginal

    sha = str(sql(vault_path, "SELECT sha256 FROM original LIMIT 1")[0][0])
    with filled.write() as s:
        inc = Incident(title="Избиение", abuse_types=["beating"], severity=4,
                       created_at=datetime.now(UTC))
        case = CaseFile(name="Саратов ОТБ-1", purpose="prosecution", created_at=datetime.now(UTC))
        s.add_all([inc, case])
        s.flush()
        s.add_all([CaseIncident(case_id=case.id, incident_id=inc.id),
                   IncidentOriginal(incident_id=inc.id, original_sha256=sha)])
        filled.annotate(s, "incident", inc.id, "created")
        filled.annotate(s, "case", case.id, "created")
    assert problems(filled) == []
    sql(vault_path, "UPDATE incident SET description='planted: guard Ivanov'")
    assert any("incident 1" in p and "edited by hand" in p for p in problems(filled))
    sql(vault_path, "UPDATE incident SET description=NULL")
    assert problems(filled) == []
    sql(vault_path, "INSERT INTO incident (title, created_at) VALUES ('forged', '2026-01-01')")
    sql(vault_path, "INSERT INTO case_incident VALUES (1, 2)")
    found = problems(filled)
    assert any("incident 2" in p and "added by hand" in p for p in found), found
    assert any("case 1" in p and "edited by hand" in p for p in found), found


def test_strongroom_alone_shows_the_help_and_is_no_error() -> None:
    r = cli_subprocess()  # what the process prints from start-up on: nothing on stderr
    assert r.returncode == 0 and "Usage: strongroom" in r.stdout and r.stderr == ""
