"""Ingest: every file of a source becomes (or re-sights) an original, crash-safely.

Per file, one read feeds SHA-256, MD5 (and SHA-512 if configured) and the age encryptor, in a
private staging file on the blob store's filesystem. Files are staged in parallel; results are
taken in source order and committed in groups: the group's blobs are made durable and linked
into place, then the group's catalogue rows and custody events commit in one transaction. A
crash at any instant leaves either nothing of a file, or a durable blob that the next run adopts
(its name is a function of the content), never a row without its blob.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as UniqueViolation
from sqlalchemy.exc import SQLAlchemyError

from strongroom.catalogue.models import Acquisition, IngestError, Original, Sighting
from strongroom.custody.log import acquisition_commitment
from strongroom.errors import SourceError, StorageFull, StrongroomError
from strongroom.ingest.source import (
    Entry,
    legacy_path_text,
    open_source,
    path_bytes,
    walk,
)
from strongroom.vault import Vault
from strongroom.vault.blobs import StagedBlob, is_disk_full
from strongroom.vault.encryption import encrypt_stream
from strongroom.vault.hashing import Digests, MultiHash
from strongroom.vault.vault import event_time


class Progress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def file_done(self) -> None: ...


class _NoProgress:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass


@dataclass
class IngestReport:
    acquisition_id: int = 0
    source: str = ""
    files_seen: int = 0
    new_originals: int = 0
    duplicates: int = 0
    already_ingested: int = 0
    symlinks: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "acquisition_id": self.acquisition_id,
            "source": self.source,
            "files_seen": self.files_seen,
            "new_originals": self.new_originals,
            "duplicates": self.duplicates,
            "already_ingested": self.already_ingested,
            "symlinks": self.symlinks,
            "errors": len(self.errors),
            "error_list": self.errors,
            "bytes_read": self.bytes_read,
            "bytes_new": self.bytes_new,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.bytes_read / self.seconds / 1e6, 1) if self.seconds else 0.0,
        }

    def to_text(self) -> str:
        """What `strongroom ingest` prints: one summary line, then one line per error."""
        from strongroom.ingest.source import shown

        data = self.to_json()
        lines = [
            f"{data['new_originals']} new, {data['duplicates']} duplicate(s), "
            f"{data['already_ingested']} already in this acquisition, "
            f"{data['symlinks']} symlink(s), {data['errors']} error(s) — "
            f"{data['bytes_read'] / 1e6:.1f} MB in {data['seconds']} s ({data['mb_per_s']} MB/s)"
        ]
        lines += [f"  error: {shown(e['path'])}: {e['error']}" for e in self.errors]
        return "\n".join(lines)


_WRITEBACK_EVERY = 16 * 1024 * 1024


class _SourceReadError(Exception):
    """Reading the *source* failed (as opposed to writing the vault)."""


@dataclass
class _Staged:
    entry: Entry
    digests: Digests
    blob: StagedBlob


@dataclass
class _Failed:
    entry: Entry
    error: str


def ingest(
    vault: Vault,
    source: Path,
    description: str,
    *,
    received_by: str | None = None,
    received_at: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Capture everything under `source` as one acquisition. Safe to re-run: what is already
    recorded is skipped, what a killed run left half-done is finished."""
    if not description.strip():
        raise StrongroomError("describe the acquisition (medium, serial, who received it, when)")
    progress = progress or _NoProgress()
    started = time.perf_counter()
    vault.keys  # noqa: B018 - fail now, not after walking, if the vault is sealed
    avoid = refuse_vault_as_source(vault, source)
    entries = list(walk(source, avoid=avoid))
    report = IngestReport(source=str(source))
    acquisition = _acquisition(vault, source, description, received_by, received_at, entries)
    report.acquisition_id = acquisition
    vault.blobs.cleanup_stale()

    with vault.catalogue.read() as s:
        known = {
            row.rel_path: row
            for row in s.scalars(select(Sighting).where(Sighting.acquisition_id == acquisition))
        }
    todo: list[Entry] = []
    progress.start(len(entries), sum(e.size for e in entries))
    batch = _Batch(vault, acquisition, report)
    for e in entries:
        report.files_seen += 1
        if e.kind == "error":
            batch.fail(_Failed(e, e.error or "cannot be read"))
            progress.file_done()
            continue
        seen = known.get(e.rel_path)
        if seen is not None:
            err = _change_error(seen, e)
            if err is None:
                report.already_ingested += 1
            else:
                report.errors.append(err)
            progress.advance(e.size)
            progress.file_done()
            continue
        todo.append(e)

    workers = max(1, vault.settings.ingest_workers)
    # Results are taken as they finish, not in order: while a 1 GiB file stages on one worker
    # the other works through the files after it, instead of waiting behind it (the order of
    # files within a commit group does not matter).
    running: dict[Future[_Staged | _Failed], Entry] = {}
    pool = ThreadPoolExecutor(workers, thread_name_prefix="ingest")
    # Groups commit on their own thread while the next files are being staged, so the disk
    # sync and the catalogue transaction do not stall reading. One group in flight at a time.
    committer = ThreadPoolExecutor(1, thread_name_prefix="ingest-commit")
    inflight: Future[None] | None = None

    def hand_over(checkpoint: bool) -> None:
        nonlocal batch, inflight
        if inflight is not None:
            inflight.result()
        inflight = committer.submit(batch.commit, checkpoint=checkpoint)
        batch = _Batch(vault, acquisition, report)

    def settle() -> None:
        """Wait for the group in flight (it cannot be stopped half-way through a commit)."""
        if inflight is not None:
            with contextlib.suppress(Exception):  # the error being handled already says why
                inflight.result()

    try:
        pending = iter(todo)
        while True:
            while len(running) < workers + 2:
                nxt = next(pending, None)
                if nxt is None:
                    break
                if nxt.kind == "symlink":
                    batch.add_symlink(nxt)
                    progress.file_done()
                    continue
                running[pool.submit(_stage, vault, nxt, progress)] = nxt
            if not running:
                break
            done, _ = wait_futures(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                del running[fut]  # only now: on an error, _drop_running discards the rest
                if isinstance(result, _Failed):
                    batch.fail(result)
                else:
                    batch.add(result)
                    report.bytes_read += result.digests.size
                progress.file_done()
                if batch.full():
                    hand_over(checkpoint=False)
        # Always, even when the last group filled inside the loop and this batch is empty:
        # the ingest must end with a signed checkpoint over its last event (an empty batch's
        # commit signs the head), or a bag exported now would stop at an older checkpoint.
        hand_over(checkpoint=True)
        assert inflight is not None
        inflight.result()
    except StorageFull as exc:
        _drop_running(vault, pool, running)
        settle()
        try:  # what was completely read before the disk filled up is kept
            batch.commit(checkpoint=True)
        except StrongroomError:
            batch.discard()
        raise StorageFull(f"{exc} ({report.new_originals} new original(s) were stored "
                          "before that)") from exc
    except BaseException:
        _drop_running(vault, pool, running)
        settle()
        batch.discard()
        _checkpoint_what_was_committed(vault)
        raise
    finally:
        pool.shutdown(wait=True)
        committer.shutdown(wait=True)
    report.seconds = time.perf_counter() - started
    return report


def _checkpoint_what_was_committed(vault: Vault) -> None:
    """After an error or Ctrl-C, the groups already committed stay (re-running resumes from
    them); sign a checkpoint over them, so they are not left outside every checkpoint. Best
    effort: the error being raised already says what went wrong."""
    with contextlib.suppress(StrongroomError, SQLAlchemyError, OSError), vault.write():
        pass


def refuse_vault_as_source(vault: Vault, source: Path) -> frozenset[tuple[int, int]]:
    """Refuse a source that is the vault, lies inside it, or contains it.

    Ingesting the vault would capture its own catalogue, keys file and ciphertexts as evidence
    (and grow with every run). Paths are compared after resolving symlinks, and folders also by
    (device, inode), so a symlinked or bind-mounted spelling of the same folder is caught.
    Returns the (device, inode) of the vault's folders, for the walk to refuse them should one
    be mounted somewhere inside the source.
    """
    from strongroom.catalogue.db import sqlite_path

    places = [vault.path, vault.settings.resolved_blob_root()]
    db = sqlite_path(vault.catalogue.url)
    if db is not None:
        places.append(db.parent)
    try:
        src = source.resolve()
    except (OSError, RuntimeError):
        return frozenset()  # the walk reports an unreadable source in its own words
    src_ids = _ids_up_from(src)
    avoid: set[tuple[int, int]] = set()
    for place in places:
        try:
            where = place.resolve()
            st = os.stat(where)
        except (OSError, RuntimeError):
            continue
        ident = (st.st_dev, st.st_ino)
        avoid.add(ident)
        if where == src or ident == src_ids[0]:
            relation = "is"
        elif where in src.parents or ident in src_ids[1:]:
            relation = "is inside"
        elif src in where.parents or _contains(src_ids[0], where):
            relation = "contains"
        else:
            continue
        raise SourceError(
            f"source {source} {relation} the vault ({place}); refusing to ingest the vault "
            "into itself")
    return frozenset(avoid)


def _ids_up_from(path: Path) -> list[tuple[int, int]]:
    """(device, inode) of `path` and each of its parents, nearest first (unreadable ones as
    (-1, -1), which match nothing)."""
    out = []
    for p in (path, *path.parents):
        try:
            st = os.stat(p)
            out.append((st.st_dev, st.st_ino))
        except OSError:
            out.append((-1, -1))
    return out


def _contains(folder: tuple[int, int], path: Path) -> bool:
    return folder != (-1, -1) and folder in _ids_up_from(path)[1:]


def _drop_running(
    vault: Vault, pool: ThreadPoolExecutor, running: dict[Future[_Staged | _Failed], Entry],
) -> None:
    """Stop staging and discard whatever was staged but will not be committed."""
    pool.shutdown(wait=True, cancel_futures=True)
    for fut in running:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            res = fut.result()
            if isinstance(res, _Staged):
                vault.blobs.discard(res.blob)


def _change_error(seen: Sighting, e: Entry) -> dict[str, str] | None:
    """None when `e` is what this acquisition already sighted at its path (by an earlier run,
    or by another ingest of the same source running at the same time), else the error."""
    if _same(seen, e):
        return None
    return {"path": e.rel_path, "error": (
        "changed since this acquisition was first ingested; ingest it as a new acquisition")}


def _same(seen: Sighting, e: Entry) -> bool:
    if e.kind == "symlink":
        # A vault from before `path_text` recorded a target holding a backslash undoubled.
        targets = {e.link_target}
        if e.link_target is not None:
            targets.add(legacy_path_text(path_bytes(e.link_target)))
        return seen.kind == "symlink" and seen.link_target in targets
    assert e.st is not None
    return seen.size == e.st.st_size and seen.mtime_ns == e.st.st_mtime_ns


def _acquisition(
    vault: Vault,
    source: Path,
    description: str,
    received_by: str | None,
    received_at: str | None,
    entries: list[Entry],
) -> int:
    """The acquisition for (description, source), created once: a re-run resumes it."""
    source_path = str(source.resolve())
    medium = "disk_image" if len(entries) == 1 and entries[0].kind == "disk_image" else "folder"
    with vault.write() as s:
        acq = s.scalar(select(Acquisition).where(
            Acquisition.description == description, Acquisition.source_path == source_path))
        if acq is not None:
            return acq.id
        acq = Acquisition(
            description=description, source_path=source_path, medium=medium,
            received_by=received_by, received_at=received_at, created_at=datetime.now(UTC),
            actor=vault.actor, nonce=secrets.token_hex(16),
        )
        s.add(acq)
        s.flush()
        # The log is handed to prosecutors; the description may identify the source. The event
        # carries a salted commitment that proves the record later without revealing it now.
        event = vault.record(s, "acquired", f"acquisition:{acq.id}", {
            "acquisition": acq.id,
            "medium": medium,
            "commitment": acquisition_commitment(acq),
        })
        acq.created_at = event_time(event)  # so the log covers it
        return acq.id


def _stage(vault: Vault, entry: Entry, progress: Progress) -> _Staged | _Failed:
    """Read one source file once: hash + encrypt into a staged blob. Runs in a worker thread."""
    try:
        fd = open_source(entry.path)
    except OSError as exc:
        return _Failed(entry, f"cannot open: {exc.strerror}")
    with os.fdopen(fd, "rb", buffering=0) as f:
        before = os.fstat(fd)
        size = before.st_size
        if stat.S_ISBLK(before.st_mode):
            size = os.lseek(fd, 0, os.SEEK_END)
            os.lseek(fd, 0, os.SEEK_SET)

        blob = vault.blobs.stage()
        unsynced = 0

        def read(n: int = -1) -> bytes:
            nonlocal unsynced
            try:
                data = f.read(n)
            except OSError as exc:
                raise _SourceReadError(f"read error: {exc.strerror}") from exc
            if data:
                progress.advance(len(data))
                unsynced += len(data)
                if unsynced >= _WRITEBACK_EVERY:
                    blob.start_writeback()  # the disk works while we encrypt the rest
                    unsynced = 0
            return data or b""

        reader: Any = _Reader(read)
        hasher = MultiHash(sha512=vault.settings.sha512)
        try:
            encrypt_stream(
                reader, blob.file, vault.keys.public.age_recipient, hasher,
                expected_size=size, binary_threshold=vault.settings.age_binary_threshold,
            )
            blob.file.flush()
            after = os.fstat(fd)
        except _SourceReadError as exc:
            vault.blobs.discard(blob)
            return _Failed(entry, str(exc))
        except OSError as exc:
            vault.blobs.discard(blob)
            if is_disk_full(exc):
                raise StorageFull(
                    f"the vault's blob store is full while storing {entry.rel_path}; "
                    "nothing half-written was kept — free space and re-run to continue"
                ) from exc
            raise
        except BaseException:
            vault.blobs.discard(blob)
            raise
    digests = hasher.digests()
    if stat.S_ISREG(before.st_mode) and (
        after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
        or digests.size != before.st_size
    ):
        vault.blobs.discard(blob)
        return _Failed(entry, (
            f"changed while being read (size {before.st_size} → {after.st_size}, "
            f"read {digests.size} bytes, mtime changed: "
            f"{after.st_mtime_ns != before.st_mtime_ns}); not captured — re-run when it is stable"))
    return _Staged(entry, digests, blob)


class _Reader:
    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read = read


@dataclass
class _Tally:
    """What one commit added, applied to the report only once its transaction has committed
    (a rolled-back attempt must not count)."""

    new_originals: int = 0
    bytes_new: int = 0
    duplicates: int = 0
    symlinks: int = 0
    already_ingested: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def apply(self, report: IngestReport) -> None:
        report.new_originals += self.new_originals
        report.bytes_new += self.bytes_new
        report.duplicates += self.duplicates
        report.symlinks += self.symlinks
        report.already_ingested += self.already_ingested
        report.errors.extend(self.errors)


@dataclass
class _Group:
    """The part of a batch still to be recorded."""

    staged: list[_Staged]
    symlinks: list[Entry]
    failed: list[_Failed]

    def paths(self) -> list[str]:
        return ([i.entry.rel_path for i in self.staged] + [e.rel_path for e in self.symlinks]
                + [f.entry.rel_path for f in self.failed])

    def units(self) -> list[_Group]:
        return ([_Group([i], [], []) for i in self.staged]
                + [_Group([], [e], []) for e in self.symlinks]
                + [_Group([], [], [f]) for f in self.failed])


class _Batch:
    """Files waiting to be committed together (one sync of the blob store per group)."""

    def __init__(self, vault: Vault, acquisition: int, report: IngestReport) -> None:
        self.vault, self.acquisition, self.report = vault, acquisition, report
        self.staged: list[_Staged] = []
        self.symlinks: list[Entry] = []
        self.failed: list[_Failed] = []
        self.bytes = 0
        self.opened = time.monotonic()

    def add(self, item: _Staged) -> None:
        self.staged.append(item)
        self.bytes += item.digests.size

    def add_symlink(self, entry: Entry) -> None:
        self.symlinks.append(entry)

    def fail(self, item: _Failed) -> None:
        self.failed.append(item)
        self.report.errors.append({"path": item.entry.rel_path, "error": item.error})

    def full(self) -> bool:
        s = self.vault.settings
        n = len(self.staged) + len(self.symlinks) + len(self.failed)
        return (n >= s.commit_files or self.bytes >= s.commit_bytes
                or (n > 0 and time.monotonic() - self.opened > 2.0))

    def discard(self) -> None:
        for item in self.staged:
            self.vault.blobs.discard(item.blob)
        self.staged.clear()

    def commit(self, *, checkpoint: bool) -> None:
        vault = self.vault
        if not (self.staged or self.symlinks or self.failed):
            if checkpoint:
                # Nothing left to record, but the groups before went in unsigned (the last one
                # filled inside the loop): sign the head now. `write` signs it only if it is
                # not checkpointed yet.
                with vault.write(checkpoint=True):
                    pass
            return
        keys = vault.keys
        group = _Group(self.staged, self.symlinks, self.failed)
        early = _Tally()
        with vault.catalogue.read() as s:
            # Another ingest of this source, running at the same time, may have sighted some
            # of these paths since this run listed them: do not store their content again.
            group = self._triage(self._sighted(s, group.paths()), group, early)
            shas = {i.digests.sha256 for i in group.staged}
            existing = set(s.scalars(select(Original.sha256).where(Original.sha256.in_(shas))))
        # First occurrence of each new content is stored; everything else only re-sighted.
        to_store: dict[str, _Staged] = {}
        for item in group.staged:
            sha = item.digests.sha256
            if sha not in existing and sha not in to_store:
                to_store[sha] = item
            else:
                vault.blobs.discard(item.blob)
        names = {sha: keys.storage_name(sha) for sha in to_store}
        try:
            vault.blobs.commit([(item.blob, names[sha]) for sha, item in to_store.items()])
        except BaseException:
            self.discard()
            raise
        now = datetime.now(UTC)
        try:
            with vault.write(checkpoint=checkpoint) as s:
                tally = self._record(s, group, to_store, names, now)
        except UniqueViolation:
            # Not expected (paths are injective and re-checked under the write lock), but if
            # the catalogue still refuses a row, only that file is reported; the rest of the
            # group is recorded.
            tally = self._record_one_by_one(group, to_store, names, now, checkpoint=checkpoint)
        early.apply(self.report)
        tally.apply(self.report)
        self.staged, self.symlinks, self.failed = [], [], []
        self.bytes = 0
        self.opened = time.monotonic()

    def _sighted(self, s: Any, paths: list[str]) -> dict[str, Sighting]:
        return {row.rel_path: row for row in s.scalars(select(Sighting).where(
            Sighting.acquisition_id == self.acquisition, Sighting.rel_path.in_(paths)))}

    def _triage(self, sighted: dict[str, Sighting], group: _Group, tally: _Tally) -> _Group:
        """The part of `group` whose paths are not sighted yet (nor twice in the group)."""
        taken: set[str] = set()

        def fresh(e: Entry) -> bool:
            seen = sighted.get(e.rel_path)
            if seen is not None:
                err = _change_error(seen, e)
                if err is None:
                    tally.already_ingested += 1
                else:
                    tally.errors.append(err)
                return False
            if e.rel_path in taken:
                tally.errors.append({"path": e.rel_path, "error": (
                    "another file of this source was recorded under the same path; "
                    "not captured")})
                return False
            taken.add(e.rel_path)
            return True

        staged = []
        for item in group.staged:
            if fresh(item.entry):
                staged.append(item)
            else:
                self.vault.blobs.discard(item.blob)
        symlinks = [e for e in group.symlinks if fresh(e)]
        # A failure needs no row when the path was captured meanwhile (the report still says
        # that this run could not read it).
        failed = [f for f in group.failed if f.entry.rel_path not in sighted]
        return _Group(staged, symlinks, failed)

    def _record(self, s: Any, group: _Group, to_store: dict[str, _Staged],
                names: dict[str, str], now: datetime) -> _Tally:
        """Write `group`'s rows and custody events in `s` (the write lock is held)."""
        tally = _Tally()
        # Re-check under the write lock: another process may have sighted these paths or
        # stored the same content since the unlocked look.
        group = self._triage(self._sighted(s, group.paths()), group, tally)
        wanted = [sha for sha in to_store
                  if any(i.digests.sha256 == sha for i in group.staged)]
        present = set(s.scalars(select(Original.sha256).where(Original.sha256.in_(wanted))))
        for sha in wanted:
            if sha in present:
                continue
            d = to_store[sha].digests
            blob_size = self.vault.blobs.size(names[sha])
            details: dict[str, Any] = {
                "sha256": sha, "md5": d.md5, "size": d.size, "blob": names[sha],
                "blob_size": blob_size, "acquisition": self.acquisition,
            }
            if d.sha512:
                details["sha512"] = d.sha512
            event = self.vault.record(s, "ingested", f"original:{sha}", details)
            s.add(Original(
                sha256=sha, size=d.size, md5=d.md5, sha512=d.sha512, blob_name=names[sha],
                blob_size=blob_size, mime=None, first_acquisition_id=self.acquisition,
                ingested_at=event_time(event),  # so the log covers it
            ))
            tally.new_originals += 1
            tally.bytes_new += d.size
        tally.duplicates += len(group.staged) - tally.new_originals
        # One statement clears earlier errors for every path of this group: a path now
        # sighted is no longer an error, a path failing again gets a fresh row.
        s.execute(delete(IngestError).where(
            IngestError.acquisition_id == self.acquisition,
            IngestError.rel_path.in_(group.paths())))
        for item in group.staged:
            self._sight(s, item.entry, item.digests.sha256, now)
        for entry in group.symlinks:
            self._sight(s, entry, None, now)
            tally.symlinks += 1
        for f in group.failed:
            s.add(IngestError(acquisition_id=self.acquisition, rel_path=f.entry.rel_path,
                              error=f.error, at=now))
        s.flush()  # a refused row fails here, inside the caller's handler
        return tally

    def _record_one_by_one(self, group: _Group, to_store: dict[str, _Staged],
                           names: dict[str, str], now: datetime, *, checkpoint: bool) -> _Tally:
        total = _Tally()
        for unit in group.units():
            try:
                with self.vault.write(checkpoint=False) as s:
                    tally = self._record(s, unit, to_store, names, now)
            except UniqueViolation as exc:
                reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "refused"
                total.errors.extend({"path": p, "error": (
                    f"could not be recorded: the catalogue refused it ({reason}); not captured")}
                    for p in unit.paths())
                continue
            for name in ("new_originals", "bytes_new", "duplicates", "symlinks",
                         "already_ingested"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.errors.extend(tally.errors)
        if checkpoint:
            with self.vault.write(checkpoint=True):
                pass
        return total

    def _sight(self, s: Any, entry: Entry, sha: str | None, now: datetime) -> None:
        st = entry.st
        assert st is not None
        size = None if entry.kind == "symlink" else st.st_size
        subject = f"original:{sha}" if sha else f"acquisition:{self.acquisition}"
        event = self.vault.record(s, "sighted", subject, {
            "acquisition": self.acquisition, "original": sha, "path": entry.rel_path,
            "kind": entry.kind, "link_target": entry.link_target, "size": size,
            "mode": st.st_mode, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "atime_ns": st.st_atime_ns,
        })
        s.add(Sighting(
            acquisition_id=self.acquisition, original_sha256=sha, rel_path=entry.rel_path,
            kind=entry.kind, link_target=entry.link_target, size=size, mode=st.st_mode,
            mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, atime_ns=st.st_atime_ns,
            seen_at=event_time(event),
        ))
