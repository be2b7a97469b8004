"""Walking a source (folder, mounted drive, or one disk-image file) without changing it.

Symlinks are recorded, never followed; special files are reported, never opened; files are
opened with O_NOATIME where allowed so reading them leaves their access times as found.

File names are bytes on Linux, and a court may ask for the exact name a file had. They are
recorded as text in one reversible scheme (`path_text`, undone by `path_bytes`), so two
different names can never be recorded as one path.
"""

from __future__ import annotations

import os
import stat
import unicodedata
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


# -- names ------------------------------------------------------------------------------
def path_text(raw: bytes) -> str:
    """The recorded form of a raw file name or relative path: injective and reversible.

    Valid UTF-8 is kept as it is, except that a backslash is doubled (`\\\\`); every byte that
    is not part of valid UTF-8 (a FAT stick mounted with the wrong charset) becomes `\\xNN`
    (always NN ≥ 80). So a literal `clip\\xff.mp4` and `clip<byte FF>.mp4` stay two paths, and
    `path_bytes` gives the exact bytes back. Names are never Unicode-normalised: an NFC and an
    NFD spelling of the same word are different files on Linux and stay different paths.

    Existing vaults: before this scheme a backslash was not doubled. Every plain UTF-8 name
    without a backslash, and every non-UTF-8 name without one, is recorded exactly as before,
    so re-ingesting an old acquisition still recognises those files. A name that holds a
    backslash is now recorded in the new form: re-ingesting such an old acquisition sights that
    file once more under its unambiguous path (same original, no new blob; the old sighting
    stays, and its custody event with it).
    """
    # 0x5C never occurs inside a multi-byte UTF-8 sequence, so doubling it in the bytes does not
    # change which bytes are valid UTF-8; the decoder then escapes exactly the invalid ones.
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def path_bytes(text: str) -> bytes:
    """The exact raw bytes of a name recorded by `path_text` (raises ValueError otherwise)."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        j = text.find("\\", i)
        if j < 0:
            out += text[i:].encode("utf-8")
            break
        out += text[i:j].encode("utf-8")
        if text.startswith("\\\\", j):
            out += b"\\"
            i = j + 2
            continue
        digits = text[j + 2:j + 4]
        if (text.startswith("\\x", j) and len(digits) == 2
                and all(c in "0123456789abcdef" for c in digits) and int(digits, 16) >= 0x80):
            out.append(int(digits, 16))
            i = j + 4
            continue
        raise ValueError(f"not a recorded path: stray backslash at {j} in {text!r}")
    return bytes(out)


def legacy_path_text(raw: bytes) -> str:
    """The form recorded before `path_text` (backslashes not doubled): only to recognise what
    an older vault recorded, never to record anything new."""
    return raw.decode("utf-8", "backslashreplace")


def shown(text: str) -> str:
    """A recorded path made safe for a terminal: control and format characters (an escape
    sequence, a right-to-left override in a file name) are shown as `\\xNN` (below 0x80) or
    `\\uNNNN`, so a name cannot repaint the screen or disguise itself. These escapes cannot
    be mistaken for the recorded `\\xNN` of a non-UTF-8 byte, which is always 0x80 or above."""
    out = []
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf"):
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


# -- opening paths of any length --------------------------------------------------------
#: Paths longer than this are opened in pieces, each well under Linux's PATH_MAX (4096).
_CHUNK = 3072
_DIR_FLAGS = os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)


def open_long(path: str | bytes | Path, flags: int, mode: int = 0o777) -> int:
    """`os.open` for a path of any length. A source nested a thousand folders deep has paths
    beyond PATH_MAX (ENAMETOOLONG); they are opened one piece at a time relative to the folder
    opened before, so every file of such a source can still be read."""
    raw = os.fsencode(path)
    if len(raw) < _CHUNK:
        return os.open(raw, flags, mode)
    parts = raw.split(b"/")
    dir_fd: int | None = None
    piece: list[bytes] = []
    try:
        for part in parts[:-1]:
            if piece and len(b"/".join([*piece, part])) >= _CHUNK:
                fd = os.open(b"/".join(piece), _DIR_FLAGS, dir_fd=dir_fd)
                if dir_fd is not None:
                    os.close(dir_fd)
                dir_fd, piece = fd, []
            piece.append(part)
        piece.append(parts[-1])
        return os.open(b"/".join(piece), flags, mode, dir_fd=dir_fd)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


# -- walking ----------------------------------------------------------------------------
def walk(root: Path, *, avoid: frozenset[tuple[int, int]] = frozenset()) -> Iterator[Entry]:
    """Everything under `root` in a stable order; `root` itself may be a single image file.
    A folder whose (st_dev, st_ino) is in `avoid` (the vault, mounted inside the source) is
    reported as an error entry and not entered."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise SourceError(f"source {root} does not exist") from None
    except OSError as exc:
        raise SourceError(f"source {root} cannot be read: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode):
        if not os.access(root, os.R_OK):
            raise SourceError(f"source {root} cannot be read: permission denied")
        yield Entry(path_text(os.fsencode(root.name)), root, "disk_image", st)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise SourceError(f"source {root} is neither a folder nor a file")
    try:
        os.listdir(root)
    except OSError as exc:
        raise SourceError(f"source {root} cannot be read: {exc.strerror}") from None
    yield from _walk_tree(os.fsencode(root), avoid)


@dataclass(frozen=True)
class _Folder:
    rel: bytes
    path: bytes
    st: os.stat_result


def _walk_tree(root: bytes, avoid: frozenset[tuple[int, int]]) -> Iterator[Entry]:
    """Depth-first, each folder's entries sorted by name, with an explicit stack instead of
    recursion: a source nested thousands of folders deep (a DVR export tool gone wrong, or a
    hostile stick) is walked like any other, without RecursionError."""
    stack = [iter(_list_folder(root, b""))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, _Folder):
            if (item.st.st_dev, item.st.st_ino) in avoid:
                yield Entry(path_text(item.rel), Path(os.fsdecode(item.path)), "error", item.st,
                            error="this folder is the vault itself (mounted here); not ingested")
            else:
                stack.append(iter(_list_folder(item.path, item.rel + b"/")))
        else:
            yield item


def _list_folder(directory: bytes, prefix: bytes) -> list[Entry | _Folder]:
    """One folder's entries, sorted by name (as str, the order ingest has always used). The
    folder is opened once and everything in it is stat'ed and read relative to that handle, so
    the length of the path above does not matter, and only one handle is open at a time."""
    try:
        fd = open_long(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return [_folder_error(directory, prefix, exc)]
    try:
        try:
            with os.scandir(fd) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            return [_folder_error(directory, prefix, exc)]
        out: list[Entry | _Folder] = []
        for de in found:
            name = os.fsencode(de.name)
            rel_raw = prefix + name
            full = directory + b"/" + name
            rel, path = path_text(rel_raw), Path(os.fsdecode(full))
            try:
                st = de.stat(follow_symlinks=False)
            except OSError as exc:
                out.append(Entry(rel, path, "error", error=f"cannot stat: {exc.strerror}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(name, dir_fd=fd)
                except OSError as exc:
                    out.append(Entry(rel, path, "error", st,
                                     error=f"cannot read the symlink: {exc.strerror}"))
                    continue
                out.append(Entry(rel, path, "symlink", st, link_target=path_text(target)))
            elif stat.S_ISDIR(st.st_mode):
                out.append(_Folder(rel_raw, full, st))
            elif stat.S_ISREG(st.st_mode):
                out.append(Entry(rel, path, "file", st))
            else:
                out.append(Entry(rel, path, "error", st,
                                 error="not a regular file (device, fifo or socket)"))
        return out
    finally:
        os.close(fd)


def _folder_error(directory: bytes, prefix: bytes, exc: OSError) -> Entry:
    rel = path_text(prefix.rstrip(b"/")) or "."
    return Entry(rel, Path(os.fsdecode(directory)), "error",
                 error=f"folder cannot be read: {exc.strerror}")


def open_source(path: Path) -> int:
    """Open for reading without following a symlink and, if permitted, without touching atime."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return open_long(path, flags | noatime)
        except PermissionError:
            pass  # O_NOATIME needs file ownership or CAP_FOWNER
    return open_long(path, flags)
