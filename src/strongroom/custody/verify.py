"""`strongroom verify`: prove nothing changed — or say exactly what did.

Checks, in order, all in one read snapshot of the catalogue (so a command writing meanwhile is
either wholly seen or not at all, and never reported as tampering):
1. every custody event's hash, link and signature (edits, deletions, reordering, forged
   appends);
2. checkpoints from the catalogue, the vault's checkpoint file and, if given, an off-site copy
   of that file (truncation, rollback, a deleted or shortened file);
3. the catalogue against what the log says must exist, both ways: every acquisition, original,
   sighting, derivative and step outcome the log records is in the catalogue with the recorded
   values, and every catalogue row of those tables has its event (deleted evidence, edited
   evidence, rows inserted by hand) — DESIGN.md lists which fields are covered;
4. fixity: each blob decrypts and its plaintext still has the recorded SHA-256, MD5 and size.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.evidence import (
    STEP_TABLES,
    annotated_kinds,
    chunks_digest,
    record_digest,
    rows_digest,
)
from strongroom.catalogue.models import (
    Acquisition,
    CustodyCheckpoint,
    CustodyEvent,
    Derivative,
    DerivativeChunk,
    Original,
    Sighting,
    StepRun,
)
from strongroom.custody.chain import (
    GENESIS,
    canonical_json,
    checkpoint_signing_input,
    event_hash,
    event_signing_input,
    result_digest,
)
from strongroom.custody.log import CheckpointFile, read_checkpoint_file
from strongroom.errors import StrongroomError
from strongroom.vault import Vault
from strongroom.vault.door import Decrypt
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
    offsite_checkpoints: int | None = None
    originals: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: a scheduled run's cycle and archive size (`verify --schedule`); None for a full run
    scheduled: dict[str, int] | None = None
    #: names of the blobs whose fixity check failed (scheduled runs check them every day)
    failed_blobs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, check: str, subject: str, message: str) -> None:
        self.problems.append(Problem(check, subject, message))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "head_hash": self.head_hash,
            "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
            "offsite_checkpoints": self.offsite_checkpoints,
            "originals": self.originals, "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "problems": [p.to_json() for p in self.problems], "warnings": self.warnings,
            **({"scheduled": self.scheduled} if self.scheduled is not None else {}),
        }

    def to_text(self) -> str:
        """What `strongroom verify` prints: the verdict and counts, then each problem and
        warning on a line of its own."""
        lines = [
            f"{'OK' if self.ok else 'PROBLEMS FOUND'}: {self.events} custody events "
            f"(head {self.head_hash[:16]}…, last checkpoint {self.last_checkpoint}), "
            f"{self.originals} originals, {self.blobs_checked} blobs re-hashed "
            f"({self.bytes_checked / 1e6:.1f} MB)"
            + (f" of {self.scheduled['blobs_total']} (a 1/{self.scheduled['cycle_days']} "
               "daily share)" if self.scheduled is not None else "")
        ]
        lines += [f"  problem: [{p.check}] {p.subject}: {p.message}" for p in self.problems]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class Ev:
    """What verification keeps of one event: where it is and what it says."""

    seq: int
    time: str
    actor: str
    subject: str
    details: dict[str, Any]


@dataclass
class LogView:
    """What the custody log says must exist in the catalogue."""

    acquired: dict[int, Ev] = field(default_factory=dict)
    ingested: dict[str, Ev] = field(default_factory=dict)
    sighted: dict[tuple[int, str], Ev] = field(default_factory=dict)
    derived: list[Ev] = field(default_factory=list)
    analysed: dict[tuple[str, str], Ev] = field(default_factory=dict)  # the latest per step
    mapped: dict[int, Ev] = field(default_factory=dict)  # camera id → its latest mapping
    facility: dict[int, Ev] = field(default_factory=dict)  # facility id → its latest mention
    records: dict[tuple[str, int], Ev] = field(default_factory=dict)  # case/incident → latest
    #: annotations whose version the catalogue keeps (`revision`): each must be there
    kept: list[Ev] = field(default_factory=list)
    last_seq: int = 0


def verify(
    vault: Vault, *, fixity: bool = True, advance: Callable[[int], None] | None = None,
    checkpoints_copy: Path | None = None, only: frozenset[str] | None = None,
) -> VerifyReport:
    """What `Vault.verify` runs and then records. Fixity re-hashes through the vault's
    private blob reader: nothing decrypted here leaves this function. With `only` (blob
    names), fixity re-hashes just those; the others are checked for presence and size."""
    report = VerifyReport()
    offsite = None
    if checkpoints_copy is not None:
        offsite = read_checkpoint_file(checkpoints_copy)
        if not offsite.exists:
            raise StrongroomError(f"no checkpoint file at {checkpoints_copy}")
    # Read before the snapshot begins: every checkpoint in it was committed before, so the
    # snapshot must hold it. (Checkpoints are published to the file after they commit.)
    file_before = read_checkpoint_file(vault.checkpoint_file)
    with vault.catalogue.snapshot() as s:
        log = verify_chain(s, vault.public, report)
        file_after = read_checkpoint_file(vault.checkpoint_file)
        db_cps = {cp.seq: cp for cp in s.scalars(select(CustodyCheckpoint))}
        file_after = _await_publication(vault, db_cps, file_after)
        wanted = set(db_cps) | {c["seq"] for f in (file_before, file_after, offsite)
                                if f is not None for c in f.checkpoints}
        hashes_at = _hashes_at(s, {q for q in wanted if q <= log.last_seq})
        _check_checkpoints(vault, db_cps, file_before, file_after, hashes_at, log.last_seq,
                           report)
        if offsite is not None:
            _check_offsite(vault.public, offsite, db_cps, file_after, hashes_at, log.last_seq,
                           report)
        originals = verify_catalogue(s, log, report)
        try:
            chunks = chunks_by_derivative(s)
            # one check per stored content: a chunked row is its chunks, a plain one its blob
            derivatives = list({(d.blob_name, d.id in chunks): d
                                for d in s.scalars(select(Derivative))}.values())
        except (ValueError, TypeError):
            chunks, derivatives = {}, []  # reported by verify_catalogue
    # A row whose event recorded chunks that the catalogue lost is a catalogue problem
    # (reported); its first chunk is not the whole plaintext, so no fixity check of it.
    lost = {(ev.subject.removeprefix("original:"), str(ev.details.get("derivative")),
             str(ev.details.get("blob"))) for ev in log.derived if "chunks" in ev.details}
    derivatives = [d for d in derivatives if d.id in chunks
                   or (d.original_sha256, d.sha256, d.blob_name) not in lost]
    if fixity and only is not None:
        verify_presence(vault, [o for o in originals if o.blob_name not in only],
                        [d for d in derivatives if d.blob_name not in only], report, chunks)
        originals = [o for o in originals if o.blob_name in only]
        derivatives = [d for d in derivatives if d.blob_name in only]
    if fixity:
        verify_fixity(vault, vault._decrypt_blob, originals, derivatives, report, advance,
                      chunks)
    else:
        verify_presence(vault, originals, derivatives, report, chunks)
    return report


def chunks_by_derivative(s: Session) -> dict[int, list[DerivativeChunk]]:
    """Every chunked derivative's chunk rows, by derivative id, in order."""
    out: dict[int, list[DerivativeChunk]] = {}
    for c in s.scalars(select(DerivativeChunk).order_by(DerivativeChunk.derivative_id,
                                                        DerivativeChunk.idx)):
        out.setdefault(c.derivative_id, []).append(c)
    return out


