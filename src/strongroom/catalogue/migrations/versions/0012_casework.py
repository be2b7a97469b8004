"""case work: incident and case status, case recipient and notes, a note on a person, and
export requests (a lawyer asks, an admin or investigator approves)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incident') as batch:
        batch.add_column(sa.Column('status', sa.String(length=32), nullable=True))
    with op.batch_alter_table('case_file') as batch:
        batch.add_column(sa.Column('recipient', sa.Text(), nullable=True))
        batch.add_column(sa.Column('status', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('notes', sa.Text(), nullable=True))
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('note', sa.Text(), nullable=True))
    op.create_table(
        'export_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('requested_by', sa.String(length=128), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=128), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('bag_id', sa.String(length=128), nullable=True),
        sa.Column('output', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['case_file.id'],
                                name=op.f('fk_export_request_case_id_case_file')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_export_request')),
    )
    op.create_index(op.f('ix_export_request_case_id'), 'export_request', ['case_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_export_request_case_id'), table_name='export_request')
    op.drop_table('export_request')
    with op.batch_alter_table('person') as batch:
        batch.drop_column('note')
    with op.batch_alter_table('case_file') as batch:
        batch.drop_column('notes')
        batch.drop_column('status')
        batch.drop_column('recipient')
    with op.batch_alter_table('incident') as batch:
        batch.drop_column('status')
