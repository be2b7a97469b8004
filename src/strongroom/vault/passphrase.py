"""Sealing and unsealing with a passphrase through the `age` CLI, at a fixed scrypt cost.

Why not pyrage's passphrase mode: rage calibrates the scrypt work factor to about a second on the
machine that seals (2^19–2^20 here, ≈1.1 GB of RSS to open), and on decrypt refuses any factor
more than 16× what *this* machine measures *right now*. A vault sealed on a quiet machine then
failed to open on a loaded one (2 times in 5 with 16 busy loops) or on a slower laptop, with an
error that read like a wrong passphrase.

The reference `age` CLI seals with a fixed, documented work factor, 2^18 (256 MiB, ≈0.3–0.5 s on
one core), and opens anything up to 2^22 whatever the load. It reads passphrases only from a
terminal, so it gets one: a pseudo-terminal that is its controlling terminal (`setsid --ctty`),
on which we answer its prompts. The passphrase travels only through that pty; the data through
pipes; nothing touches the disk. The files are ordinary age files: `age -d keys.age` opens them.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import threading
import time

from strongroom.errors import StrongroomError, UnsealTooCostly, WrongPassphrase

#: The work factor `age -p` uses (log2 N of scrypt); documented in README and DESIGN notes.
SEAL_WORK_FACTOR = 18
#: The largest work factor the `age` CLI accepts when opening (its built-in limit).
MAX_WORK_FACTOR = 22
_TIMEOUT = 120.0


def typable(passphrase: str) -> bool:
    """Whether a terminal passes the passphrase through unchanged: control characters (^C, ^U,
    DEL, newlines, …) are edited or turned into signals by the terminal age reads from."""
    return len(passphrase) < 1024 and not any(ord(c) < 32 or ord(c) == 127 for c in passphrase)


def seal(data: bytes, passphrase: str) -> bytes:
    """`data` encrypted under `passphrase` (age scrypt recipient, work factor 2^18)."""
    if not passphrase:
        raise StrongroomError("the passphrase must not be empty")
    if not typable(passphrase):
        raise StrongroomError("a passphrase may not hold control characters or newlines, nor "
                              "be longer than 1,023 characters")
    out, err, code = _age(["--passphrase"], data, passphrase, prompts=2)
    if code != 0 or not out.startswith(b"age-encryption.org/v1\n"):
        raise StrongroomError(f"age could not seal the keys: {_last_line(err)}")
    return out


def unseal(sealed: bytes, passphrase: str, what: str = "keys.age") -> bytes:
    """The plaintext of an age file sealed with a passphrase. Distinguishes a wrong passphrase
    from a damaged file and from a work factor beyond what age accepts."""
    if not passphrase:
        raise WrongPassphrase("the passphrase is empty")
    if not sealed.startswith(b"age-encryption.org/v1\n") or b"\n-> scrypt " not in sealed:
        raise StrongroomError(
            f"{what} is not a passphrase-sealed age file (damaged or replaced): restore it from "
            "a backup")
    factor = _work_factor(sealed)
    if factor is not None and factor > MAX_WORK_FACTOR:
        raise UnsealTooCostly(
            f"{what} needs scrypt work factor 2^{factor}, more than age accepts "
            f"(2^{MAX_WORK_FACTOR}); the passphrase was not checked")
    out, err, code = _age(["--decrypt"], sealed, passphrase, prompts=1)
    if code == 0:
        return out
    why = _last_line(err)
    if "incorrect passphrase" in why:
        raise WrongPassphrase("wrong passphrase: the vault's keys did not unlock")
    if "work factor" in why:
        raise UnsealTooCostly(f"{what}: {why}; the passphrase was not checked")
    raise StrongroomError(f"{what} is damaged ({why}): restore it from a backup")


def _work_factor(sealed: bytes) -> int | None:
    line = sealed.split(b"\n", 2)[1]
    parts = line.split(b" ")
    try:
        return int(parts[3]) if len(parts) == 4 else None
    except ValueError:
        return None


def _last_line(err: bytes) -> str:
    lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("age: error: ")]
    text = (errors or lines or ["no message"])[-1]
    return text.removeprefix("age: error: ").removeprefix("age: ")


def _age(args: list[str], data: bytes, passphrase: str, *, prompts: int
         ) -> tuple[bytes, bytes, int]:
    """Run `age ARGS /dev/fd/N` with `data` on a pipe and a pty as its terminal, answering
    `prompts` passphrase prompts. Returns (stdout, stderr, exit code)."""
    age = shutil.which("age")
    setsid = shutil.which("setsid")
    if age is None or setsid is None:
        raise StrongroomError("the `age` and `setsid` commands are needed to open the vault's "
                              "keys (Debian: apt install age util-linux)")
    master, slave = pty.openpty()
    data_r, data_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [setsid, "--ctty", "--wait", age, *args, f"/dev/fd/{data_r}"],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(data_r,),
            close_fds=True,
            # not our environment: it may hold STRONGROOM_PASSPHRASE, readable in /proc
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"})
    except OSError as exc:
        for fd in (master, slave, data_r, data_w):
            os.close(fd)
        raise StrongroomError(f"cannot start age: {exc.strerror}") from None
    os.close(data_r)
    result: dict[str, bytes] = {}

    def feed() -> None:
        try:
            _write_all(data_w, data)
        except OSError:
            pass  # age stopped reading (a bad header): its stderr says why
        finally:
            os.close(data_w)

    def collect() -> None:
        result["out"], result["err"] = proc.communicate()

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=collect, daemon=True)]
    for t in threads:
        t.start()
    try:
        _answer(master, proc, passphrase, prompts)
        threads[1].join(_TIMEOUT)
        if threads[1].is_alive():
            proc.kill()
            raise StrongroomError("age did not finish within "
                                  f"{_TIMEOUT:.0f} s while opening the keys")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
    return result.get("out", b""), result.get("err", b""), proc.returncode


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _answer(master: int, proc: subprocess.Popen[bytes], passphrase: str, prompts: int) -> None:
    """Type the passphrase at each prompt age writes on its terminal ("...passphrase...: ")."""
    answered, seen = 0, b""
    deadline = time.monotonic() + _TIMEOUT
    while answered < prompts and proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            continue
        try:
            seen += os.read(master, 4096)
        except OSError:
            return
        if seen.rstrip().endswith(b":"):
            os.write(master, passphrase.encode("utf-8") + b"\r")
            answered += 1
            seen = b""
