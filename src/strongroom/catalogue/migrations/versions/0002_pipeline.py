"""pipeline: step runs, frame hashes, derivative meta, segment clock format

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('step_run',
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('command', sa.JSON(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_step_run_original_sha256_original')),
    sa.PrimaryKeyConstraint('original_sha256', 'step', name=op.f('pk_step_run'))
    )
    op.create_table('frame_hash',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('t', sa.Float(), nullable=False),
    sa.Column('pdq', sa.String(length=64), nullable=False),
    sa.Column('quality', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_frame_hash_original_sha256_original')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_frame_hash'))
    )
    with op.batch_alter_table('frame_hash', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_frame_hash_original_sha256'), ['original_sha256'], unique=False)
    op.add_column('derivative', sa.Column('meta', sa.JSON(), nullable=True))
    op.add_column('segment', sa.Column('clock_format', sa.String(length=32), nullable=True))
    op.add_column('segment', sa.Column('readings', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.drop_column('readings')
        batch_op.drop_column('clock_format')
    with op.batch_alter_table('derivative', schema=None) as batch_op:
        batch_op.drop_column('meta')
    with op.batch_alter_table('frame_hash', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_frame_hash_original_sha256'))
    op.drop_table('frame_hash')
    op.drop_table('step_run')
