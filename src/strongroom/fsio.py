"""Filesystem helpers shared by the blob store and the export sinks: write-back hints, one
sync per filesystem, telling a full disk from other write errors, and writing a new output
file (plaintext a user asked for) without overwriting anything or leaving a stray copy."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_SYNC_FILE_RANGE_WRITE = 2


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages now, without waiting for them
    (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`). Writing a big blob then overlaps with
    encrypting it, and the fsync at commit only waits for the tail. Only a hint: durability
    still comes from fsync/syncfs at commit."""
    fn = getattr(_LIBC, "sync_file_range", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        fn(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(fd: int) -> None:
    """Flush every dirty page of the filesystem holding `fd`: one call instead of an fsync per
    file and per directory when a batch of small blobs is committed."""
    fn = getattr(_LIBC, "syncfs", None)
    if fn is not None and fn(fd) == 0:
        return
    os.sync()


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def check_new_output(output: Path) -> None:
    """Before anything is decrypted for `output`: it must be new (no file, folder or symlink
    of that name, dangling or not), in a folder that exists. `place_new` re-checks atomically."""
    from strongroom.errors import StrongroomError

    if output.is_dir():
        raise StrongroomError(f"{output} is a folder: give a file name")
    if output.exists() or output.is_symlink():
        raise StrongroomError(f"{output} exists; nothing is overwritten")
    if not output.parent.is_dir():
        raise StrongroomError(f"cannot write {output}: {output.parent} is not a folder")


@contextlib.contextmanager
def new_private_file(output: Path) -> Iterator[BinaryIO]:
    """A file beside `output` that only this call made (a unique name, O_EXCL, mode 0600,
    never through a symlink someone planted), moved to `output` when the block ends without
    replacing anything there. Removed on any failure; never removes a file it did not make
    (a second command writing the same `output` at the same time keeps its own)."""
    import tempfile

    from strongroom.errors import StrongroomError

    try:
        fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial",
                                    dir=output.parent)
    except OSError as exc:
        raise StrongroomError(f"cannot write {output}: {exc.strerror}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        try:
            _link_or_rename(tmp, output)
        except FileExistsError:
            raise StrongroomError(f"{output} exists; nothing is overwritten") from None
        except OSError as exc:
            raise StrongroomError(f"cannot write {output}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _link_or_rename(tmp: Path, output: Path) -> None:
    """Give `tmp` the name `output` unless that name exists: a hard link fails atomically if
    it does. Filesystems without hard links (a FAT or exFAT stick) get a checked rename."""
    try:
        os.link(tmp, output)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
        if output.exists() or output.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(output)) from None
        os.rename(tmp, output)
