"""Staging, the second part of ingest: one source file read once through `vault.store`
(hashed, encrypted, named), or the reason it could not be captured."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.ingest.source import Entry, open_source
from strongroom.vault import Vault
from strongroom.vault.door import Stored
from strongroom.vault.hashing import Digests


class Progress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def file_done(self) -> None: ...


class NoProgress:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass


class SourceReadError(Exception):
    """Reading the *source* failed (as opposed to writing the vault)."""


@dataclass
class Staged:
    entry: Entry
    stored: Stored

    @property
    def digests(self) -> Digests:
        return self.stored.digests


@dataclass
class Failed:
    entry: Entry
    error: str


def stage(vault: Vault, entry: Entry, progress: Progress) -> Staged | Failed:
    """Read one source file once through `vault.store` (hash + encrypt into a staged blob).
    Runs in a worker thread. A file that changed while it was read is not captured."""
    try:
        fd = open_source(entry.path)
    except OSError as exc:
        return Failed(entry, f"cannot open: {exc.strerror}")
    with os.fdopen(fd, "rb", buffering=0) as f:
        before = os.fstat(fd)
        size = before.st_size
        if stat.S_ISBLK(before.st_mode):
            size = os.lseek(fd, 0, os.SEEK_END)
            os.lseek(fd, 0, os.SEEK_SET)
        try:
            stored = vault.store(SourceReader(f, progress), size=size, what=entry.rel_path)
            after = os.fstat(fd)
        except SourceReadError as exc:
            return Failed(entry, str(exc))
    digests = stored.digests
    if stat.S_ISREG(before.st_mode) and (
        after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
        or digests.size != before.st_size
    ):
        vault.discard(stored)
        return Failed(entry, (
            f"changed while being read (size {before.st_size} → {after.st_size}, "
            f"read {digests.size} bytes, mtime changed: "
            f"{after.st_mtime_ns != before.st_mtime_ns}); not captured — re-run when it is stable"))
    return Staged(entry, stored)


class SourceReader:
    """The source file as `vault.store` reads it: progress counted, read errors told apart
    from the vault's own (a bad USB stick fails one file; a full vault stops the run)."""

    def __init__(self, f: Any, progress: Progress) -> None:
        self._f, self._progress = f, progress

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._f.read(n)
        except OSError as exc:
            raise SourceReadError(f"read error: {exc.strerror}") from exc
        if data:
            self._progress.advance(len(data))
        return data or b""
