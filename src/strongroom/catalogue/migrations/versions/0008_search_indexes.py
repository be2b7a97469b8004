"""search indexes: what the search filters look up (facility, camera, DVR dates, status, case,
people), so a filtered search reads indexes rather than whole tables

Indexes only: no rows change, and downgrading drops exactly these indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (name, table, columns)
INDEXES = [
    ('ix_segment_camera_clip', 'segment', ['camera_id', 'original_sha256']),
    ('ix_segment_clock', 'segment', ['clock_start', 'clock_end', 'original_sha256']),
    ('ix_incident_facility_id', 'incident', ['facility_id']),
    ('ix_incident_occurred', 'incident', ['occurred_from', 'occurred_to']),
    ('ix_incident_original_original_sha256', 'incident_original', ['original_sha256']),
    ('ix_incident_person_person_id', 'incident_person', ['person_id']),
    ('ix_case_incident_incident_id', 'case_incident', ['incident_id']),
    ('ix_review_status', 'review', ['status']),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
