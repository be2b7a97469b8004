"""The catalogue database: SQLite (WAL, one writer) on a laptop, PostgreSQL in an organisation.

Reads run in parallel; every write goes through `Catalogue.write()`, which serialises writers
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), because the custody
chain's next link depends on the previous one.

A SQLite catalogue is encrypted at rest with SQLCipher 4 (the `sqlcipher3` driver, a build of
pysqlite against SQLCipher, driven by SQLAlchemy's own pysqlite dialect): every page of the
database and of its write-ahead log is AES-256 encrypted and HMAC-SHA512 authenticated, and
temporary tables and indices stay in memory (`temp_store=MEMORY`), so no file in the vault
folder holds catalogue text in clear. The key is a raw 256-bit key derived from the vault's
master secret (`VaultKeys.catalogue_key`), set by `PRAGMA key` as the first statement of every
connection; it never appears in a URL. A catalogue made before encryption existed is plain
SQLite (its header says so) and opens without a key until `migrate-catalogue --encrypt`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session, sessionmaker

from strongroom.catalogue import is_plain_sqlite
from strongroom.errors import StorageFull, StrongroomError

__all__ = ["Catalogue", "is_plain_sqlite", "key_pragma", "sqlite_path"]

_PG_WRITE_LOCK = 0x5354524F4E47  # "STRONG": one advisory lock id for all writers


def key_pragma(key: bytes) -> str:
    """SQLCipher's raw-key form: `x'…'` skips its passphrase KDF (the key is random already)."""
    if len(key) != 32:
        raise ValueError("the catalogue key must be 32 bytes")
    return f"PRAGMA key = \"x'{key.hex()}'\""


def cipher_module() -> Any:
    """The SQLCipher DB-API module (pysqlite's interface)."""
    from sqlcipher3 import dbapi2

    return dbapi2


def _sqlite_engine(url: str, *, immediate: bool, key: bytes | None = None) -> Engine:
    extra: dict[str, Any] = {"module": cipher_module()} if key is not None else {}
    engine = create_engine(url, connect_args={"timeout": 60}, **extra)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite quirk)
        cur = dbapi_conn.cursor()
        if key is not None:
            cur.execute(key_pragma(key))  # must come first
            cur.execute("PRAGMA temp_store=MEMORY")  # no plaintext temp files
            # SQLCipher decrypts and authenticates each page it reads from the file: a page cache
            # of up to 64 MiB (grown only as pages are read) keeps a search from decrypting the
            # same index pages again on every query (benchmarks/search.py)
            cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a killed process; after a power cut the last commits may be
        # lost, which ingest repairs on re-run because blobs are durable before rows commit.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Catalogue:
    def __init__(self, url: str, key: bytes | None = None) -> None:
        """`key`: SQLCipher key of a SQLite catalogue (None: plain SQLite, or PostgreSQL,
        which ignores it)."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.encrypted = self.is_sqlite and key is not None
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False, key=key)
            self._write_engine = _sqlite_engine(url, immediate=True, key=key)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            self._write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        from strongroom.catalogue.search_index import IndexedSession

        # the search index follows every write, in its transaction
        self._write = sessionmaker(self._write_engine, class_=IndexedSession,
                                   expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from strongroom.catalogue.migrate import upgrade

        try:
            upgrade(self._write_engine)
        except DatabaseError as exc:
            raise _catalogue_error(exc) from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with self._read() as session:
                yield session
        except SQLIntegrityError:
            raise
        except DatabaseError as exc:
            raise _catalogue_error(exc) from None

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """One read transaction that sees a single committed state throughout: what `verify`
        needs, so that a write committing half-way through is either wholly seen or not at
        all (SQLite WAL readers get this from their first read on; PostgreSQL needs
        REPEATABLE READ)."""
        with self.read() as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction, committed on success, rolled back on any exception."""
        try:
            with self._write() as session, session.begin():
                if not self.is_sqlite:
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK})
                yield session
        except SQLIntegrityError:
            raise  # a constraint: the caller decides what it means
        except DatabaseError as exc:
            raise _catalogue_error(exc) from None

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()


