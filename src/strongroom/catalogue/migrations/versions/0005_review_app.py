"""the review app: accounts (language, preferences, TOTP replay guard, lockout), sessions
(idle expiry, CSRF token), exposure as reveal grants, and each clip's review

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=False,
                                      server_default='en'))
        batch_op.add_column(sa.Column('prefs', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stopped_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('csrf_token', sa.String(length=64), nullable=True))
    with op.batch_alter_table('exposure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('played', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        'review',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('original_sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('labels', sa.JSON(), nullable=True),
        sa.Column('assigned_to', sa.Integer(), nullable=True),
        sa.Column('updated_by', sa.String(length=128), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['assigned_to'], ['user_account.id'],
                                name=op.f('fk_review_assigned_to_user_account')),
        sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'],
                                name=op.f('fk_review_original_sha256_original')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review')),
        sa.UniqueConstraint('original_sha256', name=op.f('uq_review_original_sha256')),
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_assigned_to'), ['assigned_to'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_assigned_to'))
    op.drop_table('review')
    with op.batch_alter_table('exposure', schema=None) as batch_op:
        batch_op.drop_column('played')
        batch_op.drop_column('until')
        batch_op.drop_column('session_id')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_column('csrf_token')
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        for col in ('stopped_until', 'locked_until', 'failed_logins', 'totp_last_step',
                    'prefs', 'locale'):
            batch_op.drop_column(col)