def verify_presence(vault: Vault, originals: list[Original], derivatives: list[Derivative],
                    report: VerifyReport,
                    chunks: dict[int, list[DerivativeChunk]] | None = None) -> None:
    """Without re-hashing (`--quick`): every blob is still there, at its recorded size."""
    for o in originals:
        try:
            size = vault.blob_size(o.blob_name)
        except StrongroomError as exc:
            report.problem("fixity", f"original {o.sha256}", str(exc))
            continue
        if size != o.blob_size:
            report.problem("fixity", f"original {o.sha256}", (
                f"ciphertext is {size} bytes, {o.blob_size} were stored"))
    for d in derivatives:
        for name in [c.blob_name for c in (chunks or {}).get(d.id, [])] or [d.blob_name]:
            try:
                vault.blob_size(name)
            except StrongroomError as exc:
                report.problem("fixity", f"derivative {d.sha256} ({d.kind} of "
                               f"{d.original_sha256})", str(exc))
                break


# -- the chain ----------------------------------------------------------------------------------
_KEPT = frozenset({"acquired", "ingested", "sighted", "derived", "analysed", "annotated"})


def verify_chain(s: Session, public: PublicKeys, report: VerifyReport) -> LogView:
    """Walk the whole chain, checking every link; collect what it says must exist."""
    log = LogView()
    expected_seq, prev = 1, GENESIS
    rows = s.execute(select(CustodyEvent).order_by(CustodyEvent.seq)).scalars()
    for ev in rows.yield_per(2000):
        try:
            _check_event(ev, expected_seq, prev, public, report, log)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            report.problem("custody", f"event {ev.seq!r}"[:60], (
                f"malformed ({type(exc).__name__}): edited by hand"))
        prev, expected_seq = str(ev.hash), (ev.seq + 1 if type(ev.seq) is int else -1)
        report.events += 1
    report.head_hash = prev
    log.last_seq = expected_seq - 1
    return log


