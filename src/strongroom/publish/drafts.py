"""Publishing a redacted part of a clip, in three steps by two people, each on the record.

1. `draft`: the range is redacted (`publish.render`, faces found and tracked) from the original
   decrypted into a private work dir, as the pipeline does; the result is sealed into the vault
   as a `publication_draft` derivative (a `derived` event), and the publication and its
   redaction spec (version 1) are recorded (`annotated` on `publication:<id>`). A person who
   corrects the spec hands it back (`revise`): a new version, a new draft, any approval void.
2. `decide`: a second person — an investigator or admin of the review app, signed in with
   password and TOTP code, not the one who asked — approves or refuses that draft (the very
   bytes: the approval names the draft's SHA-256 and the spec's version).
3. `publish`: the approved draft leaves the vault through its door (a `published` event on the
   original, naming the output's SHA-256, the spec, the approver), signed with the
   organisation's C2PA credentials, whose manifest names the original by its SHA-256 only.

Nothing is written outside the vault before step 3, and step 3 refuses a draft that was not
approved, a draft whose bytes are not the approved ones, and a clip in which no face was found
unless the person publishing confirms it (it may be a clip whose faces the detector missed).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from strongroom.catalogue.models import Derivative, MediaInfo, Publication, RedactionSpec
from strongroom.errors import StrongroomError
from strongroom.publish import spec as specs
from strongroom.publish.render import Options

if TYPE_CHECKING:
    from strongroom.publish.provenance import Signing
    from strongroom.vault import Vault

#: Who may approve a publication (roles of the review app).
APPROVER_ROLES = ("admin", "investigator")
KIND = "publication_draft"
STEP = "publish"
STEP_VERSION = "1"


def _now() -> datetime:
    return datetime.now(UTC)


def _row(s: Any, publication_id: int) -> Publication:
    row: Publication | None = s.get(Publication, publication_id)
    if row is None:
        raise StrongroomError(f"no publication {publication_id}")
    return row


def _spec_row(s: Any, publication_id: int, version: int) -> RedactionSpec:
    row: RedactionSpec | None = s.scalar(select(RedactionSpec).where(
        RedactionSpec.publication_id == publication_id, RedactionSpec.version == version))
    if row is None:
        raise StrongroomError(f"publication {publication_id} has no spec version {version}")
    return row


def _render_and_seal(vault: Vault, sha256: str, options: Options,
                     given: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """Decrypt the original into a private work dir, redact, seal the draft (staged, not yet
    committed): (the render's record, the staged blob)."""
    from strongroom.pipeline.worker import private_workdir
    from strongroom.publish.render import render

    original = vault.find_original(sha256)
    keys = vault.worker_keys()
    with private_workdir(vault.settings.work_dir, original.sha256) as workdir:
        plain = workdir / "original"
        keys.decrypt_original(original.blob_name, original.sha256, plain)
        out = workdir / "draft.mp4"
        record = render(plain, out, options, workdir=workdir, given=given)
        with open(out, "rb") as f:
            stored = vault.store(f, size=out.stat().st_size, what="the publication draft")
    return record, stored


def _record_draft(vault: Vault, s: Any, row: Publication, stored: Any, spec: dict[str, Any],
                  record: dict[str, Any], *, actor: str, change: str) -> None:
    """The draft's derivative row and `derived` event, the spec's new version, and the
    publication's `annotated` event, in the caller's transaction."""
    from strongroom.custody import events
    from strongroom.vault.vault import event_time

    version = row.spec_version
    command = ["strongroom", "publish", f"publication:{row.id}", f"spec:{version}"]
    meta = {"publication": row.id, "spec_version": version,
            "spec_sha256": specs.digest(spec), "faces_found": record.get("faces_found"),
            "tracks": len(spec["tracks"]), "audio": record.get("audio")}
    event = events.derived(vault, s, row.original_sha256, derivative=stored.digests.sha256,
                           kind=KIND, size=stored.digests.size, blob=stored.name,
                           mime="video/mp4", step=STEP, version=STEP_VERSION,
                           command=command, meta=meta)
    s.add(Derivative(original_sha256=row.original_sha256, kind=KIND,
                     sha256=stored.digests.sha256, size=stored.digests.size,
                     blob_name=stored.name, mime="video/mp4", step=STEP,
                     step_version=STEP_VERSION, command=command,
                     created_at=event_time(event), meta=meta))
    s.add(RedactionSpec(publication_id=row.id, version=version, spec=spec,
                        sha256=specs.digest(spec), made_by=actor, made_at=_now()))
    row.draft_sha256 = stored.digests.sha256
    vault.annotate(s, "publication", row.id, change, actor=actor,
                   details={"spec_version": version, "draft": stored.digests.sha256})


def _check_range(vault: Vault, sha256: str, options: Options) -> None:
    with vault.catalogue.read() as s:
        info = s.get(MediaInfo, sha256)
        duration = info.duration if info is not None else None
    if duration and options.start >= duration:
        raise StrongroomError(f"the range starts at {options.start:g} s, after the clip's end "
                              f"({duration:g} s)")


def draft(vault: Vault, sha256_prefix: str, options: Options, *, actor: str | None = None,
          note: str | None = None) -> dict[str, Any]:
    """Redact a range of an original into a new publication's first draft."""
    options.check()
    original = vault.find_original(sha256_prefix)
    _check_range(vault, original.sha256, options)
    actor = actor or vault.actor
    record, stored = _render_and_seal(vault, original.sha256, options, None)
    spec = specs.make(original.sha256, record, start=options.start, end=options.end,
                      hide=options.hide, mask_voice=options.mask_voice)
    vault.commit([stored])
    with vault.write() as s:
        row = Publication(original_sha256=original.sha256, start_s=options.start,
                          end_s=options.end, status="drafted", spec_version=1,
                          requested_by=actor, requested_at=_now(), note=note)
        s.add(row)
        s.flush()
        _record_draft(vault, s, row, stored, spec, record, actor=actor, change="drafted")
        pub = row.id
    return {"publication": pub, "original": original.sha256, "status": "drafted",
            "spec_version": 1, "draft": stored.digests.sha256, **_summary(record)}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    faces = int(record.get("faces_found") or 0)
    return {"frames": record.get("frames"), "faces_found": faces,
            "tracks": len(record.get("tracks") or []), "audio": record.get("audio"),
            "warning": None if faces or record.get("given") else
            "no face was found: look at the draft before anyone publishes it"}


def spec_of(vault: Vault, publication_id: int, version: int | None = None) -> dict[str, Any]:
    """A publication's redaction spec (its current version unless `version`)."""
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        spec: dict[str, Any] = dict(_spec_row(s, publication_id,
                                              version or row.spec_version).spec)
    return spec


def revise(vault: Vault, publication_id: int, text: str, *, actor: str | None = None
           ) -> dict[str, Any]:
    """A person's corrected spec (JSON text): checked whole, then a new version and a new
    draft rendered from it; an approval of the old draft no longer stands."""
    actor = actor or vault.actor
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        if row.status == "published":
            raise StrongroomError(f"publication {publication_id} is published already: "
                                  "draft a new one")
        sha256 = row.original_sha256
        info = s.get(MediaInfo, sha256)
        old: dict[str, Any] = dict(_spec_row(s, publication_id, row.spec_version).spec)
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise StrongroomError(f"the redaction spec is not JSON: {exc}") from None
    width = int(old.get("width") or (info.width if info else 0) or 0)
    height = int(old.get("height") or (info.height if info else 0) or 0)
    spec = specs.check(given, original=sha256, width=width, height=height)
    options = Options(start=float(old["start"]), end=old["end"], hide=spec["hide"],
                      mask_voice=spec["mask_voice"])
    record, stored = _render_and_seal(vault, sha256, options,
                                      {"tracks": spec["tracks"], "max_gap": spec["max_gap"]})
    spec = {**spec, "start": old["start"], "end": old["end"], "fps": record["fps"]}
    vault.commit([stored])
    with vault.write() as s:
        row = _row(s, publication_id)
        if row.status == "published":
            raise StrongroomError(f"publication {publication_id} was published meanwhile")
        row.spec_version += 1
        row.status, row.decided_by, row.decided_at = "drafted", None, None
        _record_draft(vault, s, row, stored, spec, {**record, "given": True}, actor=actor,
                      change="revised")
        version = row.spec_version
    return {"publication": publication_id, "status": "drafted", "spec_version": version,
            "draft": stored.digests.sha256, "tracks": len(spec["tracks"])}


def decide(vault: Vault, publication_id: int, *, approve: bool, username: str, password: str,
           code: str) -> dict[str, Any]:
    """`decide_as` for a review-app user who signs in here with password and TOTP code (the
    command line); the session ends with the decision."""
    from strongroom.review import actions

    token = actions.login(vault, username, password, code)
    who = actions.person(vault, token)
    if who is None:
        raise StrongroomError("the sign-in did not hold")
    try:
        return decide_as(vault, publication_id, approve=approve, username=who.username,
                         role=who.role, actor=who.actor)
    finally:
        actions.logout(vault, who)


def decide_as(vault: Vault, publication_id: int, *, approve: bool, username: str, role: str,
              actor: str) -> dict[str, Any]:
    """A second person — signed in, with an approver's role, not the one who asked —
    approves (or refuses) the current draft. One `annotated` event, naming the draft's
    SHA-256 and the spec version decided on."""
    from strongroom.catalogue.export_requests import same_person

    if role not in APPROVER_ROLES:
        raise StrongroomError(f"{username} is a {role}: only an investigator or an admin may "
                              "approve or refuse a publication")
    with vault.write() as s:
        row = _row(s, publication_id)
        if row.status != "drafted":
            raise StrongroomError(f"publication {publication_id} is {row.status}, not a draft "
                                  "waiting for a decision")
        if same_person(row.requested_by, username):
            raise StrongroomError("someone else must approve or refuse your own publication")
        row.status = "approved" if approve else "refused"
        row.decided_by, row.decided_at = actor, _now()
        vault.annotate(s, "publication", row.id, row.status, actor=actor,
                       details={"spec_version": row.spec_version, "draft": row.draft_sha256})
        return {"publication": publication_id, "status": row.status, "by": actor,
                "spec_version": row.spec_version, "draft": row.draft_sha256}


def publish(vault: Vault, publication_id: int, output: Path, *, signing: Signing,
            organisation: str, no_faces_ok: bool = False, actor: str | None = None
            ) -> dict[str, Any]:
    """Write the approved draft to `output`, signed (C2PA) with its provenance; the door
    records `published` on the original before the file appears under its name."""
    import tempfile

    from strongroom.fsio import check_new_output
    from strongroom.publish import provenance

    check_new_output(output)
    provenance.ready(signing, organisation=organisation)
    actor = actor or vault.actor
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        if row.status != "approved":
            raise StrongroomError(f"publication {publication_id} is {row.status}: only an "
                                  "approved draft is published (`strongroom publish approve`)")
        spec_row = _spec_row(s, publication_id, row.spec_version)
        spec: dict[str, Any] = dict(spec_row.spec)
        draft_row = s.scalar(select(Derivative).where(
            Derivative.original_sha256 == row.original_sha256, Derivative.kind == KIND,
            Derivative.sha256 == row.draft_sha256).limit(1))
        if draft_row is None:
            raise StrongroomError(f"publication {publication_id}'s approved draft is missing")
        meta: dict[str, Any] = dict(draft_row.meta or {})
        faces = int(meta.get("faces_found") or 0)
        approved_by, version, sha256 = row.decided_by, row.spec_version, row.original_sha256
    if not spec["tracks"] and not faces and not no_faces_ok:
        raise StrongroomError("no face was found or marked in this clip: if that is right, "
                              "publish it with --no-faces-ok")
    details: dict[str, Any] = {"publication": publication_id, "spec_version": version,
                               "spec_sha256": specs.digest(spec), "approved_by": approved_by}
    with tempfile.TemporaryDirectory(prefix="strongroom-publish-",
                                     dir=vault.settings.work_dir or None) as tmp:
        plain, signed = Path(tmp) / "draft.mp4", Path(tmp) / "signed.mp4"
        with vault.open_derivative(draft_row, purpose="published", to=str(output),
                                   details=details) as opened, open(plain, "wb") as f:
            opened.copy_to(f.write)
            f.flush()
            made = provenance.sign(
                plain, signed, signing=signing, original_sha256=sha256,
                spec_sha256=specs.digest(spec), spec_version=version,
                publication=publication_id, organisation=organisation,
                description=_description(spec), title=output.name)
            details.update({"output_sha256": made["sha256"], "output_size": made["size"],
                            "manifest": made.get("manifest_label")})
        _place(signed, output)
    with vault.write() as s:
        row = _row(s, publication_id)
        row.status, row.published_sha256, row.published_at = "published", made["sha256"], _now()
        vault.annotate(s, "publication", row.id, "published", actor=actor,
                       details={"output_sha256": made["sha256"]})
    return {"publication": publication_id, "output": str(output), "sha256": made["sha256"],
            "original": sha256, "spec_version": version, "approved_by": approved_by}


def _description(spec: dict[str, Any]) -> str:
    how = "blurred" if spec["hide"] == "blur" else "covered"
    voice = "; voices masked" if spec.get("mask_voice") else ""
    return f"every face {how} on every frame ({len(spec['tracks'])} tracked){voice}"


def _place(src: Path, output: Path) -> None:
    from strongroom.fsio import new_private_file

    with new_private_file(output) as f, open(src, "rb") as r:
        while chunk := r.read(1 << 20):
            f.write(chunk)


def draft_of(vault: Vault, publication_id: int) -> Derivative:
    """The current draft's derivative row (detached), to show it."""
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        found: Derivative | None = s.scalar(select(Derivative).where(
            Derivative.original_sha256 == row.original_sha256, Derivative.kind == KIND,
            Derivative.sha256 == row.draft_sha256).limit(1))
        if found is None:
            raise StrongroomError(f"publication {publication_id} has no draft")
        s.expunge(found)
    return found


def _count(items: object) -> int:
    return len(items) if isinstance(items, list) else 0


def detail(vault: Vault, publication_id: int) -> dict[str, Any]:
    """One publication as its page shows it: the record, its spec versions and the draft's
    facts."""
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        versions = [{"version": r.version, "sha256": r.sha256, "made_by": r.made_by,
                     "made_at": r.made_at.isoformat(timespec="seconds"),
                     "tracks": _count(r.spec.get("tracks"))}
                    for r in s.scalars(select(RedactionSpec).where(
                        RedactionSpec.publication_id == publication_id).order_by(
                        RedactionSpec.version))]
        meta: dict[str, Any] = {}
        if row.draft_sha256:
            d = s.scalar(select(Derivative.meta).where(
                Derivative.kind == KIND, Derivative.sha256 == row.draft_sha256).limit(1))
            meta = dict(d or {})
        return {"publication": row.id, "original": row.original_sha256, "start": row.start_s,
                "end": row.end_s, "status": row.status, "spec_version": row.spec_version,
                "draft": row.draft_sha256, "requested_by": row.requested_by,
                "decided_by": row.decided_by, "published_sha256": row.published_sha256,
                "note": row.note, "versions": versions,
                "faces_found": meta.get("faces_found"), "audio": meta.get("audio")}


def listing(vault: Vault) -> list[dict[str, Any]]:
    with vault.catalogue.read() as s:
        rows = s.scalars(select(Publication).order_by(Publication.id)).all()
        return [{"publication": r.id, "original": r.original_sha256, "start": r.start_s,
                 "end": r.end_s, "status": r.status, "spec_version": r.spec_version,
                 "requested_by": r.requested_by, "decided_by": r.decided_by,
                 "published_sha256": r.published_sha256} for r in rows]


def options_json(options: Options) -> str:
    return json.dumps(asdict(options))
