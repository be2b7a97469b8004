"""camera names people correct: the label OCR read, and merges; a segment's clock phase

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_as', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_camera_merged_into_camera'), 'camera',
                                    ['merged_into'], ['id'])
    op.add_column('segment', sa.Column('clock_phase', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.drop_column('clock_phase')
    # lossy: renamed and merged cameras keep their new label, but not what OCR read nor the
    # merge; `verify` names each camera whose latest custody event says otherwise
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_camera_merged_into_camera'), type_='foreignkey')
        batch_op.drop_column('merged_into')
        batch_op.drop_column('read_as')
