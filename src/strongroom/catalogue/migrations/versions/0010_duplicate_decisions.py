"""duplicate decisions: groups a person confirmed, best copies chosen, clips split apart

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'duplicate_decision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('decision', sa.String(length=16), nullable=False),
        sa.Column('best_sha256', sa.String(length=64), nullable=True),
        sa.Column('members', sa.JSON(), nullable=False),
        sa.Column('apart', sa.JSON(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('decided_by', sa.String(length=128), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['best_sha256'], ['original.sha256'],
                                name=op.f('fk_duplicate_decision_best_sha256_original')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_decision')),
    )


def downgrade() -> None:
    op.drop_table('duplicate_decision')
