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
    from strongroom.pipeline.worker import cleanup_workdirs, private_workdir
    from strongroom.publish.render import render

    original = vault.find_original(sha256)
    keys = vault.worker_keys()
    cleanup_workdirs(vault.settings.work_dir)  # what a killed earlier run left
    with private_workdir(vault.settings.work_dir, original.sha256) as workdir:
        plain = workdir / "original"
        keys.decrypt_original(original.blob_name, original.sha256, plain)
        out = workdir / "draft.mp4"
        with _scrubbed(workdir):
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


def label_box(vault: Vault, sha256: str) -> tuple[float, float, float, float]:
    """Where the clip's camera label is (what `overlay_ocr` read), with a margin: to hide it
    in a publication when the label itself would say too much (a cell, a ward)."""
    from strongroom.catalogue.models import StepRun

    with vault.catalogue.read() as s:
        result = s.scalar(select(StepRun.result).where(
            StepRun.original_sha256 == sha256, StepRun.step == "overlay_ocr",
            StepRun.status == "ok"))
    box: Any = (result or {}).get("label_box")
    if not isinstance(box, list) or len(box) != 4:
        raise StrongroomError("no camera label was read on this clip (`strongroom process` "
                              "reads it); draw a box over it in the draft instead")
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = 0.25 * (y1 - y0)
    return (max(0.0, x0 - pad), max(0.0, y0 - pad), x1 + pad, y1 + pad)


def draft(vault: Vault, sha256_prefix: str, options: Options, *, actor: str | None = None,
          note: str | None = None, hide_label: bool = False) -> dict[str, Any]:
    """Redact a range of an original into a new publication's first draft (`hide_label`:
    the camera label too, on every frame)."""
    from dataclasses import replace

    options.check()
    original = vault.find_original(sha256_prefix)
    _check_range(vault, original.sha256, options)
    if hide_label:
        options = replace(options, static_boxes=(label_box(vault, original.sha256),))
    actor = actor or vault.actor
    record, stored = _render_and_seal(vault, original.sha256, options, None)
    spec = specs.make(original.sha256, record, start=options.start, end=options.end,
                      hide=options.hide, mask_voice=options.mask_voice,
                      keep_audio=options.keep_audio)
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
            "warning": None if faces else
            "no face was found: look at the draft before anyone publishes it"}


def spec_of(vault: Vault, publication_id: int, version: int | None = None) -> dict[str, Any]:
    """A publication's redaction spec (its current version unless `version`)."""
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        spec: dict[str, Any] = dict(_spec_row(
            s, publication_id, row.spec_version if version is None else version).spec)
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
    spec = specs.check(given, original=sha256, width=width, height=height,
                       start=old["start"], end=old["end"], frames=old.get("frames"))
    options = Options(start=float(old["start"]), end=old["end"], hide=spec["hide"],
                      mask_voice=spec["mask_voice"],
                      keep_audio=bool(old.get("keep_audio", True)))
    record, stored = _render_and_seal(vault, sha256, options,
                                      {"tracks": spec["tracks"], "max_gap": spec["max_gap"]})
    # the tracks as rendered: a box a person asked to follow now has its keys
    spec = {**spec, "start": old["start"], "end": old["end"], "fps": record["fps"],
            "frames": record["frames"], "keep_audio": options.keep_audio,
            "tracks": record["tracks"]}
    vault.commit([stored])
    with vault.write() as s:
        row = _row(s, publication_id)
        if row.status == "published":
            raise StrongroomError(f"publication {publication_id} was published meanwhile")
        row.spec_version += 1
        row.status, row.decided_by, row.decided_at = "drafted", None, None
        _record_draft(vault, s, row, stored, spec, record, actor=actor, change="revised")
        version = row.spec_version
    return {"publication": publication_id, "status": "drafted", "spec_version": version,
            "draft": stored.digests.sha256, "tracks": len(spec["tracks"])}


def decide(vault: Vault, publication_id: int, *, approve: bool, username: str, password: str,
           code: str, version: int | None = None) -> dict[str, Any]:
    """`decide_as` for a review-app user who signs in here with password and TOTP code (the
    command line); the session ends with the decision."""
    from strongroom.review import actions

    token = actions.login(vault, username, password, code)
    who = actions.person(vault, token)
    if who is None:
        raise StrongroomError("the sign-in did not hold")
    try:
        return decide_as(vault, publication_id, approve=approve, username=who.username,
                         role=who.role, actor=who.actor, version=version)
    finally:
        actions.logout(vault, who)


