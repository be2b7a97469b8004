"""Streaming age encryption and decryption, hashing the plaintext in the same single read.

Large files go through Debian's `age` binary (≈1.5× pyrage here) while this process hashes the
same chunks on the other core; small files stay in-process with pyrage, where spawning a
process would cost more than the work. Both write the same age v1 format.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import BinaryIO

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault.hashing import CHUNK, MultiHash, fan_out

_F_SETPIPE_SZ = 1031


def age_binary() -> str | None:
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
    proc = subprocess.Popen(
        [binary, "-r", recipient], stdin=subprocess.PIPE, stdout=out.fileno(),
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    with contextlib.suppress(OSError):  # a bigger pipe means fewer wake-ups; optional
        fcntl.fcntl(proc.stdin.fileno(), _F_SETPIPE_SZ, CHUNK)
    try:
        try:
            fan_out(src.read, [*hasher.updaters(), proc.stdin.write])
            proc.stdin.close()
        except BrokenPipeError:
            pass  # age stopped reading; its exit status and stderr say why
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            if "no space left" in err.lower():
                raise OSError(errno.ENOSPC, "No space left on device")
            raise StrongroomError(f"age failed: {err}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.stderr.close()


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
    # The identity reaches `age` through a pipe, so the secret key never touches a disk.
    r, w = os.pipe()
    try:
        os.write(w, identity_text.encode() + b"\n")
        os.close(w)
        w = -1
        proc = subprocess.Popen(
            [binary, "-d", "-i", f"/dev/fd/{r}"], stdin=src, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(r,),
        )
    finally:
        os.close(r)
        if w != -1:
            os.close(w)
    assert proc.stdout is not None and proc.stderr is not None
    consumers: list[Callable[[bytes], object]] = [*hasher.updaters()]
    if sink is not None:
        consumers.append(sink)
    try:
        fan_out(proc.stdout.read, consumers)
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise IntegrityError(
                f"{what}: cannot be decrypted (ciphertext damaged or not for this vault): "
                f"{err.decode(errors='replace').strip()}"
            )
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()


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
