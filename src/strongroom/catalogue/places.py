"""Cameras (created from overlay labels by the pipeline) and the facilities they belong to.

OCR reads a camera's label; people correct it. `rename_camera` gives a camera a new label and
keeps the one OCR read (`Camera.read_as`); `merge_cameras` points one camera at another (two
reads of one camera's label, or one camera relabelled by the DVR), which then stands for both on
the timeline and in exports. Mapping, renaming and merging are each a custody event holding the
camera's whole state after the change, so `verify` notices a row edited by hand. The review app
calls these same functions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from strongroom.catalogue.models import Camera, Facility, Segment
from strongroom.custody import events
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

#: The longest label, facility name, type or region a person may give (DVR labels are short;
#: the same bound as STRONGROOM_ACTOR).
MAX_TEXT = 200


def canonical() -> tuple[Any, ColumnElement[bool]]:
    """An alias of Camera for the camera a segment's camera stands under (itself, or the one
    it was merged into), and the join condition from `Camera` to it."""
    canon = aliased(Camera, name="canon")
    return canon, canon.id == func.coalesce(Camera.merged_into, Camera.id)


def list_cameras(vault: Vault) -> list[dict[str, Any]]:
    """Every camera: its label, what OCR read, where it was merged, its facility, and how
    many segments were read under it."""
    with vault.catalogue.read() as s:
        target = aliased(Camera, name="target")
        rows = s.execute(
            select(Camera, target.label, Facility.name, func.count(Segment.id))
            .outerjoin(target, Camera.merged_into == target.id)
            .outerjoin(Facility, Camera.facility_id == Facility.id)
            .outerjoin(Segment, Segment.camera_id == Camera.id)
            .group_by(Camera.id, target.label, Facility.name).order_by(Camera.label)).all()
        return [{"label": cam.label, "ocr_label": cam.ocr_label, "merged_into": into,
                 "facility": fac, "segments": n} for cam, into, fac, n in rows]


def cameras_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        line = f"{r['label']:<32} {r['segments']:>4} segment(s)  "
        if r["merged_into"]:
            line += f"merged into {r['merged_into']}"
        else:
            line += r["facility"] or "(no facility)"
        if r["ocr_label"] != r["label"]:
            line += f"  (read as {r['ocr_label']})"
        lines.append(line)
    return "\n".join(lines) or "(no cameras yet: run `strongroom process`)"


def _camera(s: Session, label: str) -> Camera:
    cam = s.scalar(select(Camera).where(Camera.label == label))
    if cam is None:
        known = ", ".join(s.scalars(select(Camera.label).order_by(Camera.label)))
        raise StrongroomError(f"no camera {label!r} (known: {known or 'none yet'})")
    return cam


def _not_merged(s: Session, cam: Camera, what: str) -> None:
    if cam.merged_into is not None:
        into = s.get(Camera, cam.merged_into)
        raise StrongroomError(f"camera {cam.label!r} is merged into "
                              f"{into.label if into else cam.merged_into!r}: {what} that one")


def _text(value: str, what: str) -> str:
    """What a person typed, as it is kept: single spaces, printable (no control characters,
    bidi overrides or zero-width characters, which would make one label look like another or
    rewrite the terminal that shows it), not empty, at most MAX_TEXT characters."""
    text = " ".join(value.split())
    if not text or not text.isprintable():
        raise StrongroomError(f"the {what} must be printable and not empty")
    if len(text) > MAX_TEXT:
        raise StrongroomError(f"the {what} is {len(text)} characters long; at most {MAX_TEXT}")
    return text


def _look_alike(s: Session, cam: Camera, new: str, what: str = "label") -> Camera | None:
    """Another camera whose label (`what`: or what OCR read before a person renamed it,
    `read_as`) looks the same as `new` (`_confusable`): two cameras a person cannot tell
    apart in `cameras list`, the timeline or a report — or, for `read_as`, a camera whose new
    clips read as `new` keep landing on, so `new` elsewhere would name clips it never gets
    (one merged into this camera is not another: its clips show under this label anyway)."""
    key = _confusable(new)
    if not key:
        return None
    for other in s.scalars(select(Camera).where(Camera.id != cam.id).order_by(Camera.id)):
        if what == "read_as" and other.merged_into == cam.id:
            continue
        if _confusable(getattr(other, what) or "") == key:
            return other
    return None


#: Letters a reader takes for digits in a label ("CAM l", "CAM I" for "CAM 1").
_AS_DIGITS = str.maketrans({"L": "1", "I": "1", "|": "1", "!": "1", "O": "0", "О": "0"})


def _confusable(label: str) -> str:
    """`labels.canonical` of the label's compatibility form (mathematical and full-width
    digits are digits: "CAM 𝟏"), without spaces, letters that pass for digits as digits: two
    labels with one key look the same to a person reading a list."""
    import unicodedata

    from strongroom.media.labels import canonical as fold

    key = fold(unicodedata.normalize("NFKC", label))
    return key.translate(_AS_DIGITS).replace(" ", "")


def _facility(s: Session, cam: Camera) -> Facility | None:
    return s.get(Facility, cam.facility_id) if cam.facility_id is not None else None


def _state(cam: Camera) -> dict[str, Any]:
    return {"camera": cam.label, "read_as": cam.read_as, "merged_into": cam.merged_into,
            "facility_id": cam.facility_id}


def map_camera(vault: Vault, label: str, facility: str, *, facility_type: str | None = None,
               region: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Attach a camera to a facility (made if new); an analyst's judgement, so it goes on the
    record. `facility_type` is a term of the facility vocabulary (its code, a label, or the
    abbreviation in one: "СИЗО")."""
    from strongroom.catalogue.vocabulary import check

    facility = _text(facility, "facility name")
    facility_type = None if facility_type is None else _text(facility_type, "facility type")
    region = None if region is None else _text(region, "region")
    with vault.write() as s:
        cam = _camera(s, label)
        _not_merged(s, cam, "map")
        code = None if facility_type is None else check(s, "facility", facility_type)
        fac = s.scalar(select(Facility).where(Facility.name == facility))
        if fac is None:
            _name_free(s, facility, None)
            fac = Facility(name=facility, type=code, region=region)
            s.add(fac)
            s.flush()
            vault.annotate(s, "facility", fac.id, "made", actor=actor, details=_fields(fac))
        elif (code or fac.type, region or fac.region) != (fac.type, fac.region):
            fac.type = code or fac.type
            fac.region = region or fac.region
            vault.annotate(s, "facility", fac.id, "edited", actor=actor, details=_fields(fac))
        _map(vault, s, cam, fac, actor)
        return {"camera": label, "facility": facility, "facility_id": fac.id}


