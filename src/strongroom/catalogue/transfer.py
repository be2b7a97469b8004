"""Moving a catalogue to another database (`strongroom migrate-db`: the laptop's SQLite to
the server's PostgreSQL): every row of every table, in foreign-key order, in one transaction
on the target, then counted and compared table by table, and the custody chain checked on
the target before the vault switches to it.

The search index (`search_index`) is SQLite's FTS5 and is not carried: PostgreSQL searches
with its own means behind the same interface. Anything the source holds that the schema
does not know (a table or a column) stops the move before it starts, rather than being
left behind without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Table, create_engine, func, insert, inspect, select, text

from strongroom.catalogue.models import Base
from strongroom.catalogue.search_index import is_index_table
from strongroom.errors import StrongroomError

#: rows per INSERT batch
BATCH = 2000
_SKIP = {"alembic_version"}


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if not is_index_table(t.name)]


def _check_schema(source: Engine) -> None:
    known = {t.name: t for t in _tables()}
    insp = inspect(source)
    for name in insp.get_table_names():
        if name in _SKIP or is_index_table(name) or name.startswith("sqlite_"):
            continue
        if name not in known:
            raise StrongroomError(f"the catalogue has a table {name!r} this version does not "
                                  "know; nothing was moved")
        have = {c["name"] for c in insp.get_columns(name)}
        missing = have - {c.name for c in known[name].columns}
        if missing:
            raise StrongroomError(f"table {name}: columns {sorted(missing)} are not in this "
                                  "version's schema; nothing was moved")


def copy_catalogue(source: Engine, target_url: str, *,
                   advance: Callable[[int], None] | None = None) -> dict[str, int]:
    """Copy every row from `source` (at the newest revision) into the empty database at
    `target_url` (brought to the newest revision first). Returns the rows per table, equal in
    both (checked). The target must hold no catalogue yet."""
    from strongroom.catalogue.migrate import upgrade

    _check_schema(source)
    target = create_engine(target_url)
    try:
        upgrade(target)
        tables = _tables()
        with target.connect() as conn:
            filled = [t.name for t in tables
                      if conn.execute(select(func.count()).select_from(t)).scalar()]
        if filled:
            raise StrongroomError(f"the target database already holds a catalogue (rows in "
                                  f"{', '.join(filled[:3])}); migrate-db needs an empty one")
        counts: dict[str, int] = {}
        with source.connect() as src, target.begin() as dst:
            for table in tables:
                n = 0
                rows = src.execute(select(table)).mappings()
                while batch := rows.fetchmany(BATCH):
                    dst.execute(insert(table), [dict(r) for r in batch])
                    n += len(batch)
                    if advance is not None:
                        advance(len(batch))
                counts[table.name] = n
                _reset_sequence(dst, table)
            from strongroom.catalogue.search_index import has_index, rebuild

            if has_index(dst):  # the index is derived: made afresh from the rows carried
                rebuild(dst)
        with source.connect() as src, target.connect() as dst:
            for table in tables:
                a = src.execute(select(func.count()).select_from(table)).scalar()
                b = dst.execute(select(func.count()).select_from(table)).scalar()
                if a != b or b != counts[table.name]:
                    raise StrongroomError(f"table {table.name}: {b} rows arrived of {a}")
        return counts
    finally:
        target.dispose()


def _reset_sequence(conn: Any, table: Table) -> None:
    """PostgreSQL: the next id after the copied ones (the rows kept their ids)."""
    if conn.dialect.name != "postgresql":
        return
    for col in table.primary_key.columns:
        if col.autoincrement is True or (col.autoincrement == "auto" and len(
                table.primary_key.columns) == 1 and col.type.python_type is int):
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                               {"t": table.name, "c": col.name}).scalar()
            if seq:  # names from our own schema, never from input
                top = conn.execute(select(func.max(col))).scalar()
                conn.execute(text("SELECT setval(:seq, :next, false)"),
                             {"seq": seq, "next": int(top or 0) + 1})


def without_password(url: str) -> str:
    """The URL to write down (vault.json): the password, if any, stays in the environment
    (STRONGROOM_DATABASE_URL, PGPASSWORD or ~/.pgpass)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.set(password=None).render_as_string(hide_password=False)


__all__ = ["copy_catalogue", "without_password"]
