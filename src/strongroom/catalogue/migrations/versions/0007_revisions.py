"""revisions: what a case, an incident or a clip's review said after each change

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'revision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('row_id', sa.Integer(), nullable=False),
        sa.Column('event_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('view', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_revision')),
        sa.UniqueConstraint('event_seq', name=op.f('uq_revision_event_seq')),
    )


def downgrade() -> None:
    op.drop_table('revision')