def _name(who: str | None) -> str:
    """The person a custody-log name stands for: "ivan (investigator, review app)", " IVAN "
    and "ivan@laptop" (the command line's default actor) are all ivan."""
    return (who or "").split(" (", 1)[0].strip().split("@", 1)[0].strip().casefold()


def same_name(who: str, *others: str | None) -> bool:
    """Whether `who` is one of `others` (custody-log names, `_name`)."""
    return _name(who) in {_name(o) for o in others if o}


def decide_as(vault: Vault, publication_id: int, *, approve: bool, username: str, role: str,
              actor: str, version: int | None = None) -> dict[str, Any]:
    """A second person — signed in, with an approver's role, neither the one who asked nor
    the one who made the spec version at hand — approves (or refuses) the current draft, the
    one `version` names if given (a revision made while they looked is not what they saw).
    One `annotated` event, naming the draft's SHA-256 and the spec version decided on."""
    if role not in APPROVER_ROLES:
        raise StrongroomError(f"{username} is a {role}: only an investigator or an admin may "
                              "approve or refuse a publication")
    with vault.write() as s:
        row = _row(s, publication_id)
        if row.status != "drafted":
            raise StrongroomError(f"publication {publication_id} is {row.status}, not a draft "
                                  "waiting for a decision")
        if version is not None and version != row.spec_version:
            raise StrongroomError(f"publication {publication_id} is at spec version "
                                  f"{row.spec_version} now, not the version {version} you "
                                  "looked at: look at the current draft first")
        made_by = _spec_row(s, publication_id, row.spec_version).made_by
        if same_name(username, row.requested_by, made_by):
            raise StrongroomError("someone else must approve or refuse a publication you "
                                  "asked for or whose redaction you made")
        row.status = "approved" if approve else "refused"
        row.decided_by, row.decided_at = actor, _now()
        vault.annotate(s, "publication", row.id, row.status, actor=actor,
                       details={"spec_version": row.spec_version, "draft": row.draft_sha256})
        return {"publication": publication_id, "status": row.status, "by": actor,
                "spec_version": row.spec_version, "draft": row.draft_sha256}


