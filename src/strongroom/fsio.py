"""Filesystem helpers shared by the blob store and the export sinks: write-back hints, one
sync per filesystem, and telling a full disk from other write errors."""

from __future__ import annotations

import ctypes
import errno
import os

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


def syncfs(fd: int) -> None:
    """Flush every dirty page of the filesystem holding `fd`: one call instead of an fsync per
    file and per directory when a batch of small blobs is committed."""
    fn = getattr(_LIBC, "syncfs", None)
    if fn is not None and fn(fd) == 0:
        return
    os.sync()


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
