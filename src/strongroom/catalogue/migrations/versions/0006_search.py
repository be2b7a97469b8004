"""search: `search_doc` and, on SQLite, the FTS5 table `search_fts` of normalised words inside
the (encrypted) catalogue, filled from the rows already there

PostgreSQL gets `search_doc` (empty: its search is a LIKE fallback until a `to_tsvector`
backend exists). The index is derived data: downgrading drops it and nothing else.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'search_doc',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=96), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('ref', sa.Integer(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_search_doc')),
        sa.UniqueConstraint('key', name=op.f('uq_search_doc_key')),
    )
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        from strongroom.catalogue.search_index import FTS_DDL, rebuild

        op.execute(FTS_DDL)
        rebuild(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TABLE IF EXISTS search_fts')
    op.drop_table('search_doc')
