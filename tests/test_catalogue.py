"""The catalogue: migrations up and down with data on SQLite and PostgreSQL, WAL, and the same
vault code running on PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from conftest import Template, connect_catalogue, open_vault
from strongroom.catalogue.migrate import HEAD, MIGRATIONS, downgrade, upgrade
from strongroom.catalogue.models import Acquisition, Base, Original
from strongroom.catalogue.search_index import is_index_table
from strongroom.custody.verify import verify
from strongroom.ingest import ingest


def test_head_constant_matches_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """Autogenerate finds nothing to add: the migrations build exactly the models' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        # the FTS5 table and its shadow tables are SQL Alembic cannot model (search_index.py)
        context = MigrationContext.configure(conn, opts={"include_name": lambda name, kind, _p: (
            kind != "table" or name == "search_doc" or not is_index_table(str(name)))})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def _migrate_with_data(url: str) -> None:
    engine = create_engine(url)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"original", "sighting", "custody_event", "segment", "case_file"} <= tables
    with engine.begin() as conn:
        conn.execute(Acquisition.__table__.insert().values(
            id=1, description="stick", source_path="/m", medium="folder",
            created_at=datetime.now(UTC), actor="t", nonce="00"))
        conn.execute(Original.__table__.insert().values(
            sha256="a" * 64, size=1, md5="b" * 32, blob_name="c" * 64, blob_size=200,
            first_acquisition_id=1, ingested_at=datetime.now(UTC)))
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM original")).scalar() == 0
    engine.dispose()


def test_migrations_upgrade_and_downgrade_with_data_on_sqlite(tmp_path: Path) -> None:
    _migrate_with_data(f"sqlite:///{tmp_path / 'c.db'}")


def test_migrations_upgrade_and_downgrade_with_data_on_postgresql(postgres_url: str) -> None:
    _migrate_with_data(postgres_url)


def test_sqlite_catalogue_runs_in_wal_mode(vault_path: Path) -> None:
    con = connect_catalogue(vault_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_the_vault_runs_on_postgresql(template: Template, tmp_path: Path, source: Path,
                                      postgres_url: str) -> None:
    vault_path = tmp_path / "pgvault"
    shutil.copytree(template.path, vault_path)
    (vault_path / "catalogue.db").unlink()
    (vault_path / "custody-checkpoints.jsonl").unlink()  # the SQLite template's, not this one's
    v = open_vault(vault_path, template.keys, database_url=postgres_url)
    try:
        with v.write() as s:
            v.record(s, "vault_created", f"vault:{v.public.fingerprint}", {"format": "pg"})
        report = ingest(v, source, "USB stick 1")
        assert (report.new_originals, report.duplicates) == (4, 1)
        assert ingest(v, source, "USB stick 1").new_originals == 0
        checked = verify(v)
        assert checked.ok, checked.problems
        with v.catalogue.read() as s:
            assert len(s.scalars(select(Original)).all()) == 4
        with pytest.raises(Exception, match="append-only"), v.catalogue.write() as s:
            s.execute(text("DELETE FROM custody_event"))
    finally:
        v.close()
