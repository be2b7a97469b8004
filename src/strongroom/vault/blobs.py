"""Blob stores: where age ciphertext lives, under keyed names, written atomically.

A blob becomes visible under its final name only after its bytes are durable (staged in a
private temp file on the same filesystem, synced, then hard-linked into place). A final name is
never overwritten: originals are immutable, and the same name always means the same plaintext.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from strongroom.errors import BlobMissing, StorageFull, StrongroomError
from strongroom.fsio import fsync_dir, is_disk_full, start_writeback, syncfs
from strongroom.lockdir import hold, remove_if_abandoned

_NAME = re.compile(r"[0-9a-f]{64}")
_LOCK = "lock"  # in each staging session dir, held by its process


def check_name(name: str) -> str:
    """Refuse anything but a 64-hex storage name, so no name can escape the store's root."""
    if not _NAME.fullmatch(name):
        raise StrongroomError(f"invalid blob name {name!r}")
    return name


class StagedBlob(Protocol):
    """A blob being written; invisible until the store commits it under a name."""

    file: BinaryIO

    @property
    def size(self) -> int: ...

    def start_writeback(self) -> None:
        """Hint that what was written so far may go to disk now (makes the final sync short)."""


class BlobStore(Protocol):
    """The operations the vault needs from any storage back-end (local folder now, S3 later)."""

    def stage(self) -> StagedBlob: ...
    def commit(self, staged: Iterable[tuple[StagedBlob, str]]) -> list[bool]: ...
    def discard(self, staged: StagedBlob) -> None: ...
    def exists(self, name: str) -> bool: ...
    def open(self, name: str) -> BinaryIO: ...
    def size(self, name: str) -> int: ...
    def names(self) -> Iterator[str]: ...
    def replace(self, staged: StagedBlob, name: str) -> None:
        """Put a staged blob under `name` even if one is there: only to repair a damaged copy
        with a good one (`replicas.check_replicas`)."""
    def cleanup_stale(self) -> int: ...
    def staging_files(self) -> list[Path]: ...
    def close(self) -> None: ...


class _LocalStaged:
    def __init__(self, path: Path) -> None:
        self.path = path
        # 0600 whatever the umask (a copy that keeps modes must not hand blobs to others)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    @property
    def size(self) -> int:
        return os.fstat(self.file.fileno()).st_size

    def start_writeback(self) -> None:
        start_writeback(self.file.fileno())


class LocalBlobStore:
    """Blobs under `root/<first two hex>/<name>`; staging under `root/.tmp/<process dir>/`.

    Each process stages in its own directory, holding an flock on it, so `cleanup_stale` can
    remove what a killed process left without touching a live one's work.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp_root = root / ".tmp"
        self._session: Path | None = None
        self._lock_fd: int | None = None
        self._session_lock = threading.Lock()  # ingest stages from several threads

    # -- staging ------------------------------------------------------------------------
    def _session_dir(self) -> Path:
        with self._session_lock:
            if self._session is None:
                self._tmp_root.mkdir(mode=0o700, parents=True, exist_ok=True)
                session = self._tmp_root / uuid.uuid4().hex
                session.mkdir(mode=0o700)
                self._session, self._lock_fd = session, hold(session, _LOCK)
            return self._session

    def stage(self) -> _LocalStaged:
        return _LocalStaged(self._session_dir() / uuid.uuid4().hex)

    @staticmethod
    def _own(staged: StagedBlob) -> _LocalStaged:
        """A staged blob this kind of store made: another store's has no file here to move."""
        if not isinstance(staged, _LocalStaged):
            raise TypeError(f"{type(staged).__name__} was not staged by a LocalBlobStore")
        return staged

    def staged_path(self, staged: StagedBlob) -> Path:
        """Where a staged blob's bytes are (the S3 store uploads them from there)."""
        return self._own(staged).path

    def discard(self, staged: StagedBlob) -> None:
        blob = self._own(staged)
        blob.file.close()
        with contextlib.suppress(FileNotFoundError):
            blob.path.unlink()

    def commit(self, staged: Iterable[tuple[StagedBlob, str]]) -> list[bool]:
        """Make a group of staged blobs durable, then visible. Returns, per blob, whether it
        was new (False: a blob of that name already existed and was kept)."""
        items = [(self._own(blob), name) for blob, name in staged]
        if not items:
            return []
        try:
            for blob, _ in items:
                blob.file.flush()
                if len(items) == 1:
                    os.fsync(blob.file.fileno())
            if len(items) > 1:
                syncfs(items[0][0].file.fileno())
            created: list[bool] = []
            dirs: set[Path] = set()
            for blob, name in items:
                final = self._path(name)
                final.parent.mkdir(mode=0o700, exist_ok=True)
                try:
                    os.link(blob.path, final)
                    created.append(True)
                    dirs.add(final.parent)
                except FileExistsError:
                    created.append(False)
            if len(dirs) == 1:
                fsync_dir(next(iter(dirs)))
            elif dirs:
                syncfs(items[0][0].file.fileno())
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull(f"blob store is full ({self.root}): {exc.strerror}") from exc
            raise
        finally:
            for blob, _ in items:
                self.discard(blob)
        return created

    def replace(self, staged: StagedBlob, name: str) -> None:
        """Durably put a staged blob under `name`, over what is there (a repair)."""
        blob = self._own(staged)
        try:
            blob.file.flush()
            os.fsync(blob.file.fileno())
            final = self._path(name)
            final.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(blob.path, final)
            fsync_dir(final.parent)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull(f"blob store is full ({self.root}): {exc.strerror}") from exc
            raise
        finally:
            self.discard(blob)

    # -- reading ------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        check_name(name)
        return self.root / name[:2] / name

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.root}") from None

    def size(self, name: str) -> int:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.root}") from None

    def names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    if _NAME.fullmatch(f.name):
                        yield f.name

    # -- housekeeping -------------------------------------------------------------------
    def cleanup_stale(self) -> int:
        """Remove staging dirs whose process is gone (their flock is free); returns files gone."""
        removed = 0
        if not self._tmp_root.is_dir():
            return 0
        for session in self._tmp_root.iterdir():
            if session == self._session:
                continue
            try:
                files = sum(1 for p in session.iterdir() if p.name != _LOCK)
            except FileNotFoundError:
                continue  # another process cleaned it up first
            if remove_if_abandoned(session, _LOCK):
                removed += files
        return removed

    def staging_files(self) -> list[Path]:
        """Staged files currently on disk (for verify's report)."""
        if not self._tmp_root.is_dir():
            return []
        return [p for p in self._tmp_root.glob("*/*") if p.name != _LOCK]

    def close(self) -> None:
        if self._session is not None:
            shutil.rmtree(self._session, ignore_errors=True)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            self._session = self._lock_fd = None


def open_blob_store(location: str, *, endpoint_url: str = "",
                    staging: Path | None = None) -> BlobStore:
    """The store at `location`: a folder (or `file:///folder`), or `s3://bucket/prefix`
    (staging its uploads in `staging`; without it, the store can only be read)."""
    if location.startswith("s3://"):
        from strongroom.vault.s3blobs import S3BlobStore

        return S3BlobStore(location, endpoint_url=endpoint_url, staging=staging)
    if location.startswith("file://"):
        location = location[len("file://"):]
    return LocalBlobStore(Path(location))
