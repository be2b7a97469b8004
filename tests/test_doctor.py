"""`strongroom doctor` (issue 18, point 1): each back-end the settings name, checked without
the passphrase, on real engines — a vault's SQLCipher catalogue, Debian's PostgreSQL, an S3
endpoint (moto's server), and ones that are not there."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli
from s3_fixtures import CREDENTIALS, S3, free_port, s3  # noqa: F401 - fixture


def _checks(r: object) -> dict[str, dict[str, object]]:
    data = json.loads(r.stdout)  # type: ignore[attr-defined]
    return {c["name"]: c for c in data["checks"]}


def test_a_laptop_vault_is_healthy(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert cli("init", vault).returncode == 0
    r = cli("doctor", vault, "--json", env={"STRONGROOM_PASSPHRASE": ""})
    assert r.returncode == 0, r.stdout
    checks = _checks(r)
    assert checks["vault"]["ok"] and "opened by a passphrase" in str(checks["vault"]["found"])
    assert "encrypted (SQLCipher" in str(checks["database"]["found"])
    assert str(checks["blob store"]["found"]).startswith(f"folder {vault / 'blobs'}")
    assert "local process pool" in str(checks["executor"]["found"])
    assert checks["ffmpeg"]["ok"] and checks["age"]["ok"] and checks["tesseract Russian"]["ok"]
    human = cli("doctor", vault).stdout
    assert human.splitlines()[0].startswith("ok  vault")


def test_the_server_shape_is_found(tmp_path: Path, postgres_url: str, s3: S3) -> None:
    bucket = s3.new_bucket()
    env = {**s3.env(bucket), "STRONGROOM_DATABASE_URL": postgres_url,
           "STRONGROOM_EXECUTOR": "local"}
    r = cli("doctor", "--json", env=env)
    assert r.returncode == 0, r.stdout
    checks = _checks(r)
    assert "PostgreSQL" in str(checks["database"]["found"])
    assert "empty (`strongroom init`" in str(checks["database"]["found"])
    assert f"bucket '{bucket}' reachable at {s3.endpoint}" in str(checks["blob store"]["found"])
    assert cli("init", tmp_path / "vault", env=env).returncode == 0
    checks = _checks(cli("doctor", tmp_path / "vault", "--json", env=env))
    assert "catalogue revision" in str(checks["database"]["found"]) and "(current)" in str(
        checks["database"]["found"])
    assert f"blobs in s3://{bucket}/blobs" in str(checks["vault"]["found"])


def test_what_is_not_there_is_named_with_its_setting(postgres_server: str) -> None:
    port = free_port()
    env = {**CREDENTIALS,
           "STRONGROOM_DATABASE_URL": f"postgresql+psycopg://someone:hunter2@127.0.0.1:{port}/db",
           "STRONGROOM_BLOB_STORE": "s3://a-bucket/blobs",
           "STRONGROOM_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "STRONGROOM_EXECUTOR": "dask://127.0.0.1:8786"}
    r = cli("doctor", env=env)
    assert r.returncode == 1 and "hunter2" not in r.stdout + r.stderr
    lines = {line.split()[1]: line for line in r.stdout.splitlines()}
    assert lines["database"].startswith("BAD") and "cannot connect" in lines["database"]
    assert lines["database"].endswith("[STRONGROOM_DATABASE_URL]")
    assert "cannot reach the endpoint" in lines["blob"]
    assert lines["blob"].endswith("[STRONGROOM_S3_ENDPOINT_URL]")
    assert lines["executor"].startswith("BAD") and "[STRONGROOM_EXECUTOR]" in lines["executor"]
    # a database that is there, with a wrong password's user: refused, named
    r = cli("doctor", "--json", env={
        "STRONGROOM_DATABASE_URL": postgres_server.replace("postgres@", "nobody@") + "postgres"})
    assert r.returncode == 1
    assert _checks(r)["database"]["setting"] == "STRONGROOM_DATABASE_URL"
