"""Shared fixtures: real vaults on disk, real files, the real CLI in-process.

Sealing keys costs ~2 s of scrypt, so one vault per test run is created (shared by the xdist
workers, see `built_once`) and copied for each test; in-process tests reuse its unsealed keys.
`cli()` runs the real command line through `strongroom.cli.main` in this process (a
subprocess paid ~0.5 s of start-up and ~0.7 s of scrypt, 60+ times a run), and a
session-wide cache around `VaultKeys.unseal` unseals each sealed bundle once per passphrase;
tests marked `real_unseal` bypass it. `cli_subprocess()` is for the tests where the process
itself matters: kills, concurrent processes, start-up output."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strongroom.settings import Settings
from strongroom.vault import Vault
from strongroom.vault.keys import VaultKeys

PASSPHRASE = "test passphrase, long enough"
T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about the SQLite catalogue itself "
                            "(skipped with STRONGROOM_TEST_DATABASE=postgresql)")
    config.addinivalue_line(
        "markers", "real_unseal: unseal keys.age for real every time (no session-wide cache)")


# --- Keys unsealed once per test run -------------------------------------------------------

_real_unseal = VaultKeys.unseal.__func__  # type: ignore[attr-defined]
_unsealed: dict[tuple[bytes, str], VaultKeys] = {}
_unseal_cache_on = True


def _cached_unseal(cls: type[VaultKeys], sealed: bytes, passphrase: str) -> VaultKeys:
    """`VaultKeys.unseal`, remembered per (sealed bytes, passphrase): the same inputs always
    unseal to the same keys. Only successes are kept, so a wrong passphrase, a damaged bundle
    or a too-costly work factor always goes through the real path and is refused there."""
    if not _unseal_cache_on:
        return _real_unseal(cls, sealed, passphrase)  # type: ignore[no-any-return]
    key = (bytes(sealed), passphrase)
    keys = _unsealed.get(key)
    if keys is None:
        keys = _real_unseal(cls, sealed, passphrase)
        _unsealed[key] = keys
    return keys


@pytest.fixture(scope="session", autouse=True)
def _unseal_once_per_run() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VaultKeys, "unseal", classmethod(_cached_unseal))
        yield


@pytest.fixture(autouse=True)
def _real_unseal_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests of wrong passphrases and of the work factor mark themselves `real_unseal`."""
    global _unseal_cache_on
    if request.node.get_closest_marker("real_unseal") is None:
        yield
        return
    _unseal_cache_on = False
    try:
        yield
    finally:
        _unseal_cache_on = True


# --- Accounts of the fixtures, with light password hashes -------------------------------------

@contextmanager
def light_password_hashes() -> Iterator[None]:
    """Accounts made inside store an Argon2id hash of light cost (1 pass over 1 MiB, where
    argon2-cffi's default is 3 passes over 64 MiB: ~0.2 s a sign-in). For the role accounts
    the fixtures make once and tests sign in with hundreds of times a run: each sign-in
    still checks the password with the real `verify_password`, which reads the cost from the
    stored hash. Accounts a test makes for itself (back-off, lock-out, simultaneous guesses,
    `user add`) keep the default cost."""
    from argon2 import PasswordHasher

    from strongroom.review import security

    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    def hash_password(password: str) -> str:
        security.check_password_rules(password)
        return light.hash(password)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(security, "hash_password", hash_password)
        yield


# --- Waiting without fixed sleeps ----------------------------------------------------------