def publish(vault: Vault, publication_id: int, output: Path, *, signing: Signing,
            organisation: str, no_faces_ok: bool = False, actor: str | None = None
            ) -> dict[str, Any]:
    """Write the approved draft to `output`, signed (C2PA) with its provenance.

    The draft is decrypted into a private work dir (as a pipeline worker decrypts), signed
    there, and copied beside `output` under a temporary name; then one transaction checks
    that the publication is still approved, at the same version and draft (a second `publish
    out`, or a revision, may have come first), marks it published and records `published` on
    the original with the output's SHA-256; only after it commits is the file renamed into
    place. A failure before that commit leaves nothing: no file, no event."""
    import os
    import shutil

    from strongroom.custody import events
    from strongroom.fsio import check_new_output, new_private_file
    from strongroom.pipeline.worker import cleanup_workdirs, private_workdir
    from strongroom.publish import provenance

    check_new_output(output)
    _outside_the_vault(vault, output)
    provenance.ready(signing, organisation=organisation)
    actor = actor or vault.actor
    with vault.catalogue.read() as s:
        row = _row(s, publication_id)
        if row.status != "approved":
            raise StrongroomError(f"publication {publication_id} is {row.status}: only an "
                                  "approved draft is published (`strongroom publish approve`)")
        spec: dict[str, Any] = dict(_spec_row(s, publication_id, row.spec_version).spec)
        draft_row = s.scalar(select(Derivative).where(
            Derivative.original_sha256 == row.original_sha256, Derivative.kind == KIND,
            Derivative.sha256 == row.draft_sha256).limit(1))
        if draft_row is None:
            raise StrongroomError(f"publication {publication_id}'s approved draft is missing")
        meta: dict[str, Any] = dict(draft_row.meta or {})
        faces = int(meta.get("faces_found") or 0)
        approved_by, version, sha256 = row.decided_by, row.spec_version, row.original_sha256
        draft_sha, blob = draft_row.sha256, draft_row.blob_name
    if not spec["tracks"] and not faces and not no_faces_ok:
        raise StrongroomError("no face was found or marked in this clip: if that is right, "
                              "publish it with --no-faces-ok")
    cleanup_workdirs(vault.settings.work_dir)  # what a killed earlier run left
    with private_workdir(vault.settings.work_dir) as workdir:
        plain, signed = workdir / "draft.mp4", workdir / "signed.mp4"
        vault.worker_keys().decrypt_original(blob, draft_sha, plain)
        with _scrubbed(workdir):
            made = provenance.sign(
                plain, signed, signing=signing, original_sha256=sha256,
                spec_sha256=specs.digest(spec), spec_version=version,
                publication=publication_id, organisation=organisation,
                description=_description(spec), title=f"publication {publication_id}")
        # beside `output` under a temporary name, made first (a name that cannot be made fails
        # before anything is recorded); given its name only after the record commits
        with new_private_file(output) as f, open(signed, "rb") as r:
            shutil.copyfileobj(r, f, 1 << 20)
            f.flush()
            os.fsync(f.fileno())
            with vault.write() as s:
                row = _row(s, publication_id)
                if (row.status, row.spec_version, row.draft_sha256) != (
                        "approved", version, draft_sha):
                    raise StrongroomError(
                        f"publication {publication_id} changed while it was being signed (it "
                        f"is {row.status}, spec version {row.spec_version}): nothing was "
                        "published")
                events.published(vault, s, sha256, actor=actor, details={
                    "publication": publication_id, "spec_version": version,
                    "spec_sha256": specs.digest(spec), "draft": draft_sha,
                    "approved_by": approved_by, "to": str(output),
                    "output_sha256": made["sha256"], "output_size": made["size"],
                    "manifest": made.get("manifest_label")})
                row.status, row.published_sha256 = "published", made["sha256"]
                row.published_at = _now()
                vault.annotate(s, "publication", row.id, "published", actor=actor,
                               details={"output_sha256": made["sha256"]})
    return {"publication": publication_id, "output": str(output), "sha256": made["sha256"],
            "original": sha256, "spec_version": version, "approved_by": approved_by}


def _scrubbed(workdir: Path) -> Any:
    """Errors raised inside name no plaintext path: the private work dir and the decrypted
    file in it become "{work dir}" and "{original}" (an error text is shown and logged)."""
    import contextlib

    from strongroom.errors import MediaError

    @contextlib.contextmanager
    def scrubbing() -> Any:
        try:
            yield
        except StrongroomError as exc:
            text = str(exc)
            for path, name in ((workdir / "original", "{original}"),
                               (workdir / "draft.mp4", "{draft}"), (workdir, "{work dir}")):
                text = text.replace(str(path), name)
            if text == str(exc):
                raise
            raise (MediaError(text) if isinstance(exc, MediaError)
                   else StrongroomError(text)) from None
    return scrubbing()


def _outside_the_vault(vault: Vault, output: Path) -> None:
    """A published file is for the public: never inside the vault's folders (`export`'s own
    test of "inside": resolved paths, and the device and inode of every ancestor)."""
    from strongroom.export.bag import _inside

    for folder in vault.settings.vault_folders():
        if _inside(output.absolute(), Path(folder)):
            raise StrongroomError(f"{output} is inside the vault folder {folder}: write the "
                                  "published file elsewhere")


def _description(spec: dict[str, Any]) -> str:
    how = "blurred" if spec["hide"] == "blur" else "covered"
    voice = "; voices masked" if spec.get("mask_voice") else ""
    return f"every face {how} on every frame ({len(spec['tracks'])} tracked){voice}"


def show(vault: Vault, publication_id: int, output: Path) -> dict[str, Any]:
    """The current draft into the new file `output`, through the vault's door (`viewed`)."""
    from strongroom.fsio import new_private_file

    row = draft_of(vault, publication_id)
    _outside_the_vault(vault, output)
    with vault.catalogue.read() as s:
        version = _row(s, publication_id).spec_version
    with new_private_file(output) as f, vault.open_derivative(
            row, purpose="viewed", to=str(output),
            details={"what": "publication draft", "publication": publication_id,
                     "spec_version": version}) as opened:
        opened.copy_to(f.write)
    return {"publication": publication_id, "spec_version": version, "draft": row.sha256,
            "output": str(output)}


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
