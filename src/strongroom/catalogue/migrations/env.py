"""Alembic environment: uses the engine handed over in `config.attributes`, or the URL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from strongroom.catalogue.models import Base

config = context.config
target_metadata = Base.metadata



def _driver(connection: Connection) -> Any:
    raw = connection.connection.driver_connection
    if raw is None:
        raise RuntimeError("the database connection is closed")
    return raw


engine = config.attributes.get("engine")
if engine is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it and dropping the old one; with foreign keys
        # enforced, dropping a table other rows refer to (camera, by segment) fails. The pragma
        # is a no-op inside a transaction, so it is set before the migration's.
        # (on the driver's connection: SQLAlchemy's would start our BEGIN first)
        _driver(connection).execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        raw = _driver(connection)
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        raw.execute("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"the migration left rows whose references broke: {broken[:5]}")
