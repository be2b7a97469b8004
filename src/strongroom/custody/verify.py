"""`strongroom verify`: prove nothing changed — or say exactly what did.

Checks, in order: every custody event's hash, link and signature (edits, deletions, reordering,
forged appends); checkpoints from the catalogue *and* the off-database file (truncation); that
every original's catalogue row agrees with the event that recorded its ingest; and fixity —
each blob decrypts and its plaintext still has the recorded SHA-256, MD5 and size.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import CustodyCheckpoint, CustodyEvent, Derivative, Original
from strongroom.custody.chain import (
    GENESIS,
    canonical_json,
    checkpoint_signing_input,
    event_hash,
    event_signing_input,
)
from strongroom.custody.log import read_checkpoint_file
from strongroom.errors import StrongroomError
from strongroom.vault import Vault
from strongroom.vault.keys import PublicKeys


@dataclass
class Problem:
    check: str  # custody | checkpoint | catalogue | fixity
    subject: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "message": self.message}


@dataclass
class VerifyReport:
    events: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    last_checkpoint: int = 0
    originals: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "head_hash": self.head_hash,
            "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
            "originals": self.originals, "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "problems": [p.to_json() for p in self.problems], "warnings": self.warnings,
        }


def verify_chain(vault: Vault, report: VerifyReport) -> dict[str, dict[str, Any]]:
    """Walk the whole chain. Returns the `ingested` details per SHA-256 for the catalogue check."""
    public = vault.public
    ingested: dict[str, dict[str, Any]] = {}
    expected_seq, prev = 1, GENESIS
    with vault.catalogue.read() as s:
        rows = s.execute(select(CustodyEvent).order_by(CustodyEvent.seq)).scalars()
        for ev in rows.yield_per(2000):
            where = f"event {ev.seq}"
            if ev.seq != expected_seq:
                report.problems.append(Problem("custody", where, (
                    f"sequence gap: expected event {expected_seq}, found {ev.seq} "
                    "(events deleted or renumbered)")))
            try:
                details = json.loads(ev.details)
            except json.JSONDecodeError:
                report.problems.append(Problem("custody", where, "details are not valid JSON"))
                details = None
            if details is not None and canonical_json(details) != ev.details:
                report.problems.append(Problem("custody", where, "details were re-written"))
            recomputed = event_hash(
                seq=ev.seq, time=ev.time, actor=ev.actor, action=ev.action, subject=ev.subject,
                details=details, prev_hash=ev.prev_hash,
            )
            if recomputed != ev.hash:
                report.problems.append(Problem("custody", where, (
                    "content does not match its hash (the event was edited)")))
            if ev.prev_hash != prev:
                report.problems.append(Problem("custody", where, (
                    "does not link to the previous event (events removed, inserted or "
                    "reordered)")))
            if not _sig_ok(public, ev.signature, event_signing_input(ev.hash)):
                report.problems.append(Problem("custody", where, (
                    "signature is not the vault's (forged or appended by hand)")))
            if ev.action == "ingested" and isinstance(details, dict):
                ingested[str(details.get("sha256"))] = details
            prev, expected_seq = ev.hash, ev.seq + 1
            report.events += 1
        report.head_hash = prev
        last_seq = expected_seq - 1
        hashes_at = {}
        db_cps = {cp.seq: cp for cp in s.scalars(select(CustodyCheckpoint))}
        file_cps = read_checkpoint_file(vault.checkpoint_file)
        wanted = set(db_cps) | {int(c["seq"]) for c in file_cps if "seq" in c}
        if wanted:
            hashes_at = dict(s.execute(select(CustodyEvent.seq, CustodyEvent.hash).where(
                CustodyEvent.seq.in_(wanted))).all())
    _check_checkpoints(public, db_cps, file_cps, hashes_at, last_seq, report)
    return ingested


def _check_checkpoints(
    public: PublicKeys,
    db_cps: dict[int, CustodyCheckpoint],
    file_cps: list[dict[str, Any]],
    hashes_at: dict[int, str],
    last_seq: int,
    report: VerifyReport,
) -> None:
    seen: dict[int, dict[str, Any]] = {}
    for c in file_cps:
        if "_bad_line" in c:
            report.problems.append(Problem("checkpoint", f"file line {c['_bad_line']}",
                                           "checkpoint file line is not valid JSON"))
            continue
        seen[int(c["seq"])] = c
    for seq, cp in db_cps.items():
        if seq not in seen:
            report.warnings.append(f"checkpoint {seq} is in the catalogue but not in the file")
            seen[seq] = {"seq": seq, "head_hash": cp.head_hash, "time": cp.time,
                         "signature": cp.signature}
        elif seen[seq]["head_hash"] != cp.head_hash or seen[seq]["signature"] != cp.signature:
            report.problems.append(Problem("checkpoint", f"checkpoint {seq}",
                                           "catalogue and checkpoint file disagree"))
    for seq in sorted(set(seen) - set(db_cps)):
        report.problems.append(Problem("checkpoint", f"checkpoint {seq}", (
            "recorded in the checkpoint file but removed from the catalogue")))
    for seq, c in sorted(seen.items()):
        where = f"checkpoint {seq}"
        if not _sig_ok(public, str(c.get("signature", "")),
                       checkpoint_signing_input(seq, str(c.get("head_hash")), str(c.get("time")))):
            report.problems.append(Problem("checkpoint", where, "signature is not the vault's"))
            continue
        if seq > last_seq:
            report.problems.append(Problem("checkpoint", where, (
                f"the log ends at event {last_seq} but was signed at event {seq}: "
                "events were removed from the end (truncated)")))
        elif hashes_at.get(seq) != c.get("head_hash"):
            report.problems.append(Problem("checkpoint", where, (
                "the event at this position is not the one that was signed")))
    report.checkpoints = len(seen)
    report.last_checkpoint = max(seen, default=0)
    if last_seq > report.last_checkpoint:
        report.warnings.append(
            f"events {report.last_checkpoint + 1}–{last_seq} are after the last checkpoint")


def _sig_ok(public: PublicKeys, sig_b64: str, data: bytes) -> bool:
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        return False
    return public.verify(sig, data)


def verify_catalogue(
    vault: Vault, ingested: dict[str, dict[str, Any]], report: VerifyReport
) -> list[Original]:
    with vault.catalogue.read() as s:
        originals = list(s.scalars(select(Original).order_by(Original.sha256)))
    report.originals = len(originals)
    for o in originals:
        ev = ingested.get(o.sha256)
        subject = f"original {o.sha256}"
        if ev is None:
            report.problems.append(Problem("catalogue", subject,
                                           "no custody event records its ingest"))
            continue
        for key, value in (("md5", o.md5), ("sha512", o.sha512), ("size", o.size),
                           ("blob", o.blob_name), ("blob_size", o.blob_size)):
            if ev.get(key) != value:
                report.problems.append(Problem("catalogue", subject, (
                    f"catalogue {key} {value!r} differs from the custody record "
                    f"{ev.get(key)!r}")))
    return originals


def verify_fixity(
    vault: Vault,
    originals: list[Original],
    report: VerifyReport,
    advance: Callable[[int], None] | None = None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def check(o: Original) -> list[Problem]:
        subject = f"original {o.sha256}"
        try:
            actual_size = vault.blobs.size(o.blob_name)
        except StrongroomError as exc:
            return [Problem("fixity", subject, str(exc))]
        if actual_size != o.blob_size:
            return [Problem("fixity", subject, (
                f"ciphertext is {actual_size} bytes, {o.blob_size} were stored"))]
        try:
            d = vault.decrypt_blob(o.blob_name, None, sha512=o.sha512 is not None,
                                   what=subject)
        except StrongroomError as exc:
            return [Problem("fixity", subject, str(exc))]
        finally:
            if advance is not None:
                advance(o.size)
        found = []
        if d.sha256 != o.sha256 or d.md5 != o.md5 or d.size != o.size or (
            o.sha512 is not None and d.sha512 != o.sha512
        ):
            found.append(Problem("fixity", subject, (
                f"plaintext no longer matches: sha256 {d.sha256}, md5 {d.md5}, size {d.size}")))
        return found

    def check_derivative(d: Derivative) -> list[Problem]:
        subject = f"derivative {d.sha256} ({d.kind} of {d.original_sha256})"
        try:
            got = vault.decrypt_blob(d.blob_name, None, what=subject)
        except StrongroomError as exc:
            return [Problem("fixity", subject, str(exc))]
        if got.sha256 != d.sha256 or got.size != d.size:
            return [Problem("fixity", subject, f"plaintext no longer matches: sha256 "
                                               f"{got.sha256}, size {got.size}")]
        return []

    with vault.catalogue.read() as s:
        derivatives = list({d.blob_name: d for d in s.scalars(select(Derivative))}.values())
    with ThreadPoolExecutor(2) as pool:
        for problems in pool.map(check, originals):
            report.problems.extend(problems)
            report.blobs_checked += 1
        for problems in pool.map(check_derivative, derivatives):
            report.problems.extend(problems)
            report.blobs_checked += 1
    report.bytes_checked = sum(o.size for o in originals) + sum(d.size for d in derivatives)
    with vault.catalogue.read() as s:
        known = set(s.scalars(select(Original.blob_name))) | set(
            s.scalars(select(Derivative.blob_name)))
    orphans = [n for n in vault.blobs.names() if n not in known]
    if orphans:
        report.warnings.append(
            f"{len(orphans)} blob(s) not in the catalogue (left by an interrupted ingest; the "
            "next ingest of the same source adopts them)")
    staging = vault.blobs.staging_files()
    if staging:
        report.warnings.append(f"{len(staging)} staging file(s) in the blob store's .tmp")


def verify(
    vault: Vault, *, fixity: bool = True, advance: Callable[[int], None] | None = None
) -> VerifyReport:
    report = VerifyReport()
    ingested = verify_chain(vault, report)
    originals = verify_catalogue(vault, ingested, report)
    if fixity:
        verify_fixity(vault, originals, report, advance)
    return report
