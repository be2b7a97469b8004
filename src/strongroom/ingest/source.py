"""Walking a source (folder, mounted drive, or one disk-image file) without changing it.

Symlinks are recorded, never followed; special files are reported, never opened; files are
opened with O_NOATIME where allowed so reading them leaves their access times as found.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strongroom.errors import SourceError


@dataclass(frozen=True)
class Entry:
    """One thing found in a source. `error` is set when it cannot be captured."""

    rel_path: str
    path: Path
    kind: str  # file | symlink | disk_image | error
    st: os.stat_result | None = None
    link_target: str | None = None
    error: str | None = None

    @property
    def size(self) -> int:
        return self.st.st_size if self.st is not None and self.kind != "symlink" else 0


def display_path(raw: str) -> str:
    """Names that are not valid UTF-8 (a FAT stick mounted with the wrong charset) are kept
    with their bytes escaped as \\xNN, so they can be stored and still traced back."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def walk(root: Path) -> Iterator[Entry]:
    """Everything under `root` in a stable order; `root` itself may be a single image file."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise SourceError(f"source {root} does not exist") from None
    except OSError as exc:
        raise SourceError(f"source {root} cannot be read: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode):
        if not os.access(root, os.R_OK):
            raise SourceError(f"source {root} cannot be read: permission denied")
        yield Entry(display_path(root.name), root, "disk_image", st)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise SourceError(f"source {root} is neither a folder nor a file")
    try:
        os.listdir(root)
    except OSError as exc:
        raise SourceError(f"source {root} cannot be read: {exc.strerror}") from None
    yield from _walk_dir(root, "")


def _walk_dir(directory: Path, prefix: str) -> Iterator[Entry]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Entry(prefix.rstrip("/") or ".", directory, "error",
                    error=f"folder cannot be read: {exc.strerror}")
        return
    for de in entries:
        rel = display_path(prefix + de.name)
        path = Path(de.path)
        try:
            st = de.stat(follow_symlinks=False)
        except OSError as exc:
            yield Entry(rel, path, "error", error=f"cannot stat: {exc.strerror}")
            continue
        if stat.S_ISLNK(st.st_mode):
            yield Entry(rel, path, "symlink", st, link_target=display_path(os.readlink(path)))
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(path, prefix + de.name + "/")
        elif stat.S_ISREG(st.st_mode):
            yield Entry(rel, path, "file", st)
        else:
            yield Entry(rel, path, "error", st, error="not a regular file (device, fifo or socket)")


def open_source(path: Path) -> int:
    """Open for reading without following a symlink and, if permitted, without touching atime."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass  # O_NOATIME needs file ownership or CAP_FOWNER
    return os.open(path, flags)
