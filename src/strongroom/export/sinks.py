"""Where a bag's files go: a folder, or a tar stream encrypted by `age` and cut into volumes.

Both sinks take files one at a time, streamed in chunks, so neither the archive nor any one
original is ever held in memory. Neither leaves anything that looks complete when the export
fails: the folder is built under a hidden `.NAME.incomplete` name and renamed at the end; the
volumes are written as `NAME.tar.age.NNN.partial` and renamed once `age` has finished.

The encrypted form is the standard one: `cat NAME.tar.age.* | age -d -i KEY | tar x` gives the
bag folder back (`age` and `tar` from any distribution; the volumes simply concatenate).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from strongroom.errors import StorageFull, StrongroomError
from strongroom.fsio import fsync_dir, start_writeback
from strongroom.media.run import PIPE, ToolStream, start_tool
from strongroom.vault.recipients import encrypt_argv

Write = Callable[[bytes], object]
WRITEBACK_EVERY = 16 * 1024 * 1024


class Sink(Protocol):
    """Where a bag goes. `finish` makes it complete and durable under a scratch name;
    `publish` gives it its final name. Between the two the caller records the export, so a
    bag that anyone can find under its name is always on the record (a kill in between
    leaves a recorded bag under the scratch name, which the next export of that name
    removes)."""

    def open_file(self, relpath: str, size: int) -> contextlib.AbstractContextManager[Write]: ...
    def finish(self) -> list[Volume]: ...
    def publish(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True)
class Volume:
    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


def _disk_error(exc: OSError, where: Path) -> StrongroomError:
    if exc.errno == errno.ENOSPC:
        return StorageFull(f"no space left on the device of {where}; the incomplete export "
                           "was removed")
    return StrongroomError(f"cannot write the export to {where}: {exc.strerror or exc}")


class DirSink:
    """A bag folder, built as `.NAME.incomplete` beside its final place."""

    def __init__(self, target: Path) -> None:
        if os.path.lexists(target):  # a link there, even dangling, would be replaced
            raise StrongroomError(f"{target} already exists; choose a new place for the bag")
        self.target = target
        self.tmp = target.with_name(f".{target.name}.incomplete")
        if self.tmp.is_symlink() or (os.path.lexists(self.tmp) and not self.tmp.is_dir()):
            self.tmp.unlink()  # never follow a link planted at our scratch name
        elif self.tmp.exists():
            shutil.rmtree(self.tmp)  # an earlier export of the same name died
        try:
            self.tmp.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise _disk_error(exc, target) from None

    @contextmanager
    def open_file(self, relpath: str, size: int) -> Iterator[Write]:
        path = self.tmp / relpath
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _disk_error(exc, self.target) from None
        with os.fdopen(fd, "wb", buffering=0) as f:
            pending = 0

            def write(data: bytes) -> None:
                nonlocal pending
                view = memoryview(data)
                while view:  # an unbuffered write may write part: a filling disk does
                    n = f.write(view)
                    if not n:
                        raise OSError(errno.ENOSPC, "no space left on device")
                    view = view[n:]
                pending += len(data)
                if pending >= WRITEBACK_EVERY:  # let the disk start now, not at fdatasync
                    start_writeback(fd)
                    pending = 0

            try:
                yield write
                written = f.tell()
                os.fdatasync(fd)
            except OSError as exc:
                raise _disk_error(exc, self.target) from None
        if written != size:
            raise StrongroomError(f"{relpath}: wrote {written} bytes, expected {size}")

    def finish(self) -> list[Volume]:
        for d in sorted({p for p in self.tmp.rglob("*") if p.is_dir()} | {self.tmp},
                        key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)
        return []

    def publish(self) -> None:
        os.rename(self.tmp, self.target)
        fsync_dir(self.target.parent)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _VolumeWriter:
    """Cuts one byte stream into files of at most `volume_size` bytes, hashing each."""

    def __init__(self, out_dir: Path, stem: str, volume_size: int | None) -> None:
        self.out_dir, self.stem, self.volume_size = out_dir, stem, volume_size
        self.volumes: list[Volume] = []
        self.partials: list[Path] = []
        self._f: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = 0

    def _name(self, n: int) -> str:
        return f"{self.stem}.{n:03d}" if self.volume_size else self.stem

    def _open(self) -> BinaryIO:
        path = self.out_dir / (self._name(len(self.volumes) + 1) + ".partial")
        self.partials.append(path)
        self._f = f = open(path, "xb")  # noqa: SIM115 - closed in _close
        self._hash, self._size = hashlib.sha256(), 0
        return f

    def _close(self, f: BinaryIO) -> None:
        f.flush()
        os.fdatasync(f.fileno())
        f.close()
        self._f = None
        self.volumes.append(Volume(self._name(len(self.volumes) + 1), self._size,
                                   self._hash.hexdigest()))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            f = self._f if self._f is not None else self._open()
            room = len(view) if not self.volume_size else self.volume_size - self._size
            part = view[:room]
            f.write(part)
            self._hash.update(part)
            self._size += len(part)
            view = view[len(part):]
            if self.volume_size and self._size >= self.volume_size:
                self._close(f)

    def finish(self) -> list[Volume]:
        f = self._f
        if f is None and not self.volumes:
            f = self._open()  # an empty stream is still one (empty) volume
        if f is not None:
            self._close(f)
        return self.volumes

    def publish(self) -> None:
        for path, vol in zip(self.partials, self.volumes, strict=True):
            os.rename(path, self.out_dir / vol.name)
        fsync_dir(self.out_dir)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
        for path in self.partials:
            path.unlink(missing_ok=True)


class TarAgeSink:
    """`NAME/…` members in a POSIX tar stream, piped through `age -r …`, cut into volumes."""

    def __init__(self, out_dir: Path, name: str, recipients: list[str],
                 volume_size: int | None) -> None:
        argv = encrypt_argv(recipients)
        stem = f"{name}.tar.age"
        if any(p.name.startswith(stem) and not p.name.endswith(".partial")
               for p in out_dir.glob(f"{stem}*")):
            raise StrongroomError(f"{out_dir / stem} already exists; choose a new place")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _disk_error(exc, out_dir) from None
        for stale in out_dir.glob(f"{stem}*.partial"):
            stale.unlink()
        self.name, self.out_dir = name, out_dir
        self.volumes = _VolumeWriter(out_dir, stem, volume_size)
        self.age: ToolStream = start_tool(argv, stdin=PIPE, stdout=PIPE, memory=None,
                                          what="encrypting the export")
        self._reader_error: BaseException | None = None
        self._reader = threading.Thread(target=self._drain, args=(self.age.stdout,),
                                        daemon=True)
        self._reader.start()
        self.mtime = int(time.time())

    def _drain(self, out: BinaryIO) -> None:
        try:
            while chunk := out.read(1024 * 1024):
                self.volumes.write(chunk)
        except BaseException as exc:  # reported by the writing thread
            self._reader_error = exc
            self.age.kill()

    def _put(self, data: bytes) -> None:
        try:
            self.age.stdin.write(data)
        except BrokenPipeError:
            raise self._age_stopped() from None

    def _age_stopped(self) -> StrongroomError:
        """age stopped reading: raises the volume writer's error if it had one (it kills
        age), else returns age's own last words to raise."""
        self._reader.join()  # age is gone or going, so its output ends
        self._raise_reader_error()
        self.age.wait()
        return StrongroomError("age stopped while encrypting the export: "
                               + self.age.stderr().strip())

    def _raise_reader_error(self) -> None:
        if isinstance(self._reader_error, OSError):
            raise _disk_error(self._reader_error, self.out_dir) from None
        if self._reader_error is not None:
            raise self._reader_error

    @contextmanager
    def open_file(self, relpath: str, size: int) -> Iterator[Write]:
        info = tarfile.TarInfo(f"{self.name}/{relpath}")
        info.size, info.mode, info.mtime = size, 0o644, self.mtime
        info.uname = info.gname = ""
        self._put(info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8"))
        written = 0

        def write(data: bytes) -> None:
            nonlocal written
            written += len(data)
            self._put(data)

        yield write
        if written != size:
            raise StrongroomError(f"{relpath}: wrote {written} bytes, expected {size}")
        if size % tarfile.BLOCKSIZE:
            self._put(tarfile.NUL * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE))

    def finish(self) -> list[Volume]:
        self._put(tarfile.NUL * (2 * tarfile.BLOCKSIZE))  # end-of-archive marker
        try:
            self.age.close_stdin()
        except BrokenPipeError:
            raise self._age_stopped() from None
        self._reader.join()
        self._raise_reader_error()
        if self.age.wait() != 0:
            raise StrongroomError("age failed while encrypting the export: "
                                  + self.age.stderr().strip())
        return self.volumes.finish()

    def publish(self) -> None:
        self.volumes.publish()

    def abort(self) -> None:
        self.age.kill()
        self._reader.join(timeout=10)  # before `abort` closes the pipe it reads
        self.age.abort()
        self.volumes.abort()