def poll(condition: Callable[[], T], *, timeout: float = 60, interval: float = 0.01,
         what: str = "the condition") -> T:
    """`condition()`'s first truthy value, checked every `interval` s; AssertionError naming
    `what` once `timeout` s have passed. Tests wait for what they need, never a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Built once per test run, shared by the xdist workers ----------------------------------

def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], object]) -> Path:
    """A folder that `build(folder)` filled, built once per test run however many modules
    and xdist workers ask for it: the first to ask builds it under a lock, the others wait for
    it and get the same folder. It is never changed after: tests copy what they will change
    (`shutil.copytree`). A build that fails leaves no folder; the next to ask tries again."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's own folder, shared by its workers
    folder = root / f"built-{name}"
    with open(root / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / f"built-{name}.done").exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                try:
                    build(folder)
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)
                    raise
                (root / f"built-{name}.done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


@dataclass
class Template:
    path: Path
    keys: VaultKeys


#: `STRONGROOM_TEST_DATABASE=postgresql make test`: the vaults of `vault_path` (and `vault`)
#: keep their catalogue in Debian's PostgreSQL (a database of their own, made from a template
#: database, named in their vault.json) instead of SQLCipher. Tests that are about SQLite
#: itself (its file, its encryption) are marked `sqlite_only` and skipped then.
TEST_DATABASE = os.environ.get("STRONGROOM_TEST_DATABASE", "sqlite")
PG_TEMPLATE_DB = "strongroom_template"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DATABASE != "postgresql":
        return
    skip = pytest.mark.skip(reason="about the SQLite catalogue itself")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
             ) -> Template:
    """An empty vault sealed under PASSPHRASE, made once per run (`built_once`: the xdist
    workers share it, so vaults built from it can be shared too). Tests copy it. (On
    PostgreSQL, once per worker: its catalogue is the template database of the worker's
    server.)"""
    made: list[VaultKeys] = []
    if TEST_DATABASE == "postgresql":
        from sqlalchemy import create_engine, text

        server = request.getfixturevalue("postgres_server")
        admin = create_engine(server + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {PG_TEMPLATE_DB}"))
        admin.dispose()
        path = tmp_path_factory.mktemp("template-pg") / "vault"
        with Vault.create(Settings(vault=path, database_url=server + PG_TEMPLATE_DB),
                          PASSPHRASE, actor="tester") as v:
            made.append(v.keys)
        marker = json.loads((path / "vault.json").read_text())
        del marker["database"]  # each copy gets a database of its own (`vault_path`)
        (path / "vault.json").write_text(json.dumps(marker, indent=2) + "\n")
        return Template(path, made[0])

    def create(folder: Path) -> None:
        with Vault.create(Settings(vault=folder / "vault"), PASSPHRASE, actor="tester") as v:
            made.append(v.keys)

    path = built_once(tmp_path_factory, "template", create) / "vault"
    keys = made[0] if made else VaultKeys.unseal((path / "keys.age").read_bytes(), PASSPHRASE)
    return Template(path, keys)


def open_vault(path: Path, keys: VaultKeys, **settings: object) -> Vault:
    """A Vault on `path` with already-unsealed keys (what `Vault.open` gives after scrypt)."""
    v = Vault(Settings(vault=path, **settings), keys.public, keys, "tester")  # type: ignore[arg-type]
    v.catalogue.upgrade()
    return v


@pytest.fixture
def vault_path(template: Template, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    if TEST_DATABASE == "postgresql":
        import uuid

        from sqlalchemy import create_engine, text

        server = request.getfixturevalue("postgres_server")
        name = "v" + uuid.uuid4().hex[:16]
        admin = create_engine(server + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {PG_TEMPLATE_DB}"))
        admin.dispose()
        marker = json.loads((path / "vault.json").read_text())
        marker["database"] = server + name
        (path / "vault.json").write_text(json.dumps(marker, indent=2) + "\n")
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


@dataclass
class CliResult:
    """What a run of `strongroom` gave: exit code, stdout and stderr (text, and bytes for
    binary output such as `cat` to stdout), like `subprocess.CompletedProcess`."""

    args: list[str]
    returncode: int
    stdout_bytes: bytes = field(repr=False)
    stderr_bytes: bytes = field(repr=False)

    @property
    def stdout(self) -> str:
        return _text(self.stdout_bytes)

    @property
    def stderr(self) -> str:
        return _text(self.stderr_bytes)


def _text(data: bytes) -> str:
    """Decoded as `subprocess.run(text=True)` would: UTF-8, universal newlines."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def cli(*args: str | Path, env: dict[str, str] | None = None,
        input: str | bytes | None = None) -> CliResult:
    """`strongroom ARGS` in this process, through the console script's own `main()` (same
    one-line errors, exit codes, stdout and stderr), with `env` applied only for this call."""
    from typer.testing import CliRunner

    from strongroom.cli import main

    argv = [str(a) for a in args]
    runner = CliRunner()
    with runner.isolation(input=input, env={"STRONGROOM_PASSPHRASE": PASSPHRASE,
                                            **(env or {})}) as (out, err, _mixed):
        # As in a real process: stdout keeps the interpreter's error handler for text it
        # cannot encode (stderr is backslashreplace in both).
        assert isinstance(sys.stdout, io.TextIOWrapper) and sys.__stdout__ is not None
        sys.stdout.reconfigure(errors=sys.__stdout__.errors)
        code: object = 0
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if code is None:
            code = 0
        elif not isinstance(code, int):  # what the interpreter does with sys.exit("text")
            print(code, file=sys.stderr)
            sys.stderr.flush()
            code = 1
        return CliResult(argv, code, out.getvalue(), err.getvalue())


CLI = [sys.executable, "-m", "strongroom.cli"]


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `strongroom` subprocess: ours, the test passphrase, `env`."""
    return {**os.environ, "STRONGROOM_PASSPHRASE": PASSPHRASE, **(env or {})}


def cli_subprocess(*args: str | Path, env: dict[str, str] | None = None,
                   input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`strongroom ARGS` as its own process: for tests where the process itself matters
    (start-up output, signals, several processes at once). Unseals for real, ~0.7 s."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          env=cli_env(env), timeout=300, input=input)


def cli_json(*args: str | Path) -> object:
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def catalogue_keys(vault_path: Path) -> VaultKeys:
    """The keys of a test vault (sealed under PASSPHRASE), unsealed once per run."""
    return VaultKeys.unseal((vault_path / "keys.age").read_bytes(), PASSPHRASE)


def connect_catalogue(vault_path: Path) -> Any:
    """A raw DB-API connection to a vault's SQLite catalogue, as an insider holding the keys
    (or anyone, for a plaintext catalogue made before encryption) would open it."""
    from strongroom.catalogue import is_plain_sqlite
    from strongroom.catalogue.db import cipher_module, key_pragma

    db = vault_path / "catalogue.db"
    if is_plain_sqlite(db):
        return sqlite3.connect(db)
    con = cipher_module().connect(str(db))
    con.execute(key_pragma(catalogue_keys(vault_path).catalogue_key))
    return con


def make_plaintext_catalogue(vault_path: Path) -> None:
    """Turn a test vault into one made before catalogue encryption existed: a plaintext
    SQLite catalogue and a vault.json that does not mention encryption."""
    db = vault_path / "catalogue.db"
    plain = db.with_name("plain.db")
    con = connect_catalogue(vault_path)
    try:
        con.execute(f"ATTACH DATABASE '{plain}' AS plain KEY ''")
        con.execute("SELECT sqlcipher_export('plain')")
        con.execute("DETACH DATABASE plain")
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    os.replace(plain, db)
    marker = json.loads((vault_path / "vault.json").read_text())
    marker.pop("catalogue", None)
    (vault_path / "vault.json").write_text(json.dumps(marker, indent=2) + "\n")


def sql(
    vault_path: Path, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """Raw SQL on the catalogue, as an attacker (or a careless admin) with the file and the
    keys would."""
    con = connect_catalogue(vault_path)
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


@pytest.fixture
def quick_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """What `ocr._time_only` returned on each call (the real function, watched)."""
    seen: list[Any] = []
    from strongroom.media import ocr

    real = ocr._time_only

    def watched(*args: Any) -> Any:
        got = real(*args)
        seen.append(got)
        return got
    monkeypatch.setattr(ocr, "_time_only", watched)
    yield seen
