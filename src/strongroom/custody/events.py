"""The custody events the rest of Strongroom appends, one function per action, beside the
code that checks them (`custody/verify.py` rebuilds the catalogue from these details).

Only `vault/` and `custody/` append events: ingest, the pipeline, places and receipts call
these functions, and every access to plaintext is recorded by the vault's door itself
(`downloaded`, `viewed`, `revealed`, `exported`, `fixity_checked`, `verified`). Each function
appends in the caller's transaction and returns the event, whose time the caller's row takes
(`event_time`), so the log covers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os

    from sqlalchemy.orm import Session

    from strongroom.catalogue.models import Acquisition, Camera, CustodyEvent, Facility
    from strongroom.vault import Vault
    from strongroom.vault.hashing import Digests


def acquired(vault: Vault, s: Session, acq: Acquisition, commitment: str) -> CustodyEvent:
    """A source was received. The log is handed to prosecutors and the description may
    identify the source: the event carries only a salted commitment to the record."""
    return vault.record(s, "acquired", f"acquisition:{acq.id}", {
        "acquisition": acq.id, "medium": acq.medium, "commitment": commitment})


def ingested(vault: Vault, s: Session, d: Digests, blob: str, blob_size: int,
             acquisition: int) -> CustodyEvent:
    details: dict[str, Any] = {"sha256": d.sha256, "md5": d.md5, "size": d.size, "blob": blob,
                               "blob_size": blob_size, "acquisition": acquisition}
    if d.sha512:
        details["sha512"] = d.sha512
    return vault.record(s, "ingested", f"original:{d.sha256}", details)


def sighted(vault: Vault, s: Session, *, acquisition: int, sha256: str | None, path: str,
            kind: str, link_target: str | None, size: int | None,
            st: os.stat_result) -> CustodyEvent:
    subject = f"original:{sha256}" if sha256 else f"acquisition:{acquisition}"
    return vault.record(s, "sighted", subject, {
        "acquisition": acquisition, "original": sha256, "path": path, "kind": kind,
        "link_target": link_target, "size": size, "mode": st.st_mode,
        "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "atime_ns": st.st_atime_ns})


def analysed(vault: Vault, s: Session, sha256: str, *, step: str, version: str, status: str,
             result_sha256: str, rows_sha256: str | None, error: str | None,
             command: list[str] | None) -> CustodyEvent:
    """One step's run. The digests put what the step found (clock readings, camera labels, …)
    and the rows it made of it on the record, so `verify` notices an edited result or row."""
    return vault.record(s, "analysed", f"original:{sha256}", {
        "step": step, "version": version, "status": status, "result_sha256": result_sha256,
        **({"rows_sha256": rows_sha256} if rows_sha256 is not None else {}),
        **({"error": error} if error else {}),
        **({"command": command} if command else {}),
    })


def derived(vault: Vault, s: Session, sha256: str, *, derivative: str, kind: str, size: int,
            blob: str, mime: str, step: str, version: str, command: list[str] | None,
            meta: dict[str, Any], chunks: dict[str, Any] | None = None) -> CustodyEvent:
    """A derivative was made. A chunked one (`chunks`: count, chunk_size and the digest of
    its chunk list, `catalogue.evidence.chunks_digest`) names its first chunk's blob."""
    return vault.record(s, "derived", f"original:{sha256}", {
        "derivative": derivative, "kind": kind, "size": size, "blob": blob, "mime": mime,
        "step": step, "version": version, "command": command, "meta": meta,
        **({"chunks": chunks} if chunks is not None else {})})


def published(vault: Vault, s: Session, sha256: str, *, actor: str, details: dict[str, Any]
              ) -> CustodyEvent:
    """A redacted, signed copy of part of the original left the vault for the public (the
    output's SHA-256, the spec and the approver in `details`), recorded in the transaction
    that marks its publication published, before the file takes its name."""
    return vault.record(s, "published", f"original:{sha256}", details, actor=actor)


def camera_annotated(vault: Vault, s: Session, cam: Camera, *, change: str,
                     facility: Facility | None, merged_into_label: str | None = None,
                     previous: dict[str, Any] | None = None, actor: str | None = None
                     ) -> CustodyEvent:
    """A person changed a camera: mapped it to a facility, renamed it, or merged it into
    another. The event holds the camera's whole state after the change (what `verify`
    compares the row with), what OCR read, and what changed."""
    return vault.record(s, "annotated", f"camera:{cam.id}", {
        "change": change, "camera_id": cam.id, "camera": cam.label,
        "read_as": cam.read_as, "ocr_label": cam.ocr_label,
        "merged_into": cam.merged_into, "merged_into_label": merged_into_label,
        "facility_id": cam.facility_id, "facility": facility.name if facility else None,
        "type": facility.type if facility else None,
        "region": facility.region if facility else None,
        **({"previous": previous} if previous else {})}, actor=actor)


def date_order_set(vault: Vault, s: Session, *, shape: str, order: str | None,
                   previous: dict[str, Any] | None) -> CustodyEvent:
    """A person said which way round the vault's slashed dates of `shape` are (`order`
    "DD/MM" or "MM/DD"), or took that back (`order` None: the clips decide again)."""
    return vault.record(s, "annotated", f"date_order:{shape}", {
        "change": "date_order", "shape": shape, "order": order,
        **({"previous": previous} if previous else {})})


def received(vault: Vault, s: Session, bag_id: str, body: dict[str, Any], signature: str,
             export_event: int) -> CustodyEvent:
    """A recipient's signed receipt for an export, checked before this is called."""
    return vault.record(s, "received", f"export:{bag_id}", {
        **body, "signature": signature, "export_event": export_event})


def handed_over(vault: Vault, s: Session, bag_id: str, details: dict[str, Any]
                ) -> CustodyEvent:
    return vault.record(s, "handed_over", f"export:{bag_id}", details)
