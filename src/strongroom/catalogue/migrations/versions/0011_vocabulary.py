"""vocabulary: the vault's own changes to the shipped abuse and facility types

The shipped terms live in code (`catalogue/vocabulary.py`); this table holds only the terms a
vault added, relabelled or retired, each recorded by an `annotated` custody event (a migration
cannot sign one, so it seeds nothing). Downgrading drops the vault's changes: `verify` then
names the events whose rows are gone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'vocabulary_term',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('label_en', sa.Text(), nullable=False),
        sa.Column('label_ru', sa.Text(), nullable=False),
        sa.Column('retired', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_vocabulary_term')),
        sa.UniqueConstraint('kind', 'code', name='uq_vocabulary_term_kind_code'),
    )


def downgrade() -> None:
    op.drop_table('vocabulary_term')