def _check_event(ev: CustodyEvent, expected_seq: int, prev: str, public: PublicKeys,
                 report: VerifyReport, log: LogView) -> None:
    where = f"event {ev.seq}"
    if ev.seq != expected_seq:
        report.problem("custody", where, (
            f"sequence gap: expected event {expected_seq}, found {ev.seq} "
            "(events deleted or renumbered)"))
    try:
        details = json.loads(ev.details)
    except (json.JSONDecodeError, RecursionError):
        report.problem("custody", where, "details are not valid JSON")
        details = None
    if details is not None and canonical_json(details) != ev.details:
        report.problem("custody", where, "details were re-written")
    recomputed = event_hash(
        seq=ev.seq, time=ev.time, actor=ev.actor, action=ev.action, subject=ev.subject,
        details=details, prev_hash=ev.prev_hash,
    )
    if recomputed != ev.hash:
        report.problem("custody", where, "content does not match its hash (the event was "
                                         "edited)")
    if ev.prev_hash != prev:
        report.problem("custody", where, (
            "does not link to the previous event (events removed, inserted or reordered)"))
    if not _sig_ok(public, ev.signature, event_signing_input(ev.hash)):
        report.problem("custody", where, (
            "signature is not the vault's (forged or appended by hand)"))
    if ev.action in _KEPT and isinstance(details, dict):
        _keep(log, Ev(ev.seq, ev.time, ev.actor, ev.subject, details), ev.action)


def _keep(log: LogView, ev: Ev, action: str) -> None:
    d = ev.details
    if action == "acquired":
        log.acquired[_int(d.get("acquisition"))] = ev
    elif action == "ingested":
        log.ingested[str(d.get("sha256"))] = ev
    elif action == "sighted":
        log.sighted[(_int(d.get("acquisition")), str(d.get("path")))] = ev
    elif action == "derived":
        log.derived.append(ev)
    elif action == "analysed":
        log.analysed[(ev.subject.removeprefix("original:"), str(d.get("step")))] = ev
    elif action == "annotated" and ev.subject.partition(":")[0] in annotated_kinds():
        kind = ev.subject.partition(":")[0]
        log.records[(kind, _int(d.get(kind)))] = ev
        if d.get("version_kept"):
            log.kept.append(ev)
        if kind == "facility":
            # its name, type and region, the latest word on them (as a mapping's event was)
            log.facility[_int(d.get(kind))] = ev
    elif action == "annotated" and ev.subject.startswith("camera:"):
        log.mapped[_int(d.get("camera_id", _camera_id(ev.subject)))] = ev
        if d.get("change", "mapped") == "mapped":
            log.facility[_int(d.get("facility_id"))] = ev


def _camera_id(subject: str) -> int:
    try:
        return int(subject.removeprefix("camera:"))
    except ValueError:
        return -1


def _int(value: Any) -> int:
    return value if type(value) is int else -1


