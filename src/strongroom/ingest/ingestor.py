"""Ingest: every file of a source becomes (or re-sights) an original, crash-safely.

In three parts: walking the source (`source.py`), staging each file through the vault's door
(`stage.py`), and committing in groups (`batch.py`). This module runs them.

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
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from strongroom.catalogue.models import Acquisition, Sighting
from strongroom.custody import events
from strongroom.custody.log import acquisition_commitment
from strongroom.errors import SourceError, StorageFull, StrongroomError
from strongroom.ingest.batch import Batch, change_error
from strongroom.ingest.source import (
    Entry,
    walk,
)
from strongroom.ingest.stage import Failed, NoProgress, Progress, Staged, stage
from strongroom.vault import Vault
from strongroom.vault.vault import event_time


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
    progress = progress or NoProgress()
    started = time.perf_counter()
    vault.require_keys()  # fail now, not after walking, if the vault is sealed
    avoid = refuse_vault_as_source(vault, source)
    entries = list(walk(source, avoid=avoid))
    report = IngestReport(source=str(source))
    medium = "disk_image" if len(entries) == 1 and entries[0].kind == "disk_image" else "folder"
    acquisition = acquisition_for(vault, str(source.resolve()), medium, description,
                                  received_by, received_at)
    report.acquisition_id = acquisition
    vault.cleanup_staging()

    with vault.catalogue.read() as s:
        known = {
            row.rel_path: row
            for row in s.scalars(select(Sighting).where(Sighting.acquisition_id == acquisition))
        }
    todo: list[Entry] = []
    progress.start(len(entries), sum(e.size for e in entries))
    batch = Batch(vault, acquisition, report)
    for e in entries:
        report.files_seen += 1
        if e.kind == "error":
            batch.fail(Failed(e, e.error or "cannot be read"))
            progress.file_done()
            continue
        seen = known.get(e.rel_path)
        if seen is not None:
            err = change_error(seen, e)
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
    running: dict[Future[Staged | Failed], Entry] = {}
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
        batch = Batch(vault, acquisition, report)

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
                running[pool.submit(stage, vault, nxt, progress)] = nxt
            if not running:
                break
            done, _ = wait_futures(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                del running[fut]  # only now: on an error, _drop_running discards the rest
                if isinstance(result, Failed):
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
        if inflight is not None:  # always set by hand_over
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

    places = vault.settings.vault_folders()
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
    vault: Vault, pool: ThreadPoolExecutor, running: dict[Future[Staged | Failed], Entry],
) -> None:
    """Stop staging and discard whatever was staged but will not be committed."""
    pool.shutdown(wait=True, cancel_futures=True)
    for fut in running:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            res = fut.result()
            if isinstance(res, Staged):
                vault.discard(res.stored)


def acquisition_for(
    vault: Vault,
    source_path: str,
    medium: str,
    description: str,
    received_by: str | None,
    received_at: str | None,
) -> int:
    """The acquisition for (description, source), created once: a re-run resumes it."""
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
        event = events.acquired(vault, s, acq, acquisition_commitment(acq))
        acq.created_at = event_time(event)  # so the log covers it
        return acq.id
