"""The S3 blob store (issue 18, point 3) against a real HTTP S3 endpoint (moto's server):
the same keyed names and age ciphertext as the local store, a name never overwritten (the
server refuses it), nothing visible of an upload a kill -9 interrupted, bounded memory, and
a vault whose blobs are in a bucket through the whole command line (init, ingest, process,
verify). Bad settings are one line naming the setting."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import cli, poll
from s3_fixtures import CREDENTIALS, S3, s3  # noqa: F401 - fixture
from strongroom.errors import BlobMissing, StrongroomError
from strongroom.testmedia import still_clip
from strongroom.vault.s3blobs import S3BlobStore

pytestmark = pytest.mark.usefixtures("aws_env")
NAME_A, NAME_B = "ab" + "0" * 62, "cd" + "1" * 62


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)


def _store(s3: S3, tmp_path: Path, bucket: str | None = None, **kw: object) -> S3BlobStore:
    return S3BlobStore(f"s3://{bucket or s3.new_bucket()}/vault-1/blobs", endpoint_url=s3.endpoint,
                       staging=tmp_path / "staging", **kw)  # type: ignore[arg-type]


def _put(store: S3BlobStore, name: str, data: bytes) -> bool:
    staged = store.stage()
    staged.file.write(data)
    return store.commit([(staged, name)])[0]


def test_blobs_round_trip_under_their_keyed_names(s3: S3, tmp_path: Path) -> None:
    store = _store(s3, tmp_path)
    big = os.urandom(20 * 1024 * 1024 + 17)  # three multipart parts
    assert _put(store, NAME_A, b"small ciphertext") is True
    assert _put(store, NAME_B, big) is True
    assert list(store.names()) == [NAME_A, NAME_B]
    assert s3.keys(store.bucket) == [f"vault-1/blobs/ab/{NAME_A}", f"vault-1/blobs/cd/{NAME_B}"]
    assert store.exists(NAME_A) and store.size(NAME_B) == len(big)
    with store.open(NAME_B) as f:
        f.seek(9 * 1024 * 1024)
        assert f.read(1000) == big[9 * 1024 * 1024:9 * 1024 * 1024 + 1000]
        f.seek(0)
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(big).digest()
    assert not store.exists("ef" + "2" * 62)
    with pytest.raises(BlobMissing):
        store.open("ef" + "2" * 62)
    with pytest.raises(StrongroomError, match="invalid blob name"):
        store.exists("../../other-bucket/x")
    assert store.staging_files() == []  # each staged file went once uploaded
    store.close()


def test_a_name_is_never_overwritten_even_by_a_racing_upload(s3: S3, tmp_path: Path) -> None:
    store = _store(s3, tmp_path)
    assert _put(store, NAME_A, b"first") is True
    assert _put(store, NAME_A, b"second, different") is False  # refused by the server
    big = os.urandom(17 * 1024 * 1024)
    assert _put(store, NAME_B, big) is True
    assert _put(store, NAME_B, os.urandom(17 * 1024 * 1024)) is False  # multipart too
    with store.open(NAME_A) as f:
        assert f.read() == b"first"
    with store.open(NAME_B) as f:
        assert f.read() == big
    assert store.unfinished_uploads() == []  # the refused multipart upload was aborted


KILLED_UPLOAD = """
import sys, time
import s3fs
from strongroom.vault.s3blobs import S3BlobStore

real = s3fs.S3FileSystem._call_s3
async def slow(self, method, *args, **kwargs):
    out = await real(self, method, *args, **kwargs)
    if method == "upload_part":
        print("part", flush=True)
        time.sleep(5)  # the parent kills us here: parts sent, the upload not complete
    return out
s3fs.S3FileSystem._call_s3 = slow
from pathlib import Path
store = S3BlobStore(sys.argv[1], endpoint_url=sys.argv[2], staging=Path(sys.argv[3]))
staged = store.stage()
staged.file.write(b"x" * (40 * 1024 * 1024))
store.commit([(staged, sys.argv[4])])
print("committed", flush=True)
"""


def test_an_upload_killed_half_way_leaves_nothing_visible(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    url = f"s3://{bucket}/vault-1/blobs"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_UPLOAD), url,
                             s3.endpoint, str(tmp_path / "staging"), NAME_B],
                            stdout=subprocess.PIPE, env={**os.environ, **CREDENTIALS})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"part"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    store = S3BlobStore(url, endpoint_url=s3.endpoint, staging=tmp_path / "staging")
    assert s3.keys(bucket) == [] and list(store.names()) == [] and not store.exists(NAME_B)
    assert len(store.unfinished_uploads()) == 1
    assert len(store.staging_files()) == 1  # the staged ciphertext the killed process left
    # (an upload younger than a day is kept: it may be another process's live one. moto
    # dates every upload 2010-11-10, so that cannot be shown here.)
    old = S3BlobStore(url, endpoint_url=s3.endpoint, staging=tmp_path / "staging",
                      stale_after=0)
    assert old.cleanup_stale() == 2  # the staged file and the unfinished upload
    assert old.unfinished_uploads() == [] and old.staging_files() == []
    assert s3.keys(bucket) == []


MEMORY = """
import resource, sys
from pathlib import Path
from strongroom.vault.s3blobs import S3BlobStore
store = S3BlobStore(sys.argv[1], endpoint_url=sys.argv[2], staging=Path(sys.argv[3]))
staged = store.stage()
chunk = b"y" * (1024 * 1024)
for _ in range(160):
    staged.file.write(chunk)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store.commit([(staged, "ab" + "3" * 62)])