def _hashes_at(s: Session, seqs: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    ordered = sorted(q for q in seqs if 0 < q < 2**63)
    for i in range(0, len(ordered), 500):
        for seq, digest in s.execute(select(CustodyEvent.seq, CustodyEvent.hash).where(
                CustodyEvent.seq.in_(ordered[i:i + 500]))):
            out[seq] = digest
    return out


# -- checkpoints --------------------------------------------------------------------------------
#: How long a checkpoint committed by a command running now may take to reach the file.
PUBLICATION_GRACE = 2.0


def _await_publication(vault: Vault, db_cps: dict[int, CustodyCheckpoint],
                       file: CheckpointFile) -> CheckpointFile:
    """A command running now publishes its checkpoint to the file just *after* committing it:
    checkpoints missing only at the file's tail get a moment to arrive before they count as
    missing (a shortened file is still reported, after that moment)."""
    import time

    deadline = time.monotonic() + PUBLICATION_GRACE
    while True:
        have = {c["seq"] for c in file.checkpoints}
        pending = [q for q in db_cps if q not in have]
        if (not pending or not file.exists or min(pending) <= max(have, default=0)
                or time.monotonic() > deadline):
            return file
        time.sleep(0.05)
        file = read_checkpoint_file(vault.checkpoint_file)


def _check_checkpoints(
    vault: Vault,
    db_cps: dict[int, CustodyCheckpoint],
    file_before: CheckpointFile,
    file_after: CheckpointFile,
    hashes_at: dict[int, str],
    last_seq: int,
    report: VerifyReport,
) -> None:
    name = vault.checkpoint_file.name
    for n, why in file_after.bad_lines:
        report.problem("checkpoint", f"{name} line {n}", f"not a checkpoint: {why}")
    before = {c["seq"]: c for c in file_before.checkpoints}
    after: dict[int, dict[str, Any]] = {}
    for c in file_after.checkpoints:
        if c["seq"] in after:
            # One chain has one head at each position: two signed heads are a rewritten log;
            # the same line twice was not written by Strongroom either.
            report.problem("checkpoint", f"checkpoint {c['seq']}", (
                f"{name} holds two different checkpoints for this position (the log was "
                "rewritten, or the file was spliced from another vault)"
                if after[c["seq"]] != c else f"{name} holds this checkpoint twice"))
        after.setdefault(c["seq"], c)
    # Checkpoints published after the snapshot began are neither in `before` nor in the
    # catalogue as this snapshot sees it: a concurrent command's, not this verification's.
    in_file = {q: c for q, c in after.items() if q in before or q in db_cps}
    for q in sorted(set(before) - set(after)):
        report.problem("checkpoint", f"checkpoint {q}", f"vanished from {name} while it was "
                                                        "being verified")
    missing = sorted(set(db_cps) - set(after))
    if missing:
        if not file_after.exists:
            state = "is missing (deleted?)"
        elif file_after.empty:
            state = "is empty"
        else:
            state = "lacks them (shortened or replaced?)"
        report.problem("checkpoint", name, (
            f"{len(missing)} signed checkpoint(s) in the catalogue (seq {_ranges(missing)}) are "
            f"not in the checkpoint file, which {state}: compare with your off-site copy "
            "(`verify --checkpoints COPY`)"))
    seen: dict[int, dict[str, Any]] = dict(in_file)
    for q, cp in db_cps.items():
        row = {"seq": q, "head_hash": cp.head_hash, "time": cp.time, "signature": cp.signature}
        if q not in in_file:
            seen[q] = row
        elif in_file[q] != row:
            report.problem("checkpoint", f"checkpoint {q}", "catalogue and checkpoint file "
                                                            "disagree")
    for q in sorted(set(in_file) - set(db_cps)):
        report.problem("checkpoint", f"checkpoint {q}", (
            "recorded in the checkpoint file but removed from the catalogue"))
    for _, c in sorted(seen.items()):
        _check_one_checkpoint(vault.public, c, hashes_at, last_seq, report, "")
    report.checkpoints = len(seen)
    report.last_checkpoint = max(seen, default=0)
    if last_seq > report.last_checkpoint:
        report.warnings.append(
            f"events {report.last_checkpoint + 1}–{last_seq} are after the last checkpoint")


def _check_one_checkpoint(public: PublicKeys, c: dict[str, Any], hashes_at: dict[int, str],
                          last_seq: int, report: VerifyReport, origin: str) -> bool:
    q = c["seq"]
    where = f"checkpoint {q}{origin}"
    if not _sig_ok(public, str(c["signature"]),
                   checkpoint_signing_input(q, str(c["head_hash"]), str(c["time"]))):
        report.problem("checkpoint", where, "signature is not the vault's")
        return False
    if q > last_seq:
        report.problem("checkpoint", where, (
            f"the log ends at event {last_seq} but was signed at event {q}: events were "
            "removed from the end (truncated)"))
        return False
    if hashes_at.get(q) != c["head_hash"]:
        report.problem("checkpoint", where, "the event at this position is not the one that "
                                            "was signed")
        return False
    return True


def _check_offsite(
    public: PublicKeys,
    offsite: CheckpointFile,
    db_cps: dict[int, CustodyCheckpoint],
    vault_file: CheckpointFile,
    hashes_at: dict[int, str],
    last_seq: int,
    report: VerifyReport,
) -> None:
    """An off-site copy of the checkpoint file is older than the vault, never newer: each of
    its checkpoints must be in the vault, unchanged, and the log must still reach it."""
    label = f" (off-site copy {offsite.path.name})"
    for n, why in offsite.bad_lines:
        report.problem("checkpoint", f"{offsite.path.name} line {n}", f"not a checkpoint: {why}")
    in_file = {c["seq"]: c for c in vault_file.checkpoints}
    for c in offsite.checkpoints:
        q = c["seq"]
        if not _check_one_checkpoint(public, c, hashes_at, last_seq, report, label):
            continue
        cp = db_cps.get(q)
        if cp is None or (cp.head_hash, cp.signature, cp.time) != (
                c["head_hash"], c["signature"], c["time"]):
            report.problem("checkpoint", f"checkpoint {q}{label}",
                           "missing from or different in the catalogue")
        if in_file.get(q) != c:
            report.problem("checkpoint", f"checkpoint {q}{label}",
                           "missing from or different in the vault's checkpoint file")
    report.offsite_checkpoints = len(offsite.checkpoints)
    if not offsite.checkpoints:
        report.warnings.append(f"the off-site copy {offsite.path.name} holds no checkpoint: "
                               "nothing to compare with")


def _ranges(seqs: list[int]) -> str:
    if len(seqs) <= 6:
        return ", ".join(map(str, seqs))
    return f"{', '.join(map(str, seqs[:3]))}, …, {seqs[-1]}"


def _sig_ok(public: PublicKeys, sig_b64: str, data: bytes) -> bool:
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        return False
    return public.verify(sig, data)


# -- the catalogue against the log --------------------------------------------------------------
def verify_catalogue(s: Session, log: LogView, report: VerifyReport) -> list[Original]:
    """Both ways: what the log records is in the catalogue as recorded, and every evidence row
    of the catalogue has the event that recorded it."""
    originals: list[Original] = []
    for check in (_check_acquisitions, _check_originals, _check_sightings, _check_derivatives,
                  _check_step_runs, _check_camera_mappings, _check_cases, _check_revisions):
        try:
            found = check(s, log, report)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # A cell the database gives back in no form its column allows: typed in by hand.
            what = check.__name__.removeprefix("_check_").replace("_", " ")
            report.problem("catalogue", what, (
                f"holds a value no Strongroom command writes ({type(exc).__name__}: "
                f"{str(exc)[:120]}): edited by hand"))
            continue
        if check is _check_originals:
            originals = found or []
    report.originals = len(originals)
    return originals


def _differs(report: VerifyReport, subject: str, ev: Ev,
             pairs: Iterable[tuple[str, Any, Any]]) -> None:
    for name, have, recorded in pairs:
        if have != recorded:
            report.problem("catalogue", subject, (
                f"catalogue {name} {have!r} differs from the custody record (event {ev.seq}): "
                f"{recorded!r}"))


def _time_differs(report: VerifyReport, subject: str, name: str, value: datetime | None,
                  ev: Ev) -> None:
    """A row's own timestamp must be the time of the event that recorded it."""
    if not _same_instant(value, ev.time):
        report.problem("catalogue", subject, (
            f"catalogue {name} {value} differs from the time of custody event {ev.seq}: "
            f"{ev.time}"))


def _same_instant(value: datetime | None, iso: str) -> bool:
    """A catalogue timestamp equals an event's time (SQLite returns naive UTC datetimes)."""
    if value is None:
        return False
    try:
        recorded = datetime.fromisoformat(iso)
    except ValueError:
        return False
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value == recorded


def _normal_time(value: datetime | str | None) -> str:
    """A timestamp as UTC ISO text, whether an event's string or a catalogue datetime."""
    if value is None:
        return ""
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _check_acquisitions(s: Session, log: LogView, report: VerifyReport) -> None:
    from strongroom.custody.log import acquisition_commitment

    rows = {a.id: a for a in s.scalars(select(Acquisition))}
    for acq_id, recorded in sorted(log.acquired.items()):
        if acq_id not in rows:
            report.problem("catalogue", f"acquisition {acq_id}", (
                f"recorded by custody event {recorded.seq} but missing from the catalogue "
                "(deleted)"))
    for acq_id, a in sorted(rows.items()):
        subject = f"acquisition {acq_id}"
        ev = log.acquired.get(acq_id)
        if ev is None:
            report.problem("catalogue", subject, "no custody event records it (added by hand)")
            continue
        if acquisition_commitment(a) != ev.details.get("commitment"):
            report.problem("catalogue", subject, (
                f"its description, source path, receiver or date no longer match the "
                f"commitment of custody event {ev.seq} (edited)"))
        _differs(report, subject, ev, [("medium", a.medium, ev.details.get("medium")),
                                       ("actor", a.actor, ev.actor)])
        _time_differs(report, subject, "created_at", a.created_at, ev)


def _check_originals(s: Session, log: LogView, report: VerifyReport) -> list[Original]:
    originals = list(s.scalars(select(Original).order_by(Original.sha256)))
    present = {o.sha256 for o in originals}
    for sha, recorded in sorted(log.ingested.items()):
        if sha not in present:
            report.problem("catalogue", f"original {sha}", (
                f"custody event {recorded.seq} records its ingest, but the catalogue has no such "
                "original (deleted)"))
    for o in originals:
        subject = f"original {o.sha256}"
        ev = log.ingested.get(o.sha256)
        if ev is None:
            report.problem("catalogue", subject, "no custody event records its ingest")
            continue
        d = ev.details
        _differs(report, subject, ev, [
            ("md5", o.md5, d.get("md5")), ("sha512", o.sha512, d.get("sha512")),
            ("size", o.size, d.get("size")), ("blob", o.blob_name, d.get("blob")),
            ("blob_size", o.blob_size, d.get("blob_size")),
            ("first_acquisition_id", o.first_acquisition_id, d.get("acquisition")),
            ("mime", o.mime, d.get("mime")),
        ])
        _time_differs(report, subject, "ingested_at", o.ingested_at, ev)
    return originals


_SIGHTING_FIELDS = ("original", "kind", "link_target", "size", "mtime_ns", "ctime_ns",
                    "atime_ns")


def _check_sightings(s: Session, log: LogView, report: VerifyReport) -> None:
    rows = {(r.acquisition_id, r.rel_path): r for r in s.scalars(select(Sighting))}
    for key, recorded in sorted(log.sighted.items()):
        if key not in rows:
            report.problem("catalogue", f"sighting {key[1]!r} (acquisition {key[0]})", (
                f"recorded by custody event {recorded.seq} but missing from the catalogue (deleted "
                "or its path edited)"))
    for key, r in sorted(rows.items()):
        subject = f"sighting {r.rel_path!r} (acquisition {r.acquisition_id})"
        ev = log.sighted.get(key)
        if ev is None:
            report.problem("catalogue", subject, "no custody event records it (its path was "
                                                 "edited, or it was added by hand)")
            continue
        have = {"original": r.original_sha256, "kind": r.kind, "link_target": r.link_target,
                "size": r.size, "mtime_ns": r.mtime_ns, "ctime_ns": r.ctime_ns,
                "atime_ns": r.atime_ns}
        pairs = [(f, have[f], ev.details.get(f)) for f in _SIGHTING_FIELDS]
        if "mode" in ev.details:
            pairs.append(("mode", r.mode, ev.details["mode"]))
        _differs(report, subject, ev, pairs)
        if "mode" in ev.details:
            _time_differs(report, subject, "seen_at", r.seen_at, ev)


def _derivative_key(*fields: Any) -> str:
    return canonical_json(list(fields))


def _check_derivatives(s: Session, log: LogView, report: VerifyReport) -> None:
    """Compared as multisets of whole rows. Events since issue 10 carry `mime`, and the row's
    `created_at` is their time; older events cover neither."""
    def recorded_key(ev: Ev) -> str:
        d = ev.details
        extra = [d["mime"], _normal_time(ev.time)] if "mime" in d else []
        if "chunks" in d:  # a chunked derivative: its chunk list, as recorded
            chunked = d["chunks"]
            extra.append(chunked.get("list_sha256") if isinstance(chunked, dict) else None)
        return _derivative_key(ev.subject.removeprefix("original:"), str(d.get("derivative")),
                               str(d.get("kind")), _int(d.get("size")), str(d.get("blob")),
                               str(d.get("step")), str(d.get("version")), d.get("command"),
                               d.get("meta"), *extra)

    recorded = Counter(recorded_key(ev) for ev in log.derived)
    new_style = {ev.details.get("derivative") for ev in log.derived if "mime" in ev.details}
    rows = list(s.scalars(select(Derivative)))
    chunks = chunks_by_derivative(s)
    have = Counter(_derivative_key(
        r.original_sha256, r.sha256, r.kind, r.size, r.blob_name, r.step, r.step_version,
        r.command, r.meta,
        *([r.mime, _normal_time(r.created_at)] if r.sha256 in new_style else []),
        *([chunks_digest(chunks[r.id])] if r.id in chunks else []))
        for r in rows)
    ids = {r.id for r in rows}
    for derivative_id in sorted(set(chunks) - ids):
        report.problem("catalogue", f"derivative chunks of derivative id {derivative_id}", (
            f"{len(chunks[derivative_id])} chunk row(s) of no derivative (its row was "
            "deleted, or they were added by hand)"))
    for key, n in sorted((recorded - have).items()):
        original, sha, kind = json.loads(key)[:3]
        report.problem("catalogue", f"derivative {sha} ({kind} of {original})", (
            f"{n} recorded by custody event(s) but missing from the catalogue or changed"))
    for key, n in sorted((have - recorded).items()):
        original, sha, kind = json.loads(key)[:3]
        report.problem("catalogue", f"derivative {sha} ({kind} of {original})", (
            f"{n} catalogue row(s) that no custody event records as made (added or edited)"))


def _check_step_runs(s: Session, log: LogView, report: VerifyReport) -> None:
    rows = {(r.original_sha256, r.step): r for r in s.scalars(select(StepRun))}
    for key, ev in sorted(log.analysed.items()):
        r = rows.get(key)
        subject = f"step {key[1]} of original {key[0]}"
        if r is None:
            report.problem("catalogue", subject, (
                f"custody event {ev.seq} records it, but the catalogue has no result (deleted)"))
            continue
        _differs(report, subject, ev, [
            ("version", r.version, ev.details.get("version")),
            ("status", r.status, ev.details.get("status")),
            ("error", r.error or None, ev.details.get("error")),
            ("command", r.command or None, ev.details.get("command"))])
        if "result_sha256" in ev.details:
            got = result_digest(r.result)
            if got != ev.details["result_sha256"]:
                report.problem("catalogue", subject, (
                    f"its result no longer matches custody event {ev.seq} (edited)"))
        if "rows_sha256" in ev.details and rows_digest(s, key[1], key[0]) != \
                ev.details["rows_sha256"]:
            report.problem("catalogue", subject, (
                f"its rows in the catalogue ({_table_of(key[1])}) no longer match custody "
                f"event {ev.seq} (edited, deleted or added by hand)"))
    for key in sorted(set(rows) - set(log.analysed)):
        report.problem("catalogue", f"step {key[1]} of original {key[0]}",
                       "no custody event records this result (added by hand)")
    for step, table in STEP_TABLES.items():
        with_rows = set(s.scalars(select(table.original_sha256).distinct()))
        for sha in sorted(with_rows - {o for o, st in log.analysed if st == step}):
            report.problem("catalogue", f"original {sha}", (
                f"has {table.__tablename__} rows that no `{step}` step recorded (added by "
                "hand)"))


def _check_cases(s: Session, log: LogView, report: VerifyReport) -> None:
    """Cases and incidents go to prosecutors and into reports: each must be what its latest
    `annotated` event recorded, and none may exist without one."""
    from strongroom.catalogue.evidence import annotated_kinds

    for kind, (table, _view) in annotated_kinds().items():
        for row_id in s.scalars(select(table.id).order_by(table.id)):
            ev = log.records.get((kind, row_id))
            subject = f"{kind} {row_id}"
            if ev is None and kind == "facility" and row_id in log.facility:
                continue  # made by a camera's mapping before facilities were records
            if ev is None:
                report.problem("catalogue", subject, "no custody event records it (added by "
                                                     "hand)")
            elif record_digest(s, kind, row_id) != ev.details.get("row_sha256"):
                report.problem("catalogue", subject, (
                    f"no longer says what custody event {ev.seq} recorded (edited by hand)"))
        present = set(s.scalars(select(table.id)))
        for (k, row_id), ev in sorted(log.records.items()):
            if k == kind and row_id not in present and ev.details.get("row_sha256"):
                report.problem("catalogue", f"{kind} {row_id}", (
                    f"custody event {ev.seq} recorded it, but it is gone (deleted by hand)"))


def _table_of(step: str) -> str:
    table = STEP_TABLES.get(step)
    return table.__tablename__ if table is not None else "its rows"


def _check_revisions(s: Session, log: LogView, report: VerifyReport) -> None:
    """The history of cases, incidents and reviews: every version an `annotated` event says
    was kept is there, and is the version whose digest that event holds."""
    from strongroom.catalogue.models import Revision
    from strongroom.custody.chain import result_digest

    kept = {r.event_seq: r for r in s.scalars(select(Revision))}
    for ev in log.kept:
        subject = ev.subject.replace(":", " ", 1)
        rev = kept.pop(ev.seq, None)
        if rev is None:
            report.problem("catalogue", subject, f"the version custody event {ev.seq} "
                                                 "recorded is missing from its history")
        elif rev.view is None or result_digest(rev.view) != ev.details.get("row_sha256"):
            report.problem("catalogue", subject, f"the version of custody event {ev.seq} in "
                                                 "its history was edited")
    for seq in sorted(kept):
        report.problem("catalogue", f"{kept[seq].kind} {kept[seq].row_id}",
                       f"a version in its history that no custody event records ({seq})")


def _check_camera_mappings(s: Session, log: LogView, report: VerifyReport) -> None:
    """Which facility a camera belongs to, its label and what it was merged into are an
    analyst's judgement that reports rely on: each camera's row (and its facility's name, type
    and region as then recorded) must be what its latest `annotated` event says; a camera no
    person touched has the label OCR read, no facility and no merge."""
    from strongroom.catalogue.models import Camera, Facility

    facilities = {f.id: f for f in s.scalars(select(Facility))}
    cameras = list(s.scalars(select(Camera).order_by(Camera.id)))
    present = {cam.id for cam in cameras}
    for cam_id, recorded in sorted(log.mapped.items()):
        if cam_id not in present:
            report.problem("catalogue", f"camera {recorded.details.get('camera')!r}", (
                f"recorded by custody event {recorded.seq} (camera:{cam_id}) but missing from "
                "the catalogue (deleted)"))
    for cam in cameras:
        subject = f"camera {cam.label!r}"
        ev = log.mapped.get(cam.id)
        if ev is None:
            if cam.facility_id is not None:
                report.problem("catalogue", subject, "mapped to a facility that no custody "
                                                     "event records (edited)")
            if cam.read_as is not None or cam.merged_into is not None:
                report.problem("catalogue", subject, "renamed or merged, but no custody "
                                                     "event records it (edited)")
            continue
        d = ev.details
        fac = facilities.get(cam.facility_id) if cam.facility_id is not None else None
        latest = log.facility.get(cam.facility_id) if cam.facility_id is not None else None
        # the facility's name as last recorded: by this mapping, or by a later edit of it
        name = latest.details.get("name") if latest is not None and latest.seq > ev.seq \
            and latest.subject.startswith("facility:") else d.get("facility")
        _differs(report, subject, ev, [
            ("label", cam.label, d.get("camera")),
            ("read_as", cam.read_as, d.get("read_as")),
            ("merged_into", cam.merged_into, d.get("merged_into")),
            ("facility_id", cam.facility_id, d.get("facility_id")),
            ("facility", fac.name if fac else None, name),
        ])
        if fac is not None and latest is not None:
            # type and region as the latest mapping to this facility (of any camera) left them
            _differs(report, f"facility {fac.name!r}", latest, [
                ("type", fac.type, latest.details.get("type")),
                ("region", fac.region, latest.details.get("region"))])



# -- fixity -------------------------------------------------------------------------------------
def verify_fixity(
    vault: Vault,
    decrypt: Decrypt,
    originals: list[Original],
    derivatives: list[Derivative],
    report: VerifyReport,
    advance: Callable[[int], None] | None = None,
    chunks: dict[int, list[DerivativeChunk]] | None = None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    chunks = chunks or {}

    def check(o: Original) -> list[Problem]:
        subject = f"original {o.sha256}"
        try:
            actual_size = vault.blob_size(o.blob_name)
        except StrongroomError as exc:
            return [Problem("fixity", subject, str(exc))]
        if actual_size != o.blob_size:
            return [Problem("fixity", subject, (
                f"ciphertext is {actual_size} bytes, {o.blob_size} were stored"))]
        try:
            d = decrypt(o.blob_name, None, sha512=o.sha512 is not None, what=subject)
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
        if d.id in chunks:
            return check_chunked(d, chunks[d.id], subject)
        try:
            got = decrypt(d.blob_name, None, md5=False, what=subject)
        except StrongroomError as exc:
            return [Problem("fixity", subject, str(exc))]
        if got.sha256 != d.sha256 or got.size != d.size:
            return [Problem("fixity", subject, f"plaintext no longer matches: sha256 "
                                               f"{got.sha256}, size {got.size}")]
        return []

    def check_chunked(d: Derivative, rows: list[DerivativeChunk], subject: str
                      ) -> list[Problem]:
        """Each chunk decrypts to its recorded SHA-256 and size (named when not), and the
        chunks in order still add up to the derivative's own SHA-256 and size."""
        import hashlib

        found = []
        whole, at = hashlib.sha256(), 0
        for c in rows:
            part = f"{subject}, chunk {c.idx}"
            try:
                plain = vault._decrypt_chunk(c.blob_name, what=part)
            except StrongroomError as exc:
                found.append(Problem("fixity", part, str(exc)))
                continue
            got = hashlib.sha256(plain).hexdigest()
            if got != c.sha256 or len(plain) != c.size:
                found.append(Problem("fixity", part, (
                    f"plaintext no longer matches: sha256 {got}, size {len(plain)}")))
            whole.update(plain)
            at += len(plain)
        if not found and (whole.hexdigest() != d.sha256 or at != d.size):
            found.append(Problem("fixity", subject, (
                f"its chunks no longer add up to it: sha256 {whole.hexdigest()}, size {at}")))
        return found

    with ThreadPoolExecutor(2) as pool:
        for o, problems in zip(originals, pool.map(check, originals), strict=True):
            report.problems.extend(problems)
            report.blobs_checked += 1
            if problems:
                report.failed_blobs.append(o.blob_name)
        for d, problems in zip(derivatives, pool.map(check_derivative, derivatives),
                               strict=True):
            report.problems.extend(problems)
            report.blobs_checked += 1
            if problems:
                report.failed_blobs.append(d.blob_name)
    report.bytes_checked = sum(o.size for o in originals) + sum(d.size for d in derivatives)
    known = {o.blob_name for o in originals} | {d.blob_name for d in derivatives} | {
        c.blob_name for rows in chunks.values() for c in rows}
    # Blobs stored after the snapshot began have no row in it yet: a concurrent ingest's.
    orphans = [n for n in vault.blob_names() if n not in known]
    if orphans:
        report.warnings.append(
            f"{len(orphans)} blob(s) not in the catalogue (left by an interrupted ingest, or "
            "stored by one running now; the next ingest of the same source adopts them)")
    staging = vault.staging_files()
    if staging:
        report.warnings.append(f"{len(staging)} staging file(s) in the blob store's .tmp")
