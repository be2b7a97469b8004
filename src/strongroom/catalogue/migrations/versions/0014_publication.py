"""publication: redacted parts of clips (drafted, approved by a second person, published)
and the versioned redaction specs they are rendered from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'publication',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('original_sha256', sa.String(length=64), nullable=False),
        sa.Column('start_s', sa.Float(), nullable=False),
        sa.Column('end_s', sa.Float(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('spec_version', sa.Integer(), nullable=False),
        sa.Column('draft_sha256', sa.String(length=64), nullable=True),
        sa.Column('requested_by', sa.String(length=128), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=128), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('published_sha256', sa.String(length=64), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'],
                                name=op.f('fk_publication_original_sha256_original')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_publication')),
    )
    op.create_index(op.f('ix_publication_original_sha256'), 'publication',
                    ['original_sha256'])
    op.create_table(
        'redaction_spec',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('publication_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('made_by', sa.String(length=128), nullable=False),
        sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['publication_id'], ['publication.id'],
                                name=op.f('fk_redaction_spec_publication_id_publication')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redaction_spec')),
        sa.UniqueConstraint('publication_id', 'version', name='uq_redaction_spec_version'),
    )
    op.create_index(op.f('ix_redaction_spec_publication_id'), 'redaction_spec',
                    ['publication_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_redaction_spec_publication_id'), table_name='redaction_spec')
    op.drop_table('redaction_spec')
    op.drop_index(op.f('ix_publication_original_sha256'), table_name='publication')
    op.drop_table('publication')
