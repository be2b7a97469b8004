"""Appending to the custody log, inside the caller's transaction, and writing checkpoints.

Checkpoints are stored twice: in the catalogue and in `custody-checkpoints.jsonl` beside it,
an append-only file that can be copied off-site (and, with a TSA, timestamped). Whoever can
rewrite the database still cannot make a truncated log agree with a checkpoint kept elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import Acquisition, CustodyCheckpoint, CustodyEvent
from strongroom.custody.chain import (
    GENESIS,
    canonical_json,
    checkpoint_signing_input,
    event_hash,
    event_signing_input,
)
from strongroom.vault.keys import VaultKeys

ACTIONS = frozenset(
    {
        "vault_created", "acquired", "ingested", "sighted", "analysed", "derived", "fixity_checked",
        "verified", "viewed", "revealed", "downloaded", "annotated", "exported", "handed_over",
        "received", "published", "keys_rewrapped", "catalogue_encrypted", "unsealed",
        "sealed", "migrated", "replicated", "repaired",
    }
)

_HEAD = "strongroom.custody_head"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _head(session: Session) -> tuple[int, str]:
    head = session.info.get(_HEAD)
    if head is None:
        row = session.execute(
            select(CustodyEvent.seq, CustodyEvent.hash).order_by(CustodyEvent.seq.desc()).limit(1)
        ).first()
        head = (row[0], row[1]) if row else (0, GENESIS)
    return head


class CustodyLog:
    def __init__(self, keys: VaultKeys, checkpoint_file: Path) -> None:
        self._keys = keys
        self.checkpoint_file = checkpoint_file

    def append(
        self, session: Session, *, actor: str, action: str, subject: str, details: dict[str, Any]
    ) -> CustodyEvent:
        """Add the next link to the chain in `session`'s transaction (the caller holds the
        write lock, so the head cannot move underneath)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown custody action {action!r}")
        seq, prev = _head(session)
        seq += 1
        time = utc_now()
        digest = event_hash(
            seq=seq, time=time, actor=actor, action=action, subject=subject, details=details,
            prev_hash=prev,
        )
        event = CustodyEvent(
            seq=seq, time=time, actor=actor, action=action, subject=subject,
            details=canonical_json(details), prev_hash=prev, hash=digest,
            signature=base64.b64encode(self._keys.sign(event_signing_input(digest))).decode(),
        )
        session.add(event)
        session.info[_HEAD] = (seq, digest)
        return event

    def checkpoint(self, session: Session) -> CustodyCheckpoint | None:
        """Sign the current head, unless it is already checkpointed. Call `publish` after the
        transaction commits, so the file never claims more than the database holds."""
        seq, head = _head(session)
        if seq == 0:
            return None
        last = session.execute(select(CustodyCheckpoint.seq).order_by(
            CustodyCheckpoint.seq.desc()).limit(1)).scalar()
        if last is not None and last >= seq:
            return None
        time = utc_now()
        sig = self._keys.sign(checkpoint_signing_input(seq, head, time))
        cp = CustodyCheckpoint(
            seq=seq, head_hash=head, time=time, signature=base64.b64encode(sig).decode()
        )
        session.add(cp)
        return cp

    def publish(self, session: Session, upto: int) -> None:
        """Append to the checkpoint file every committed checkpoint up to `upto` that its tail
        lacks: the new one, and any whose publication a kill cut off between the commit and
        the write (else `verify` took the file for one shortened by hand). Under an exclusive
        lock, so that two commands publishing at once never append one twice or out of
        order. A checkpoint the file lacks before its last one stays missing: that is no
        crash, and `verify` reports it."""
        import fcntl

        fd = os.open(self.checkpoint_file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_published(fd, upto)
            lines = "".join(canonical_json(checkpoint_json(cp)) + "\n" for cp in session.scalars(
                select(CustodyCheckpoint).where(CustodyCheckpoint.seq > last,
                                                CustodyCheckpoint.seq <= upto)
                .order_by(CustodyCheckpoint.seq)))
            if lines:
                os.write(fd, lines.encode("utf-8"))
                os.fsync(fd)
        finally:
            os.close(fd)


def _last_published(fd: int, upto: int) -> int:
    """The seq of the checkpoint file's last line; `upto` − 1 when it has none that parses
    (then only the new checkpoint is appended, as before: `verify` reports the file)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    tail = os.pread(fd, min(size, 8192), max(0, size - 8192))
    for line in reversed(tail.split(b"\n")):
        if line.strip():
            try:
                return int(parse_checkpoint(line)["seq"])
            except (ValueError, KeyError, TypeError):
                break
    return upto - 1


def acquisition_commitment(acq: Acquisition) -> str:
    """The salted commitment an `acquired` event carries instead of the acquisition record:
    the log is handed to prosecutors, and the record (who received which stick from whom) may
    identify the source; revealing the record and its nonce later proves it unchanged."""
    import hashlib

    record = {
        "id": acq.id, "description": acq.description, "source_path": acq.source_path,
        "received_by": acq.received_by, "received_at": acq.received_at, "nonce": acq.nonce,
    }
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def checkpoint_json(cp: CustodyCheckpoint) -> dict[str, Any]:
    return {"seq": cp.seq, "head_hash": cp.head_hash, "time": cp.time, "signature": cp.signature}


def event_json(ev: CustodyEvent) -> dict[str, Any]:
    return {
        "seq": ev.seq, "time": ev.time, "actor": ev.actor, "action": ev.action,
        "subject": ev.subject, "details": json.loads(ev.details), "prev_hash": ev.prev_hash,
        "hash": ev.hash, "signature": ev.signature,
    }


@dataclass
class CheckpointFile:
    """What a checkpoint file holds: the well-formed checkpoints, and every line that is not one
    (each named, so that `verify` reports it instead of crashing on it)."""

    path: Path
    exists: bool
    checkpoints: list[dict[str, Any]]
    bad_lines: list[tuple[int, str]]  # (line number, why)

    @property
    def empty(self) -> bool:
        return self.exists and not self.checkpoints and not self.bad_lines


#: A checkpoint line is ~200 bytes; one per write transaction. Far beyond any real vault, and
#: a bound on what a crafted (or /dev/zero) "checkpoint file" can make `verify` read.
MAX_CHECKPOINT_FILE = 1024**3


def read_checkpoint_file(path: Path) -> CheckpointFile:
    import stat

    try:
        # O_NONBLOCK: a FIFO planted at the name must not hang `verify` before fstat sees it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return CheckpointFile(path, True, [], [(0, "is not a regular file")])
            raw = f.read(MAX_CHECKPOINT_FILE + 1)
    except FileNotFoundError:
        return CheckpointFile(path, False, [], [])
    except OSError as exc:
        return CheckpointFile(path, True, [], [(0, f"cannot be read: {exc.strerror}")])
    if len(raw) > MAX_CHECKPOINT_FILE:
        return CheckpointFile(path, True, [], [(0, "is larger than any checkpoint file")])
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            good.append(parse_checkpoint(line))
        except ValueError as exc:
            bad.append((n, str(exc)))
    return CheckpointFile(path, True, good, bad)


def parse_checkpoint(line: bytes) -> dict[str, Any]:
    """One line of a checkpoint file, checked for shape; ValueError says what is wrong."""
    if len(line) > 4096:
        raise ValueError(f"{len(line)} bytes long: no checkpoint is")
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"not a checkpoint object but {type(value).__name__}")
    seq, head, time, sig = (value.get(k) for k in ("seq", "head_hash", "time", "signature"))
    if type(seq) is not int or not 1 <= seq < 2**62:
        raise ValueError(f"seq {str(seq)[:40]!r} is not a positive integer in range")
    if not isinstance(head, str) or len(head) != 64 or head.strip("0123456789abcdef"):
        raise ValueError("head_hash is not 64 hex digits")
    if not isinstance(time, str) or not isinstance(sig, str):
        raise ValueError("time or signature is missing")
    return {"seq": seq, "head_hash": head, "time": time, "signature": sig}
