"""The batch commit, the third part of ingest: staged files committed in groups, each group's
blobs made durable and visible, then its rows and custody events in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as UniqueViolation

from strongroom.catalogue.models import IngestError, Original, Sighting
from strongroom.custody import events
from strongroom.errors import StrongroomError
from strongroom.ingest.source import Entry, legacy_path_text, path_bytes
from strongroom.ingest.stage import Failed, Staged
from strongroom.vault import Vault
from strongroom.vault.vault import event_time

if TYPE_CHECKING:
    from strongroom.ingest.ingestor import IngestReport


def change_error(seen: Sighting, e: Entry) -> dict[str, str] | None:
    """None when `e` is what this acquisition already sighted at its path (by an earlier run,
    or by another ingest of the same source running at the same time), else the error."""
    if same(seen, e):
        return None
    return {"path": e.rel_path, "error": (
        "changed since this acquisition was first ingested; ingest it as a new acquisition")}


def same(seen: Sighting, e: Entry) -> bool:
    if e.kind == "symlink":
        # A vault from before `path_text` recorded a target holding a backslash undoubled.
        targets = {e.link_target}
        if e.link_target is not None:
            targets.add(legacy_path_text(path_bytes(e.link_target)))
        return seen.kind == "symlink" and seen.link_target in targets
    if e.st is None:
        return False
    return seen.size == e.st.st_size and seen.mtime_ns == e.st.st_mtime_ns


@dataclass
class Tally:
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
class Group:
    """The part of a batch still to be recorded."""

    staged: list[Staged]
    symlinks: list[Entry]
    failed: list[Failed]

    def paths(self) -> list[str]:
        return ([i.entry.rel_path for i in self.staged] + [e.rel_path for e in self.symlinks]
                + [f.entry.rel_path for f in self.failed])

    def units(self) -> list[Group]:
        return ([Group([i], [], []) for i in self.staged]
                + [Group([], [e], []) for e in self.symlinks]
                + [Group([], [], [f]) for f in self.failed])


class Batch:
    """Files waiting to be committed together (one sync of the blob store per group)."""

    def __init__(self, vault: Vault, acquisition: int, report: IngestReport) -> None:
        self.vault, self.acquisition, self.report = vault, acquisition, report
        self.staged: list[Staged] = []
        self.symlinks: list[Entry] = []
        self.failed: list[Failed] = []
        self.bytes = 0
        self.opened = time.monotonic()

    def add(self, item: Staged) -> None:
        self.staged.append(item)
        self.bytes += item.digests.size

    def add_symlink(self, entry: Entry) -> None:
        self.symlinks.append(entry)

    def fail(self, item: Failed) -> None:
        self.failed.append(item)
        self.report.errors.append({"path": item.entry.rel_path, "error": item.error})

    def full(self) -> bool:
        s = self.vault.settings
        n = len(self.staged) + len(self.symlinks) + len(self.failed)
        return (n >= s.commit_files or self.bytes >= s.commit_bytes
                or (n > 0 and time.monotonic() - self.opened > 2.0))

    def discard(self) -> None:
        for item in self.staged:
            self.vault.discard(item.stored)
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
        group = Group(self.staged, self.symlinks, self.failed)
        early = Tally()
        with vault.catalogue.read() as s:
            # Another ingest of this source, running at the same time, may have sighted some
            # of these paths since this run listed them: do not store their content again.
            group = self._triage(self._sighted(s, group.paths()), group, early)
            shas = {i.digests.sha256 for i in group.staged}
            existing = set(s.scalars(select(Original.sha256).where(Original.sha256.in_(shas))))
        # First occurrence of each new content is stored; everything else only re-sighted.
        to_store: dict[str, Staged] = {}
        for item in group.staged:
            sha = item.digests.sha256
            if sha not in existing and sha not in to_store:
                to_store[sha] = item
            else:
                vault.discard(item.stored)
        names = {sha: item.stored.name for sha, item in to_store.items()}
        try:
            vault.commit([item.stored for item in to_store.values()])
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

    def _triage(self, sighted: dict[str, Sighting], group: Group, tally: Tally) -> Group:
        """The part of `group` whose paths are not sighted yet (nor twice in the group)."""
        taken: set[str] = set()

        def fresh(e: Entry) -> bool:
            seen = sighted.get(e.rel_path)
            if seen is not None:
                err = change_error(seen, e)
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
                self.vault.discard(item.stored)
        symlinks = [e for e in group.symlinks if fresh(e)]
        # A failure needs no row when the path was captured meanwhile (the report still says
        # that this run could not read it).
        failed = [f for f in group.failed if f.entry.rel_path not in sighted]
        return Group(staged, symlinks, failed)

    def _record(self, s: Any, group: Group, to_store: dict[str, Staged],
                names: dict[str, str], now: datetime) -> Tally:
        """Write `group`'s rows and custody events in `s` (the write lock is held)."""
        tally = Tally()
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
            blob_size = self.vault.blob_size(names[sha])
            event = events.ingested(self.vault, s, d, names[sha], blob_size, self.acquisition)
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

    def _record_one_by_one(self, group: Group, to_store: dict[str, Staged],
                           names: dict[str, str], now: datetime, *, checkpoint: bool) -> Tally:
        total = Tally()
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
        if st is None:  # walk() gives every file and symlink its status
            raise StrongroomError(f"{entry.rel_path}: no file status to record")
        size = None if entry.kind == "symlink" else st.st_size
        event = events.sighted(self.vault, s, acquisition=self.acquisition, sha256=sha,
                               path=entry.rel_path, kind=entry.kind,
                               link_target=entry.link_target, size=size, st=st)
        s.add(Sighting(
            acquisition_id=self.acquisition, original_sha256=sha, rel_path=entry.rel_path,
            kind=entry.kind, link_target=entry.link_target, size=size, mode=st.st_mode,
            mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, atime_ns=st.st_atime_ns,
            seen_at=event_time(event),
        ))
