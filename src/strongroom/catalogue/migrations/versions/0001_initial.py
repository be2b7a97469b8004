"""initial schema: full data model and custody log

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 09:05:32.287348
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('acquisition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('medium', sa.String(length=32), nullable=False),
    sa.Column('received_by', sa.Text(), nullable=True),
    sa.Column('received_at', sa.String(length=64), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acquisition')),
    sa.UniqueConstraint('description', 'source_path', name='uq_acquisition_key')
    )
    op.create_table('case_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_file')),
    sa.UniqueConstraint('name', name=op.f('uq_case_file_name'))
    )
    op.create_table('custody_checkpoint',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('time', sa.String(length=40), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('tsa_token', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_custody_checkpoint'))
    )
    op.create_table('custody_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('time', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_custody_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_custody_event_hash'))
    )
    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custody_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_custody_event_subject'), ['subject'], unique=False)

    op.create_table('facility',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=True),
    sa.Column('region', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facility')),
    sa.UniqueConstraint('name', name=op.f('uq_facility_name'))
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('sealed_identity', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('pseudonym', name=op.f('uq_person_pseudonym'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('totp_secret_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('username', name=op.f('uq_user_account_username'))
    )
    op.create_table('camera',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_camera_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera')),
    sa.UniqueConstraint('label', name=op.f('uq_camera_label'))
    )
    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('facility_id', sa.Integer(), nullable=True),
    sa.Column('occurred_from', sa.DateTime(), nullable=True),
    sa.Column('occurred_to', sa.DateTime(), nullable=True),
    sa.Column('abuse_types', sa.JSON(), nullable=True),
    sa.Column('severity', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_incident_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident'))
    )
    op.create_table('ingest_error',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('acquisition_id', sa.Integer(), nullable=False),
    sa.Column('rel_path', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['acquisition_id'], ['acquisition.id'], name=op.f('fk_ingest_error_acquisition_id_acquisition')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_error')),
    sa.UniqueConstraint('acquisition_id', 'rel_path', name='uq_ingest_error_path')
    )
    with op.batch_alter_table('ingest_error', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_error_acquisition_id'), ['acquisition_id'], unique=False)

    op.create_table('original',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.Column('sha512', sa.String(length=128), nullable=True),
    sa.Column('blob_name', sa.String(length=64), nullable=False),
    sa.Column('blob_size', sa.BigInteger(), nullable=False),
    sa.Column('mime', sa.String(length=128), nullable=True),
    sa.Column('first_acquisition_id', sa.Integer(), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['first_acquisition_id'], ['acquisition.id'], name=op.f('fk_original_first_acquisition_id_acquisition')),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_original')),
    sa.UniqueConstraint('blob_name', name=op.f('uq_original_blob_name'))
    )
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_session_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    op.create_table('case_incident',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_case_incident_case_id_case_file')),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_case_incident_incident_id_incident')),
    sa.PrimaryKeyConstraint('case_id', 'incident_id', name=op.f('pk_case_incident'))
    )
    op.create_table('derivative',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('blob_name', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=128), nullable=True),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('step_version', sa.String(length=32), nullable=False),
    sa.Column('command', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_derivative_original_sha256_original')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_derivative'))
    )
    with op.batch_alter_table('derivative', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_derivative_original_sha256'), ['original_sha256'], unique=False)

    op.create_table('exposure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('revealed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_exposure_original_sha256_original')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_exposure_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exposure'))
    )
    with op.batch_alter_table('exposure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exposure_user_id'), ['user_id'], unique=False)

    op.create_table('incident_original',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('start_s', sa.Float(), nullable=True),
    sa.Column('end_s', sa.Float(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_original_incident_id_incident')),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_incident_original_original_sha256_original')),
    sa.PrimaryKeyConstraint('incident_id', 'original_sha256', name=op.f('pk_incident_original'))
    )
    op.create_table('incident_person',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_person_incident_id_incident')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_incident_person_person_id_person')),
    sa.PrimaryKeyConstraint('incident_id', 'person_id', name=op.f('pk_incident_person'))
    )
    op.create_table('media_info',
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('container', sa.String(length=64), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('fps', sa.Float(), nullable=True),
    sa.Column('video_codec', sa.String(length=64), nullable=True),
    sa.Column('audio_codec', sa.String(length=64), nullable=True),
    sa.Column('bitrate', sa.BigInteger(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_media_info_original_sha256_original')),
    sa.PrimaryKeyConstraint('original_sha256', name=op.f('pk_media_info'))
    )
    op.create_table('segment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=True),
    sa.Column('clock_start', sa.DateTime(), nullable=True),
    sa.Column('clock_end', sa.DateTime(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_segment_camera_id_camera')),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_segment_original_sha256_original')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment'))
    )
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_camera_id'), ['camera_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_segment_original_sha256'), ['original_sha256'], unique=False)

    op.create_table('sighting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('acquisition_id', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=True),
    sa.Column('rel_path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('link_target', sa.Text(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('mode', sa.Integer(), nullable=True),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=True),
    sa.Column('ctime_ns', sa.BigInteger(), nullable=True),
    sa.Column('atime_ns', sa.BigInteger(), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['acquisition_id'], ['acquisition.id'], name=op.f('fk_sighting_acquisition_id_acquisition')),
    sa.ForeignKeyConstraint(['original_sha256'], ['original.sha256'], name=op.f('fk_sighting_original_sha256_original')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sighting')),
    sa.UniqueConstraint('acquisition_id', 'rel_path', name='uq_sighting_path')
    )
    with op.batch_alter_table('sighting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_acquisition_id'), ['acquisition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sighting_original_sha256'), ['original_sha256'], unique=False)

    _append_only("custody_event")
    _append_only("custody_checkpoint")


def _append_only(table: str) -> None:
    """The custody tables refuse UPDATE and DELETE: no code path can rewrite history by
    accident. (Someone with the database file can drop the trigger; `verify` catches that.)"""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")


def downgrade() -> None:
    _drop_append_only("custody_checkpoint")
    _drop_append_only("custody_event")
    with op.batch_alter_table('sighting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_original_sha256'))
        batch_op.drop_index(batch_op.f('ix_sighting_acquisition_id'))

    op.drop_table('sighting')
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_original_sha256'))
        batch_op.drop_index(batch_op.f('ix_segment_camera_id'))

    op.drop_table('segment')
    op.drop_table('media_info')
    op.drop_table('incident_person')
    op.drop_table('incident_original')
    with op.batch_alter_table('exposure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exposure_user_id'))

    op.drop_table('exposure')
    with op.batch_alter_table('derivative', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_derivative_original_sha256'))

    op.drop_table('derivative')
    op.drop_table('case_incident')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))

    op.drop_table('user_session')
    op.drop_table('original')
    with op.batch_alter_table('ingest_error', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_error_acquisition_id'))

    op.drop_table('ingest_error')
    op.drop_table('incident')
    op.drop_table('camera')
    op.drop_table('user_account')
    op.drop_table('person')
    op.drop_table('facility')
    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custody_event_subject'))
        batch_op.drop_index(batch_op.f('ix_custody_event_action'))

    op.drop_table('custody_event')
    op.drop_table('custody_checkpoint')
    op.drop_table('case_file')
    op.drop_table('acquisition')
