"""The vault is the only door to evidence: every access is recorded by the door itself, crypto
lives only in `vault/`, and only `vault/` and `custody/` append custody events."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import make_plaintext_catalogue
from strongroom.catalogue.models import CustodyEvent, Derivative, Original
from strongroom.custody.verify import verify
from strongroom.errors import IntegrityError, StrongroomError, VaultSealed
from strongroom.ingest import ingest
from strongroom.vault import Vault

SRC = Path(__file__).resolve().parent.parent / "src" / "strongroom"
#: Crypto may be imported here only; the bag's standalone verifier and the RFC 3161 client
#: carry their own (they must run without Strongroom), and so does the intake: a separate app
#: on its own host that holds only the vault's public key and never imports the vault
#: (`test_the_intake_never_imports_the_vault`).
CRYPTO_HOME = ("vault/", "intake/")
CRYPTO_EXCEPTIONS = {"export/timestamp.py", "export/verifier.py"}
CRYPTO_MODULES = ("pyrage", "cryptography", "hmac")


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(SRC)), ast.parse(p.read_text("utf-8"), str(p)))
            for p in sorted(SRC.rglob("*.py"))]


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_crypto_is_imported_only_inside_the_vault() -> None:
    offenders = []
    for rel, tree in _modules():
        if rel.startswith(CRYPTO_HOME) or rel in CRYPTO_EXCEPTIONS:
            continue
        for name in _imported(tree):
            if name.split(".")[0] in CRYPTO_MODULES:
                offenders.append(f"{rel} imports {name}")
    assert offenders == []


def test_the_import_rule_would_catch_a_crypto_import(tmp_path: Path) -> None:
    tree = ast.parse("def f():\n    from pyrage import x25519\n    import hmac\n")
    assert {n.split(".")[0] for n in _imported(tree)} >= {"pyrage", "hmac"}


#: What only the vault may touch: its keys, blob store and private reader.
PRIVATE = {"keys", "blobs", "_keys", "_decrypt_blob", "_custody"}


def test_only_the_vault_and_custody_append_events_or_touch_keys_and_blobs() -> None:
    """No custody bookkeeping outside `vault/` and `custody/`: nothing else calls
    `.record(...)` or reaches into a vault's keys, blob store or private reader."""
    offenders = []
    for rel, tree in _modules():
        if rel.startswith(("vault/", "custody/")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "record":
                offenders.append(f"{rel}:{node.lineno} calls .record()")
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                offenders.append(f"{rel}:{node.lineno} uses .{node.attr}")
    assert offenders == []


def test_the_blob_store_and_keys_are_imported_only_inside_the_vault() -> None:
    offenders = []
    for rel, tree in _modules():
        if rel.startswith(("vault/", "custody/")):
            continue
        for name in _imported(tree):
            if name in ("strongroom.vault.blobs", "strongroom.vault.keys",
                        "strongroom.vault.encryption", "strongroom.vault.passphrase"):
                offenders.append(f"{rel} imports {name}")
    assert offenders == []


# -- the door records every access ---------------------------------------------------------
@pytest.fixture
def filled(vault: Vault, source: Path) -> Vault:
    ingest(vault, source, "USB stick 1")
    return vault


def events(v: Vault, after: int = 0) -> list[dict[str, Any]]:
    with v.catalogue.read() as s:
        return [{"seq": e.seq, "action": e.action, "subject": e.subject,
                 "details": json.loads(e.details)}
                for e in s.scalars(select(CustodyEvent).where(CustodyEvent.seq > after)
                                   .order_by(CustodyEvent.seq))]


def swap_two_blobs(v: Vault, vault_path: Path) -> tuple[Original, Original]:
    """Swap the blob files of the two smallest originals on disk: each still decrypts, to the
    other's content."""
    with v.catalogue.read() as s:
        a, b = s.scalars(select(Original).order_by(Original.size).limit(2)).all()
    pa = vault_path / "blobs" / a.blob_name[:2] / a.blob_name
    pb = vault_path / "blobs" / b.blob_name[:2] / b.blob_name
    da, db = pa.read_bytes(), pb.read_bytes()
    os.chmod(pa, 0o600)
    os.chmod(pb, 0o600)
    pa.write_bytes(db)
    pb.write_bytes(da)
    return a, b


def last_seq(v: Vault) -> int:
    return max(e["seq"] for e in events(v))


def an_original(v: Vault, at_least: int = 0) -> Original:
    with v.catalogue.read() as s:
        return s.scalars(select(Original).where(Original.size >= at_least)
                         .order_by(Original.size.desc()).limit(1)).one()


def test_open_original_records_a_complete_download_before_the_block_ends(filled: Vault) -> None:
    o = an_original(filled)
    before = last_seq(filled)
    out = io.BytesIO()
    with filled.open_original(o.sha256[:12], to="file") as opened:
        d = opened.copy_to(out.write)
        assert events(filled, before) == []  # not yet: the caller may still fail
    assert d.sha256 == o.sha256 == hashlib.sha256(out.getvalue()).hexdigest()
    (ev,) = events(filled, before)
    assert ev["action"] == "downloaded" and ev["subject"] == f"original:{o.sha256}"
    assert ev["details"]["complete"] is True and ev["details"]["bytes"] == o.size
    assert ev["details"]["to"] == "file"


def test_an_interrupted_download_is_recorded_as_incomplete(filled: Vault) -> None:
    o = an_original(filled, at_least=3 * 1024 * 1024)
    before = last_seq(filled)
    taken = 0

    def reader_goes_away(chunk: bytes) -> None:
        nonlocal taken
        if taken:
            raise OSError(32, "Broken pipe")
        taken += len(chunk)

    with pytest.raises(OSError), filled.open_original(o.sha256, to="stdout") as opened:
        opened.copy_to(reader_goes_away)
    (ev,) = events(filled, before)
    assert ev["action"] == "downloaded" and ev["details"]["complete"] is False
    assert 0 < ev["details"]["bytes"] == taken < o.size


def test_a_blob_that_decrypts_to_other_content_is_refused_and_recorded_incomplete(
        filled: Vault, vault_path: Path) -> None:
    a, _ = swap_two_blobs(filled, vault_path)
    before = last_seq(filled)
    with pytest.raises(IntegrityError, match="decrypted to different content"), \
            filled.open_original(a.sha256, to="file") as opened:
        opened.copy_to(None)
    (ev,) = events(filled, before)
    assert ev["details"]["complete"] is False


def test_nothing_is_recorded_when_nothing_left_the_vault(filled: Vault) -> None:
    before = last_seq(filled)
    with pytest.raises(StrongroomError), filled.open_original("00000000", to="file"):
        pass
    with filled.open_original(an_original(filled).sha256, to="file"):
        pass  # opened, never read
    assert events(filled, before) == []


def test_an_unknown_purpose_is_refused(filled: Vault) -> None:
    with pytest.raises(StrongroomError, match="unknown purpose"), \
            filled.open_original(an_original(filled).sha256, purpose="borrowed", to="x"):
        pass


def test_open_derivative_records_viewed_or_revealed_on_its_original(
        filled: Vault, vault_path: Path) -> None:
    o = an_original(filled)
    data = b"a derivative's plaintext"
    from strongroom.vault.worker import Sealed

    keys = filled.worker_keys()
    plain = vault_path.parent / "poster.jpg"
    plain.write_bytes(data)
    sealed = keys.seal(plain)
    assert isinstance(sealed, Sealed) and sealed.sha256 == hashlib.sha256(data).hexdigest()
    (name,) = filled.store_sealed([sealed])
    row = Derivative(original_sha256=o.sha256, kind="poster", sha256=sealed.sha256,
                     size=sealed.size, blob_name=name, mime="image/jpeg", step="test",
                     step_version="1", command=None, meta={},
                     created_at=datetime.now(UTC))
    with filled.catalogue.write() as s:
        s.add(row)
    for purpose in ("viewed", "revealed"):
        before = last_seq(filled)
        got = io.BytesIO()
        with filled.open_derivative(row, purpose=purpose, to="screen") as opened:
            opened.copy_to(got.write)
        assert got.getvalue() == data
        (ev,) = events(filled, before)
        assert (ev["action"], ev["subject"]) == (purpose, f"original:{o.sha256}")
        assert ev["details"]["read"] == [{"sha256": sealed.sha256, "kind": "poster"}]


def test_exporting_records_what_the_door_decrypted(filled: Vault) -> None:
    o = an_original(filled)
    before = last_seq(filled)
    with filled.exporting("strongroom-export-20261130-000000000000") as access:
        access.original(o, None)
        assert events(filled, before) == []
        filled.record_export(access, "strongroom-export-20261130-000000000000",
                             {"bag_id": "strongroom-export-20261130-000000000000"})
    (ev,) = events(filled, before)
    assert ev["action"] == "exported"
    assert ev["details"]["decrypted_originals"] == 1
    assert ev["details"]["decrypted_bytes"] == o.size


def test_a_failed_export_records_nothing(filled: Vault) -> None:
    before = last_seq(filled)
    with pytest.raises(RuntimeError), filled.exporting("x") as access:
        access.original(an_original(filled), None)
        raise RuntimeError("the disk went away")
    assert events(filled, before) == []


def test_vault_verify_records_fixity_checked_and_verified(filled: Vault) -> None:
    before = last_seq(filled)
    report = filled.verify()
    assert report.ok
    got = events(filled, before)
    assert [e["action"] for e in got] == ["fixity_checked", "verified"]
    assert got[0]["details"]["blobs_checked"] == report.blobs_checked > 0
    assert got[1]["details"]["ok"] is True
    before = last_seq(filled)
    filled.verify(fixity=False)
    assert [e["action"] for e in events(filled, before)] == ["verified"]
    assert verify(filled).ok  # the door's own events verify


def test_vault_sign_is_checked_by_its_public_key(filled: Vault) -> None:
    sig = filled.sign(b"tag manifest")
    assert filled.public.verify(sig, b"tag manifest")
    assert not filled.public.verify(sig, b"tag manifesto")


def test_worker_keys_decrypt_an_original_and_never_show_the_identity(
        filled: Vault, tmp_path: Path) -> None:
    o = an_original(filled)
    keys = filled.worker_keys()
    assert "AGE-SECRET-KEY" not in repr(keys)
    dest = tmp_path / "plain"
    keys.decrypt_original(o.blob_name, o.sha256, dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == o.sha256
    assert dest.stat().st_mode & 0o777 == 0o600
    with pytest.raises(IntegrityError):
        keys.decrypt_original(o.blob_name, "0" * 64, tmp_path / "other")


def test_store_stages_invisibly_until_commit(vault: Vault) -> None:
    data = os.urandom(100_000)
    stored = vault.store(io.BytesIO(data), size=len(data), what="test")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert not vault.has_blob(stored.name)
    assert vault.commit([stored]) == [True]
    assert vault.has_blob(stored.name)
    again = vault.store(io.BytesIO(data), size=len(data), what="test")
    assert again.name == stored.name and vault.commit([again]) == [False]
    assert vault.staging_files() == []


def test_a_sealed_vault_opens_no_door(filled: Vault, vault_path: Path) -> None:
    from strongroom.settings import Settings

    sha = an_original(filled).sha256
    filled.close()
    with pytest.raises(VaultSealed, match="catalogue is encrypted"):
        Vault.open(Settings(vault=vault_path))
    # An older vault's plaintext catalogue opens without keys, and still no door opens.
    make_plaintext_catalogue(vault_path)
    with Vault.open(Settings(vault=vault_path)) as sealed:
        with pytest.raises(VaultSealed), sealed.open_original(sha, to="file") as opened:
            opened.copy_to(None)
        with pytest.raises(VaultSealed):
            sealed.store(io.BytesIO(b"x"), size=1, what="x")
        with pytest.raises(VaultSealed):
            sealed.sign(b"x")
        with pytest.raises(VaultSealed):
            sealed.worker_keys()


def test_the_intake_never_imports_the_vault() -> None:
    """The intake runs where a seizure or a break-in is likeliest: it must not be able to
    reach the vault's keys, catalogue or custody code even by accident (it may use `fsio`,
    which imports nothing of Strongroom's)."""
    offenders = []
    for rel, tree in _modules():
        if not rel.startswith("intake/"):
            continue
        for name in _imported(tree):
            if name.startswith("strongroom.") and \
                    not name.startswith(("strongroom.intake", "strongroom.fsio")):
                offenders.append(f"{rel} imports {name}")
    assert offenders == []
