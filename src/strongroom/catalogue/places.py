"""Cameras (created from overlay labels by the pipeline) and the facilities they belong to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from strongroom.catalogue.models import Camera, Facility, Segment
from strongroom.custody import events
from strongroom.errors import StrongroomError
from strongroom.vault import Vault


def list_cameras(vault: Vault) -> list[dict[str, Any]]:
    with vault.catalogue.read() as s:
        rows = s.execute(
            select(Camera.label, Facility.name, func.count(Segment.id))
            .outerjoin(Facility, Camera.facility_id == Facility.id)
            .outerjoin(Segment, Segment.camera_id == Camera.id)
            .group_by(Camera.id, Camera.label, Facility.name).order_by(Camera.label)).all()
    return [{"label": lbl, "facility": fac, "segments": n} for lbl, fac, n in rows]


def map_camera(vault: Vault, label: str, facility: str, *, facility_type: str | None = None,
               region: str | None = None) -> dict[str, Any]:
    """Attach a camera to a facility; an analyst's judgement, so it goes on the record."""
    with vault.write() as s:
        cam = s.scalar(select(Camera).where(Camera.label == label))
        if cam is None:
            known = ", ".join(s.scalars(select(Camera.label).order_by(Camera.label)))
            raise StrongroomError(f"no camera {label!r} (known: {known or 'none yet'})")
        fac = s.scalar(select(Facility).where(Facility.name == facility))
        if fac is None:
            fac = Facility(name=facility, type=facility_type, region=region)
            s.add(fac)
            s.flush()
        else:
            fac.type = facility_type or fac.type
            fac.region = region or fac.region
        previous = cam.facility_id
        cam.facility_id = fac.id
        events.camera_mapped(vault, s, cam.id, label=label, facility=facility,
                             facility_id=fac.id, previous_facility_id=previous, type=fac.type,
                             region=fac.region)
        return {"camera": label, "facility": facility, "facility_id": fac.id}
