"""search on PostgreSQL: `search_doc.terms`, a `tsvector` of each document's normalised words
(`words.terms`, the same lemmas and stems SQLite's FTS5 index holds, so both find the same
things), with a GIN index, filled from the rows already there

PostgreSQL only (SQLite has its FTS5 tables since 0006). Derived data: downgrading drops the
column and nothing else.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        from strongroom.catalogue.search_index import rebuild

        op.execute('ALTER TABLE search_doc ADD COLUMN terms tsvector')
        op.execute('CREATE INDEX ix_search_doc_terms ON search_doc USING gin (terms)')
        rebuild(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_search_doc_terms')
        op.execute('DELETE FROM search_doc')
        op.execute('ALTER TABLE search_doc DROP COLUMN IF EXISTS terms')
