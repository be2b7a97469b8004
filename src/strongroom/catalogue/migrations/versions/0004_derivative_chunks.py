"""derivative chunks: video proxies sealed as separate 1 MiB blobs, for seeking by byte range

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('derivative_chunk',
    sa.Column('derivative_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('blob_name', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['derivative_id'], ['derivative.id'], name=op.f('fk_derivative_chunk_derivative_id_derivative')),
    sa.PrimaryKeyConstraint('derivative_id', 'idx', name=op.f('pk_derivative_chunk'))
    )
    with op.batch_alter_table('derivative_chunk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_derivative_chunk_blob_name'), ['blob_name'], unique=False)


def downgrade() -> None:
    # lossy: a chunked derivative then has only its first chunk's blob on record; `verify`
    # names each one whose `derived` event lists chunks (and the other chunks' blobs show as
    # blobs not in the catalogue)
    with op.batch_alter_table('derivative_chunk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_derivative_chunk_blob_name'))
    op.drop_table('derivative_chunk')
