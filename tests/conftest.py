"""Shared fixtures: real vaults on disk, real files, the real CLI in a subprocess.

Sealing keys costs ~2 s of scrypt, so one vault per test worker is created and copied for each
test; in-process tests reuse its unsealed keys, CLI tests unseal with the real passphrase.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.settings import Settings
from strongroom.vault import Vault
from strongroom.vault.keys import VaultKeys

PASSPHRASE = "test passphrase, long enough"


@dataclass
class Template:
    path: Path
    keys: VaultKeys


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("template") / "vault"
    with Vault.create(Settings(vault=path), PASSPHRASE, actor="tester") as v:
        keys = v.keys
    return Template(path, keys)


def open_vault(path: Path, keys: VaultKeys, **settings: object) -> Vault:
    """A Vault on `path` with already-unsealed keys (what `Vault.open` gives after scrypt)."""
    v = Vault(Settings(vault=path, **settings), keys.public, keys, "tester")  # type: ignore[arg-type]
    v.catalogue.upgrade()
    return v


@pytest.fixture
def vault_path(template: Template, tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    return path


@pytest.fixture
def vault(vault_path: Path, template: Template) -> Iterator[Vault]:
    v = open_vault(vault_path, template.keys)
    yield v
    v.close()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small 'USB stick': nested folders, a mid-size file, an exact duplicate, a symlink."""
    root = tmp_path / "usb1"
    write(root / "DVR" / "cam03" / "0001.h264", os.urandom(3 * 1024 * 1024))
    write(root / "DVR" / "cam03" / "0002.h264", os.urandom(200_000))
    write(root / "DVR" / "cam07" / "0001.h264", os.urandom(12 * 1024 * 1024))  # age binary path
    write(root / "notes.txt", "Камера 03, ПФРСИ\n".encode())
    shutil.copy2(root / "DVR" / "cam03" / "0002.h264", root / "copy-of-0002.h264")
    (root / "latest").symlink_to("DVR/cam03/0001.h264")
    return root


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "8m") mounted on `path`: a small disk to fill. Needs root;
    skips the test when mounting is not allowed here."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def cli(*args: str | Path, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "STRONGROOM_PASSPHRASE": PASSPHRASE, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=300, input=input,
    )


def cli_json(*args: str | Path) -> object:
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sql(
    vault_path: Path, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """Raw SQL on the catalogue, as an attacker (or a careless admin) with the file would."""
    con = sqlite3.connect(vault_path / "catalogue.db")
    try:
        rows = con.execute(statement, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def drop_append_only_triggers(vault_path: Path) -> None:
    for table in ("custody_event", "custody_checkpoint"):
        for verb in ("update", "delete"):
            sql(vault_path, f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (Debian's) on 127.0.0.1, run as the `postgres` user when we are root
    (the server refuses to run as root). Yields an admin URL."""
    import glob
    import socket as socketlib
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not installed")
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    data = base / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socketlib.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                    "-l", str(base / "log"), "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database for one test."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "t" + uuid.uuid4().hex[:12]
    engine = create_engine(postgres_server + "postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_server + name
