"""Read-only questions about the catalogue, shared by the CLI and (later) the web app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

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


def vault_stats(vault: Vault) -> dict[str, Any]:
    with vault.catalogue.read() as s:
        return {
            "originals": s.scalar(select(func.count()).select_from(Original)),
            "original_bytes": s.scalar(select(func.coalesce(func.sum(Original.size), 0))),
            "acquisitions": s.scalar(select(func.count()).select_from(Acquisition)),
            "sightings": s.scalar(select(func.count()).select_from(Sighting)),
            "ingest_errors": s.scalar(select(func.count()).select_from(IngestError)),
            "analysed_originals": s.scalar(select(func.count(func.distinct(
                StepRun.original_sha256)))),
            "step_errors": s.scalar(select(func.count()).select_from(StepRun)
                                    .where(StepRun.status == "error")),
            "segments": s.scalar(select(func.count()).select_from(Segment)),
            "derivatives": s.scalar(select(func.count()).select_from(Derivative)),
            "custody_events": s.scalar(select(func.count()).select_from(CustodyEvent)),
            "last_checkpoint": s.scalar(select(func.max(CustodyCheckpoint.seq))) or 0,
            "signing_key_fingerprint": vault.public.fingerprint,
        }