def assign_camera(vault: Vault, label: str, facility_id: int, *, actor: str | None = None
                  ) -> dict[str, Any]:
    """Attach a camera to an existing facility (logged): the review app's mapping."""
    with vault.write() as s:
        cam = _camera(s, label)
        _not_merged(s, cam, "map")
        fac = _facility_by_id(s, facility_id)
        if cam.facility_id == fac.id:
            raise StrongroomError(f"camera {cam.label!r} is already in {fac.name!r}")
        _map(vault, s, cam, fac, actor)
        return {"camera": cam.label, "facility": fac.name, "facility_id": fac.id}


def _map(vault: Vault, s: Session, cam: Camera, fac: Facility, actor: str | None) -> None:
    previous = _state(cam)
    cam.facility_id = fac.id
    events.camera_annotated(vault, s, cam, change="mapped", facility=fac, previous=previous,
                            actor=actor)


def _fields(fac: Facility) -> dict[str, Any]:
    """What a facility's event says of it besides its digest: its name, type and region are
    not sensitive (a camera's mapping event has always carried them) and `verify` compares
    the row with the latest word on them."""
    return {"name": fac.name, "type": fac.type, "region": fac.region}


def _facility_by_id(s: Session, facility_id: int) -> Facility:
    fac = s.get(Facility, facility_id)
    if fac is None:
        raise StrongroomError(f"no facility {facility_id}")
    return fac


