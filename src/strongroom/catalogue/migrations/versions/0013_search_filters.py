"""search filters: the FTS5 table `search_filter_fts` (each document's words and its filter
facets as reserved tokens, `search_facets`), filled from the rows already there, so that a
filtered search is one FTS5 query

SQLite only (PostgreSQL searches with LIKE). Derived data: downgrading drops it and nothing
else.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        from strongroom.catalogue.search_index import FILTER_DDL, rebuild

        op.execute(FILTER_DDL)
        rebuild(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TABLE IF EXISTS search_filter_fts')
