"""Read-only questions about the catalogue, shared by the CLI and (later) the web app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import (
    Acquisition,
    CustodyCheckpoint,
    CustodyEvent,
    Derivative,
    IngestError,
    Original,
    Segment,
    Sighting,
    StepRun,
)

if TYPE_CHECKING:
    from strongroom.vault import Vault


def partial_clips(session: Session, originals: Iterable[str] | None = None) -> dict[str, str]:
    """Originals whose video decodes only in part (truncated, damaged midway) → why.

    Derived, not stored twice: the picture steps record `partial` in their result when the
    decode pass stopped early or ended well before the duration the file declares, so a court
    reading a timeline knows the clip does not cover what its header claims."""
    reason = StepRun.result["partial"].as_string()
    q = (select(StepRun.original_sha256, reason)
         .where(StepRun.status == "ok", reason.is_not(None))
         .order_by(StepRun.original_sha256, StepRun.step))
    if originals is not None:
        q = q.where(StepRun.original_sha256.in_(list(originals)))
    out: dict[str, str] = {}
    for sha, why in session.execute(q):
        out.setdefault(sha, why)
    return out


def vault_stats(vault: Vault) -> dict[str, Any]:
    with vault.catalogue.read() as s:
        return {
            "originals": s.scalar(select(func.count()).select_from(Original)),
            # int(): PostgreSQL sums a bigint column as numeric (a Decimal)
            "original_bytes": int(s.scalar(select(func.coalesce(func.sum(Original.size), 0)))
                                  or 0),
            "acquisitions": s.scalar(select(func.count()).select_from(Acquisition)),
            "sightings": s.scalar(select(func.count()).select_from(Sighting)),
            "ingest_errors": s.scalar(select(func.count()).select_from(IngestError)),
            "analysed_originals": s.scalar(select(func.count(func.distinct(
                StepRun.original_sha256)))),
            "step_errors": s.scalar(select(func.count()).select_from(StepRun)
                                    .where(StepRun.status == "error")),
            "partial_clips": len(partial_clips(s)),
            "segments": s.scalar(select(func.count()).select_from(Segment)),
            "derivatives": s.scalar(select(func.count()).select_from(Derivative)),
            "custody_events": s.scalar(select(func.count()).select_from(CustodyEvent)),
            "last_checkpoint": s.scalar(select(func.max(CustodyCheckpoint.seq))) or 0,
            "signing_key_fingerprint": vault.public.fingerprint,
        }