def _name_free(s: Session, name: str, facility_id: int | None) -> None:
    """Two facilities whose names differ only in case or spacing are one facility twice."""
    key = name.casefold().replace(" ", "")
    for fid, other in s.execute(select(Facility.id, Facility.name)):
        if fid != facility_id and other.casefold().replace(" ", "") == key:
            raise StrongroomError(f"there is already a facility {other!r}")


def add_facility(vault: Vault, name: str, *, facility_type: str | None = None,
                 region: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """A new facility (logged): a name no other facility has, a type from the facility
    vocabulary, a region."""
    from strongroom.catalogue.vocabulary import check

    name = _text(name, "facility name")
    facility_type = _text(facility_type, "facility type") if facility_type else None
    region = _text(region, "region") if region else None
    with vault.write() as s:
        _name_free(s, name, None)
        fac = Facility(name=name, region=region,
                       type=check(s, "facility", facility_type) if facility_type else None)
        s.add(fac)
        s.flush()
        vault.annotate(s, "facility", fac.id, "made", actor=actor, details=_fields(fac))
        return {"facility_id": fac.id, **_fields(fac)}


def edit_facility(vault: Vault, facility_id: int, *, name: str | None = None,
                  facility_type: str | None = None, region: str | None = None,
                  actor: str | None = None) -> dict[str, Any]:
    """Change a facility's name, type or region (logged; each version kept). An empty
    region clears it. A type the vocabulary has since retired may stay."""
    from strongroom.catalogue.vocabulary import check

    with vault.write() as s:
        fac = _facility_by_id(s, facility_id)
        new: dict[str, str | None] = {"name": fac.name, "type": fac.type,
                                      "region": fac.region}
        if name is not None:
            new_name = _text(name, "facility name")
            _name_free(s, new_name, fac.id)
            new["name"] = new_name
        if facility_type is not None and facility_type.strip():
            typed = _text(facility_type, "facility type")
            new["type"] = check(s, "facility", typed, allow_retired=typed == fac.type)
        if region is not None:
            new["region"] = _text(region, "region") if region.strip() else None
        changed = [k for k, v in new.items() if v != getattr(fac, k)]
        if not changed:
            raise StrongroomError(f"facility {fac.name!r} already says that")
        fac.name, fac.type, fac.region = new["name"] or fac.name, new["type"], new["region"]
        vault.annotate(s, "facility", fac.id, "+".join(changed), actor=actor,
                       details=_fields(fac))
        return {"facility_id": fac.id, **_fields(fac), "changed": changed}


def list_facilities(vault: Vault, locale: str = "en") -> dict[str, Any]:
    """Every facility (name, type and its label in `locale`, region, its cameras, how many
    clips show it) and the cameras no facility holds yet, with their clips: what the
    facilities page shows. A camera merged into another counts under that one."""
    from sqlalchemy import distinct

    from strongroom.catalogue.vocabulary import labels

    with vault.catalogue.read() as s:
        type_labels = labels(s, "facility", locale)
        canon, joined = canonical()
        clips = func.count(distinct(Segment.original_sha256))
        per_camera: dict[int, int] = {cam_id: n for cam_id, n in s.execute(
            select(canon.id, clips).select_from(Segment)
            .join(Camera, Segment.camera_id == Camera.id).join(canon, joined)
            .group_by(canon.id))}
        per_facility: dict[int, int] = {fac_id: n for fac_id, n in s.execute(
            select(canon.facility_id, clips).select_from(Segment)
            .join(Camera, Segment.camera_id == Camera.id).join(canon, joined)
            .where(canon.facility_id.is_not(None)).group_by(canon.facility_id))}
        cameras = list(s.scalars(select(Camera).where(Camera.merged_into.is_(None))
                                 .order_by(Camera.label)))
        facilities = []
        for fac in s.scalars(select(Facility).order_by(Facility.name)):
            facilities.append({
                "id": fac.id, "name": fac.name, "type": fac.type,
                "type_label": type_labels.get(fac.type or "", fac.type),
                "region": fac.region, "clips": per_facility.get(fac.id, 0),
                "cameras": [{"label": c.label, "clips": per_camera.get(c.id, 0)}
                            for c in cameras if c.facility_id == fac.id]})
        unmapped = [{"label": c.label, "ocr_label": c.ocr_label,
                     "clips": per_camera.get(c.id, 0)}
                    for c in cameras if c.facility_id is None]
        return {"facilities": facilities, "unmapped": unmapped,
                "cameras": [c.label for c in cameras]}


def rename_camera(vault: Vault, old: str, new: str, *, actor: str | None = None
                  ) -> dict[str, Any]:
    """Give a camera the label a person read (OCR misread it); what OCR read stays on record,
    and clips read later with either label land on this camera."""
    new = _text(new, "new camera label")
    with vault.write() as s:
        cam = _camera(s, old)
        _not_merged(s, cam, "rename")
        if new == cam.label:
            raise StrongroomError(f"camera {old!r} is already called that")
        taken = s.scalar(select(Camera).where(Camera.label == new))
        if taken is not None:
            raise StrongroomError(
                f"there is already a camera {new!r}: to say both are one camera, run "
                f"`strongroom cameras merge VAULT {old!r} {new!r}`")
        twin = _look_alike(s, cam, new)
        if twin is not None:
            raise StrongroomError(
                f"{new!r} reads the same as camera {twin.label!r} (look-alike letters, case "
                f"or spacing): to say both are one camera, run `strongroom cameras merge "
                f"VAULT {old!r} {twin.label!r}`")
        reader = _look_alike(s, cam, new, "read_as")
        if reader is not None:
            raise StrongroomError(
                f"{new!r} is what OCR read on the clips of camera {reader.label!r} (renamed "
                f"from it): clips read so land there, not on {old!r}; to say both are one "
                f"camera, run `strongroom cameras merge VAULT {old!r} {reader.label!r}`")
        previous = _state(cam)
        cam.read_as = cam.ocr_label
        cam.label = new
        s.flush()
        events.camera_annotated(vault, s, cam, change="renamed", facility=_facility(s, cam),
                                previous=previous, actor=actor)
        return {"camera": new, "was": old, "ocr_label": cam.ocr_label}


def merge_cameras(vault: Vault, source: str, target: str) -> dict[str, Any]:
    """Camera `source` is camera `target`: its segments show under `target` (label and
    facility) from now on. Cameras already merged into `source` follow it, each with its own
    event. The rows keep what OCR read, so the merge can be told apart and undone by hand."""
    with vault.write() as s:
        src, dst = _camera(s, source), _camera(s, target)
        if src.id == dst.id:
            raise StrongroomError("a camera cannot be merged into itself")
        _not_merged(s, dst, "merge into")
        if src.merged_into == dst.id:
            raise StrongroomError(f"camera {source!r} is already merged into {target!r}")
        followers = list(s.scalars(select(Camera).where(Camera.merged_into == src.id)
                                   .order_by(Camera.id)))
        moved = []
        for cam in [src, *followers]:
            previous = _state(cam)
            cam.merged_into = dst.id
            s.flush()
            events.camera_annotated(vault, s, cam, change="merged", facility=_facility(s, cam),
                                    merged_into_label=dst.label, previous=previous)
            moved.append(cam.label)
        return {"merged": moved, "into": target}
