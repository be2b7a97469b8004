"""Streaming age encryption and decryption, hashing the plaintext in the same single read.

Large files go through Debian's `age` binary (≈1.5× pyrage here) while this process hashes the
same chunks on the other core; small files stay in-process with pyrage, where spawning a
process would cost more than the work. Both write the same age v1 format. The binary runs
through `media.run.stream_tool` like every other tool (process group, no core dumps, killed
when it stalls or when we fail), without an address-space limit: the Go runtime reserves
~1 GB of address space while age itself uses ~5 MB.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Callable
from typing import BinaryIO

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.media.run import PIPE, stream_tool
from strongroom.vault.hashing import CHUNK, MultiHash, fan_out

_F_SETPIPE_SZ = 1031


def age_binary() -> str | None:
    """The `age` command, or None: the one place Strongroom looks for it."""
    return shutil.which("age")


class _HashingReader:
    """A reader for pyrage that hashes what it hands over (one read feeds both).

    pyrage turns any exception raised inside `read`/`write` into its own EncryptError, which
    would hide a source read error or a full disk; the original is kept in `error`."""

    def __init__(self, src: BinaryIO, hasher: MultiHash) -> None:
        self._src, self._hasher = src, hasher
        self.error: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._src.read(n if n and n > 0 else CHUNK)
        except BaseException as exc:
            self.error = exc
            raise
        if data:
            self._hasher.update(data)
        return data


class _GuardedWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._out.write(data)
        except BaseException as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._out.flush()


def encrypt_stream(
    src: BinaryIO,
    out: BinaryIO,
    recipient: str,
    hasher: MultiHash,
    *,
    expected_size: int,
    binary_threshold: int,
) -> None:
    """Encrypt `src` to `out` for `recipient`, feeding every plaintext byte to `hasher`."""
    binary = age_binary() if expected_size >= binary_threshold else None
    if binary is None:
        import pyrage
        from pyrage import x25519

        reader, writer = _HashingReader(src, hasher), _GuardedWriter(out)
        try:
            pyrage.encrypt_io(reader, writer, [x25519.Recipient.from_str(recipient)])
        except pyrage.EncryptError:
            raise (reader.error or writer.error or StrongroomError("age encryption failed")) \
                from None
        return
    out.flush()
    with stream_tool([binary, "-r", recipient], stdin=PIPE, stdout=out.fileno(), memory=None,
                     what="encrypting", check=False) as age:
        with contextlib.suppress(OSError):  # a bigger pipe means fewer wake-ups; optional
            fcntl.fcntl(age.stdin.fileno(), _F_SETPIPE_SZ, CHUNK)
        try:
            fan_out(src.read, [*hasher.updaters(), age.stdin.write])
            age.close_stdin()
        except BrokenPipeError:
            pass  # age stopped reading; its exit status and stderr say why
        if age.wait() != 0:
            err = age.stderr().strip()
            if "no space left" in err.lower():
                raise OSError(errno.ENOSPC, "No space left on device")
            raise StrongroomError(f"age failed: {err}")


def decrypt_stream(
    src: BinaryIO,
    identity_text: str,
    sink: Callable[[bytes], object] | None,
    hasher: MultiHash,
    *,
    what: str,
) -> None:
    """Decrypt `src`, hashing the plaintext and passing it to `sink` (None: hash only)."""
    binary = age_binary()
    if binary is None:
        _decrypt_pyrage(src, identity_text, sink, hasher, what=what)
        return
    consumers: list[Callable[[bytes], object]] = [*hasher.updaters()]
    if sink is not None:
        consumers.append(sink)
    # The identity reaches `age` through a pipe, so the secret key never touches a disk; it is
    # written only once age runs under its limits (no core dump can hold it).
    r, w = os.pipe()
    feed = _Feed(src) if not _has_fd(src) else None  # an S3 object: fed through a pipe
    try:
        with stream_tool([binary, "-d", "-i", f"/dev/fd/{r}"],
                         stdin=feed.read_end if feed is not None else src, stdout=PIPE,
                         pass_fds=(r,), memory=None, what=what, check=False) as age:
            os.close(r)
            r = -1
            if feed is not None:
                feed.start()
            with contextlib.suppress(BrokenPipeError):  # age stopped first: its stderr says why
                _write_all(w, identity_text.encode() + b"\n")
            os.close(w)
            w = -1
            fan_out(age.stdout.read, consumers)
            if feed is not None:
                feed.finish()  # an error reading the store is the error, not age's
            if age.wait() != 0:
                raise IntegrityError(
                    f"{what}: cannot be decrypted (ciphertext damaged or not for this vault): "
                    f"{age.stderr().strip()}"
                )
    finally:
        for fd in (r, w):
            if fd != -1:
                os.close(fd)
        if feed is not None:
            feed.close()


def _has_fd(src: BinaryIO) -> bool:
    try:
        src.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return True


class _Feed:
    """A file object with no descriptor (an S3 object) copied into a pipe by a thread, for a
    child process to read as its stdin; what went wrong reading it is raised by `finish`."""

    def __init__(self, src: BinaryIO) -> None:
        import threading

        self.src = src
        self.read_end, self._write_end = os.pipe()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="feed-age", daemon=True)

    def start(self) -> None:
        os.close(self.read_end)  # the child has its copy
        self.read_end = -1
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := self.src.read(CHUNK):
                _write_all(self._write_end, chunk)
        except BrokenPipeError:
            pass  # the child stopped reading: its own error says why
        except BaseException as exc:
            self.error = exc
        finally:
            os.close(self._write_end)
            self._write_end = -1

    def finish(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self._thread.is_alive():
            self._thread.join(60)
        for fd in (self.read_end, self._write_end):
            if fd != -1:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _decrypt_pyrage(
    src: BinaryIO,
    identity_text: str,
    sink: Callable[[bytes], object] | None,
    hasher: MultiHash,
    *,
    what: str,
) -> None:
    import pyrage
    from pyrage import x25519

    class _Writer:
        def write(self, data: bytes) -> int:
            hasher.update(data)
            if sink is not None:
                sink(data)
            return len(data)

    try:
        pyrage.decrypt_io(src, _Writer(), [x25519.Identity.from_str(identity_text)])
    except pyrage.DecryptError as exc:
        raise IntegrityError(
            f"{what}: cannot be decrypted (ciphertext damaged or not for this vault): {exc}"
        ) from None


def decrypt_bytes(ciphertext: bytes, identity: object, *, what: str) -> bytes:
    """Decrypt one small blob in memory (a chunk of a proxy: `vault/chunks.py`) with pyrage:
    no process to start, no plaintext on any disk. `identity` is a pyrage x25519 identity."""
    import pyrage

    try:
        plain: bytes = pyrage.decrypt(ciphertext, [identity])
    except pyrage.DecryptError as exc:
        raise IntegrityError(
            f"{what}: cannot be decrypted (ciphertext damaged or not for this vault): {exc}"
        ) from None
    return plain
