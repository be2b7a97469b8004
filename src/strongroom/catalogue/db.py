"""The catalogue database: SQLite (WAL, one writer) on a laptop, PostgreSQL in an organisation.

Reads run in parallel; every write goes through `Catalogue.write()`, which serialises writers
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), because the custody
chain's next link depends on the previous one.
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

from strongroom.errors import StorageFull, StrongroomError

_PG_WRITE_LOCK = 0x5354524F4E47  # "STRONG": one advisory lock id for all writers


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite quirk)
        cur = dbapi_conn.cursor()
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
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False)
            self._write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            self._write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)

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
