"""Private scratch dirs that tell a live owner from a dead one.

A process holds an flock on a lock file inside each dir it works in (blob staging, pipeline
work dirs). The kernel drops the lock when the process dies, however it dies, so a later run
can remove exactly the dirs that no live process holds — and with them any plaintext or
half-written blob a SIGKILL left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path


def hold(path: Path, lock_name: str) -> int:
    """Take the lock of dir `path` (creating its lock file); returns the fd that holds it."""
    fd = os.open(path / lock_name, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def remove_if_abandoned(path: Path, lock_name: str, *, grace: float = 0.0,
                        before: Callable[[Path], None] | None = None) -> bool:
    """Remove dir `path` unless a live process holds its lock. A dir with no lock file yet is
    removed only when older than `grace` seconds (its owner may be about to take the lock).
    `before` is called with `path` just before removal, the lock held: a chance to read what
    the dead owner left (e.g. which task it was doing)."""
    try:
        fd: int | None = os.open(path / lock_name, os.O_RDWR)
    except FileNotFoundError:
        if grace:
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime < grace:
                    return False
        fd = None
    except OSError:
        return False
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        if before is not None:
            before(path)
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        if fd is not None:
            os.close(fd)
