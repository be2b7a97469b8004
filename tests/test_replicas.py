"""Moving a vault's blobs between shapes and keeping replicas (issue 18, points 5 and 6):
`migrate-store` to an S3 bucket (moto's server) and back to a folder, each blob checked where
it landed, the custody event `migrated`; `replicate` copying only what a replica lacks;
`verify --replicas` finding a flipped bit or a missing blob on any copy and putting the good
copy back (decided by decrypting, never by a vote), with the custody event `repaired`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import cli
from s3_fixtures import CREDENTIALS, S3, s3  # noqa: F401 - fixture

PASS = {"STRONGROOM_PASSPHRASE": "correct horse battery staple"}


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A laptop-shape vault with three files of a USB stick in it."""
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    vault = tmp_path / "vault"
    assert cli("init", vault).returncode == 0
    usb = tmp_path / "usb"
    usb.mkdir()
    for i, size in enumerate((1000, 300_000, 9 * 1024 * 1024)):
        (usb / f"clip{i}.h264").write_bytes(os.urandom(size))
    r = cli("ingest", vault, usb, "-a", "USB stick 1")
    assert r.returncode == 0, r.stderr
    return vault


def _events(vault: Path, action: str, env: dict[str, str] | None = None
            ) -> list[dict[str, object]]:
    r = cli("log", vault, "--json", env=env)
    assert r.returncode == 0, r.stderr
    return [e for e in json.loads(r.stdout) if e["action"] == action]


def _blobs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.rglob("*") if p.is_file() and len(p.name) == 64}


def test_a_laptop_vault_moves_to_a_bucket_and_back(laptop: Path, s3: S3, tmp_path: Path
                                                   ) -> None:
    bucket = s3.new_bucket()
    target = f"s3://{bucket}/vault"
    env = {"STRONGROOM_S3_ENDPOINT_URL": s3.endpoint}
    r = cli("migrate-store", laptop, target, "--json", env=env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["total"] == 3 and report["copied"] == 3 and report["problems"] == []
    assert json.loads((laptop / "vault.json").read_text())["blob_store"] == target
    assert len(s3.keys(bucket)) == 3
    # the vault now reads from the bucket: the local folder can go
    local = laptop / "blobs"
    moved_aside = tmp_path / "old-blobs"
    local.rename(moved_aside)
    r = cli("verify", laptop, "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stdout
    (event,) = _events(laptop, "migrated", env)
    details = event["details"]
    assert isinstance(details, dict) and details["to"] == target and details["blobs"] == 3
    # run again: nothing to copy, everything checked
    r = cli("migrate-store", laptop, target, "--json", env=env)
    assert json.loads(r.stdout)["already_there"] == 3
    # and back to a folder on another disk
    back = tmp_path / "disk2" / "blobs"
    r = cli("migrate-store", laptop, str(back), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((laptop / "vault.json").read_text())["blob_store"] == str(back)
    assert len(_blobs(back)) == 3
    assert _blobs(back).keys() == _blobs(moved_aside).keys()
    for name, path in _blobs(back).items():  # ciphertext moved byte for byte
        assert path.read_bytes() == _blobs(moved_aside)[name].read_bytes()
    r = cli("verify", laptop, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True


def test_a_store_that_cannot_take_the_blobs_changes_nothing(laptop: Path, s3: S3) -> None:
    before = (laptop / "vault.json").read_text()
    r = cli("migrate-store", laptop, "s3://no-such-bucket-x/vault",
            env={"STRONGROOM_S3_ENDPOINT_URL": s3.endpoint})
    assert r.returncode == 2 and "no bucket 'no-such-bucket-x'" in r.stderr
    assert (laptop / "vault.json").read_text() == before and not _events(laptop, "migrated")
    r = cli("migrate-store", laptop, str(laptop / "blobs"))
    assert r.returncode == 2 and "the vault's own blob store" in r.stderr


def test_replicas_follow_the_vault_and_repair_each_other(laptop: Path, tmp_path: Path) -> None:
    replica = tmp_path / "usb-backup" / "replica"
    r = cli("replicate", laptop, str(replica), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["copied"] == 3
    assert json.loads((laptop / "vault.json").read_text())["replicas"] == [str(replica)]
    # incremental: only what is new is copied
    usb2 = tmp_path / "usb2"
    usb2.mkdir()
    (usb2 / "clip9.h264").write_bytes(os.urandom(50_000))
    assert cli("ingest", laptop, usb2, "-a", "USB stick 2").returncode == 0
    report = json.loads(cli("replicate", laptop, str(replica), "--json").stdout)
    assert report["copied"] == 1 and report["already_there"] == 3
    assert len(_events(laptop, "replicated")) == 2
    # all copies agree
    r = cli("verify", laptop, "--replicas", "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["replicas"]["diverged"] == []
    # bit rot on the replica, a blob gone from it, and bit rot on the vault's own copy
    primary, copy = _blobs(laptop / "blobs"), _blobs(replica)
    names = sorted(primary, key=lambda n: primary[n].stat().st_size)
    rotten_copy, gone, rotten_primary = names[0], names[1], names[3]
    good = {n: primary[n].read_bytes() for n in names}
    data = bytearray(copy[rotten_copy].read_bytes())
    data[len(data) // 2] ^= 0x10
    copy[rotten_copy].write_bytes(bytes(data))
    copy[gone].unlink()
    data = bytearray(primary[rotten_primary].read_bytes())
    data[-100] ^= 0x01
    primary[rotten_primary].write_bytes(bytes(data))
    r = cli("verify", laptop, "--replicas", "--json")
    assert r.returncode == 0, r.stdout  # all three repaired before fixity ran
    out = json.loads(r.stdout)
    assert {d["blob"] for d in out["replicas"]["diverged"]} == {rotten_copy, gone,
                                                               rotten_primary}
    assert out["replicas"]["repaired"] == 3 and out["replicas"]["unrepairable"] == []
    by_blob = {d["blob"]: d for d in out["replicas"]["diverged"]}
    assert by_blob[rotten_primary]["good"] == str(replica)  # the vault's own copy was the bad one
    assert by_blob[rotten_copy]["repaired"] == [str(replica)]
    for n in names:
        assert _blobs(laptop / "blobs")[n].read_bytes() == good[n]
        assert _blobs(replica)[n].read_bytes() == good[n]
    repaired = _events(laptop, "repaired")
    assert {e["subject"] for e in repaired} == {f"blob:{n}" for n in (rotten_copy, gone,
                                                                      rotten_primary)}


def test_a_blob_damaged_on_every_copy_is_reported(laptop: Path, tmp_path: Path) -> None:
    replica = tmp_path / "replica"
    assert cli("replicate", laptop, str(replica)).returncode == 0
    name = min(_blobs(laptop / "blobs"))
    for at, folder in ((200, laptop / "blobs"), (-50, replica)):  # each its own way
        path = _blobs(folder)[name]
        data = bytearray(path.read_bytes())
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    r = cli("verify", laptop, "--replicas", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["replicas"]["unrepairable"] == [name] and out["ok"] is False
    assert not _events(laptop, "repaired")
