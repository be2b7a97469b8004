"""Reading the small files a user names (a passphrase file, a key, a receipt, a certificate).

Each is read with a cap, so that naming `/dev/zero` or a huge file by mistake (or on purpose)
gives one clear error instead of filling the memory of a shared machine.
"""

from __future__ import annotations

from pathlib import Path

from strongroom.errors import StrongroomError


def read_small(path: Path, what: str, limit: int = 1024 * 1024) -> bytes:
    """At most `limit` bytes of `path`. A named pipe no program writes to reads as empty
    instead of waiting forever (opened without blocking; `<(echo ...)` still works: its
    writer is there)."""
    import fcntl
    import os

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        with open(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise StrongroomError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise StrongroomError(f"{path} is larger than any {what} ({limit // 1024} KiB or more)")
    return data