def encrypt_sqlite(db: Path, key: bytes) -> dict[str, int]:
    """Replace the plaintext SQLite database `db` by an SQLCipher copy under `key`; returns the
    row count of each table, checked equal in both before the swap. The copy is written beside
    it, fsynced, and renamed over it: a crash leaves either the old file or the new one. The
    caller holds every other user of `db` off. (The old file's blocks are freed, not wiped:
    see docs/threat-model.md.)"""
    import errno

    module = cipher_module()
    tmp = db.with_name(db.name + ".encrypting")
    tmp.unlink(missing_ok=True)  # a crashed run's
    try:
        return _encrypt_into(module, db, tmp, key)
    except module.Error as exc:
        tmp.unlink(missing_ok=True)
        msg = str(exc)
        if "full" in msg or "No space" in msg:
            raise StorageFull("the disk is full: the encrypted copy of the catalogue did not "
                              "fit; nothing was changed") from None
        raise StrongroomError(f"could not encrypt the catalogue ({msg}); nothing was "
                              "changed") from None
    except OSError as exc:
        if tmp.exists():  # not yet swapped in
            tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise StorageFull("the disk is full: the encrypted copy of the catalogue did not "
                              "fit; nothing was changed") from None
        raise StrongroomError(f"could not encrypt the catalogue: {exc.strerror}") from None


def _encrypt_into(module: Any, db: Path, tmp: Path, key: bytes) -> dict[str, int]:
    import os

    con = module.connect(str(db), isolation_level=None)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _row_counts(con, "main")
        # empty and 0600 (SQLite keeps the mode of the file it finds; -wal/-shm follow it)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        con.execute(f"ATTACH DATABASE ? AS encrypted KEY \"x'{key.hex()}'\"", (str(tmp),))
        con.execute("SELECT sqlcipher_export('encrypted')")
        after = _row_counts(con, "encrypted")
        version = con.execute("PRAGMA main.user_version").fetchone()[0]
        con.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        con.execute("DETACH DATABASE encrypted")
    finally:
        con.close()
    if before != after:
        tmp.unlink(missing_ok=True)
        raise StrongroomError(f"the encrypted copy differs from the catalogue ({before} vs "
                              f"{after}); nothing was changed")
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    for suffix in ("-wal", "-shm"):  # the old file's, empty after the checkpoint
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, db)
    dirfd = os.open(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    return before


def _row_counts(con: Any, schema: str) -> dict[str, int]:
    """Rows per table of attached database `schema` ("main" or our own alias: never input).
    Virtual tables (the FTS5 search index) are counted through their shadow tables: one just
    made by `sqlcipher_export` in an attached database cannot be read on this connection."""
    names = [r[0] for r in con.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' "  # noqa: S608
        "AND name NOT LIKE 'sqlite_%' AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' "
        "ORDER BY name")]
    quoted = {n: '"' + n.replace('"', '""') + '"' for n in names}
    return {n: int(con.execute(f"SELECT count(*) FROM {schema}.{q}")  # noqa: S608
                   .fetchone()[0]) for n, q in quoted.items()}


def _catalogue_error(exc: DatabaseError) -> StrongroomError:
    """One line for the user: a full disk, a locked or damaged database, or another error."""
    msg = str(exc.orig).strip() or type(exc.orig).__name__
    if isinstance(exc, OperationalError) and ("disk is full" in msg or "No space left" in msg):
        return StorageFull(f"catalogue is full: {msg}")
    if "not a database" in msg or "malformed" in msg:
        return StrongroomError(f"the catalogue is damaged ({msg}): restore it from a backup")
    return StrongroomError(f"catalogue error: {msg}")


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None