with store.open("ab" + "3" * 62) as f:
    while f.read(1024 * 1024):
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_large_blob_moves_in_bounded_memory(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(MEMORY), f"s3://{bucket}/b",
                        s3.endpoint, str(tmp_path / "staging")], capture_output=True,
                       env={**os.environ, **CREDENTIALS}, timeout=300, check=True)
    grown_mib = int(r.stdout)
    # 160 MiB up and back down; 4 parts of 8 MiB in flight at most, and the read-ahead buffer
    assert grown_mib < 80, grown_mib


def test_a_vault_with_its_blobs_in_a_bucket(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    env = s3.env(bucket)
    vault = tmp_path / "vault"
    assert cli("init", vault, env=env).returncode == 0
    assert json.loads((vault / "vault.json").read_text())["blob_store"] == f"s3://{bucket}/blobs"
    source = tmp_path / "usb"
    source.mkdir()
    still_clip(source / "cam01.mp4", 320, 240, frames=10)
    (source / "notes.txt").write_bytes(b"plaintext that must not reach the bucket " * 100)
    r = cli("ingest", vault, source, "-a", "USB stick 1", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert not (vault / "blobs").exists() or not any((vault / "blobs").rglob("*"))
    keys = s3.keys(bucket)
    assert len(keys) == 2 and all(k.startswith("blobs/") for k in keys)
    client = s3.client()
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body.startswith(b"age-encryption.org/v1\n") and b"plaintext" not in body
    # the vault remembers where its blobs are: no setting needed to open it again
    only_s3 = {k: v for k, v in env.items() if k != "STRONGROOM_BLOB_STORE"}
    r = cli("process", vault, "--workers", "1", "--steps", "probe,keyframes", "--json",
            env=only_s3)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["errors"] == 0
    assert len(s3.keys(bucket)) > 2  # the keyframes went to the bucket too
    r = cli("verify", vault, "--json", env=only_s3)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stdout
    # a byte changed in the bucket is found
    key = keys[0]
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 1
    client.delete_object(Bucket=bucket, Key=key)
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    r = cli("verify", vault, "--json", env=only_s3)
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False
    # another store named for it is refused, not silently used
    r = cli("stats", vault, env={**env, "STRONGROOM_BLOB_STORE": f"s3://{bucket}/other"})
    assert r.returncode == 2 and "this vault's blobs are in" in r.stderr


def test_bad_s3_settings_are_one_line_naming_the_setting(s3: S3, tmp_path: Path) -> None:
    from s3_fixtures import free_port

    nowhere = {**CREDENTIALS, "STRONGROOM_BLOB_STORE": "s3://some-bucket/blobs",
               "STRONGROOM_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    r = cli("init", tmp_path / "v1", env=nowhere)
    assert r.returncode == 2 and "cannot reach the endpoint" in r.stderr
    assert "STRONGROOM_S3_ENDPOINT_URL" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.monotonic() - started < 60
    assert not (tmp_path / "v1").exists()  # nothing half-made
    r = cli("init", tmp_path / "v2", env=s3.env("no-such-bucket-here"))
    assert r.returncode == 2 and "no bucket 'no-such-bucket-here'" in r.stderr
    assert "STRONGROOM_BLOB_STORE" in r.stderr
    for bad in ("ftp://host/x", "s3://UPPER/x", "s3://ok-bucket/../x"):
        r = cli("init", tmp_path / "v3", env={"STRONGROOM_BLOB_STORE": bad})
        assert r.returncode == 2 and "STRONGROOM_BLOB_STORE" in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_local_blob_store_settings_still_work(tmp_path: Path) -> None:
    blobs = tmp_path / "elsewhere"
    r = cli("init", tmp_path / "vault", env={"STRONGROOM_BLOB_STORE": f"file://{blobs}"})
    assert r.returncode == 0, r.stderr
    # recorded, absolute: the vault opens from anywhere without the setting
    assert json.loads((tmp_path / "vault" / "vault.json").read_text())["blob_store"] == str(
        blobs)
    poll(lambda: blobs.is_dir())
    assert cli("stats", tmp_path / "vault").returncode == 0
