"""`stream_tool`: the streaming way to run a tool, and age running through it.

Real processes throughout (sh, sleep, cat, head, age); whether a process is gone is read from
/proc, and every wait is a poll of the condition, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrage import x25519

from strongroom.errors import IntegrityError, MediaError
from strongroom.export.sinks import TarAgeSink
from strongroom.media.run import _RUNNING, PIPE, kill_running_tools, stream_tool
from strongroom.vault.encryption import decrypt_stream, encrypt_stream
from strongroom.vault.hashing import MultiHash

pytestmark = pytest.mark.skipif(not Path("/proc/self/io").exists(),
                                reason="stall detection reads /proc/PID/io (Linux)")

needs_age = pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _stat(pid: int) -> list[str] | None:
    """state, ppid, pgrp, ... of `pid` (after the command name), None if there is no such
    process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].decode().split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def gone(pid: int) -> bool:
    """Not running any more; a zombie still counts as there (nobody reaped it)."""
    return _stat(pid) is None


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None \
                and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def our_children(name: str) -> list[int]:
    """Our child processes called `name`, zombies (started, never reaped) included."""
    me = str(os.getpid())
    found = []
    for e in os.listdir("/proc"):
        if e.isdigit() and (fields := _stat(int(e))) is not None and fields[1] == me:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{e}/comm").read_text().strip() == name:
                    found.append(int(e))
    return found


def limits(pid: int) -> dict[str, str]:
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:47].strip() for row in rows}


# -- stalls and timeouts -------------------------------------------------------------------------


def test_a_stalled_tool_is_killed_with_its_whole_group() -> None:
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"sh \(stuck\) stalled: no progress for 1 s"), \
            stream_tool(["sh", "-c", "sleep 600 & exec sleep 600"], stall=1.0,
                        what="stuck") as tool:
        pgid = tool.pid
        assert eventually(lambda: len(group_members(pgid)) == 2)
        assert tool.stdout.read() == b""  # EOF only once the whole group is dead
    assert time.monotonic() - started < 10
    assert eventually(lambda: group_members(pgid) == [])
    assert tool.proc not in _RUNNING


def test_a_tool_reading_a_silent_source_is_stalled() -> None:
    """`cat` from a pipe nobody writes to: it waits on someone else, not on us."""
    r, w = os.pipe()
    try:
        with pytest.raises(MediaError, match="stalled"), \
                stream_tool(["cat"], stdin=r, stdout=PIPE, stall=0.5) as tool:
            os.close(r)
            r = -1
            tool.stdout.read()
        assert eventually(lambda: gone(tool.pid))
    finally:
        for fd in (r, w):
            if fd != -1:
                os.close(fd)


def test_a_tool_waiting_on_us_is_not_stalled() -> None:
    """Our slow side — nothing written to its stdin yet, or its output not read — is not the
    tool's stall: a `strongroom cat` into a pager may sit for hours."""
    with stream_tool(["cat"], stdin=PIPE, stdout=PIPE, stall=0.3) as tool:
        assert not eventually(lambda: gone(tool.pid), timeout=1.5)  # > 3 stall periods
        tool.stdin.write(b"late but fine")
        tool.close_stdin()
        assert tool.stdout.read() == b"late but fine"
    with stream_tool(["head", "-c", "4000000", "/dev/zero"], stall=0.3) as tool:
        assert not eventually(lambda: gone(tool.pid), timeout=1.5)  # its pipe is full
        assert len(tool.stdout.read()) == 4_000_000


def test_a_wall_clock_timeout_still_exists_for_bounded_jobs() -> None:
    with pytest.raises(MediaError, match="timed out after 1 s"), \
            stream_tool(["cat"], stdin=PIPE, stdout=PIPE, timeout=1.0, stall=None) as tool:
        tool.stdout.read()


# -- failures are reported, and nothing is left running --------------------------------------------


def test_an_exception_in_the_consumer_kills_the_tool() -> None:
    with pytest.raises(ValueError, match="consumer broke"), \
            stream_tool(["cat", "/dev/zero"]) as tool:
        pid = tool.pid
        assert len(tool.stdout.read(65536)) == 65536
        raise ValueError("consumer broke")
    assert gone(pid)  # killed and reaped before the exception left the block
    assert tool.proc not in _RUNNING


def test_the_tail_of_stderr_is_in_the_error() -> None:
    script = "echo noise >&2; echo 'bad header: not an age file' >&2; exit 3"
    with pytest.raises(MediaError, match=r"sh failed \(exit 3\): noise \| bad header: not an "
                                         r"age file"), stream_tool(["sh", "-c", script]) as tool:
        assert tool.stdout.read() == b""


def test_a_chatty_stderr_never_blocks_the_stream() -> None:
    script = "head -c 3000000 /dev/zero | tr '\\0' x >&2; echo done"
    with stream_tool(["sh", "-c", script]) as tool:
        assert tool.stdout.read() == b"done\n"
    assert 0 < len(tool.stderr()) <= 64 * 1024  # only the tail is kept


def test_a_tool_killed_by_a_signal_is_reported() -> None:
    with pytest.raises(MediaError, match=r"killed by signal SIGTERM"), \
            stream_tool(["sh", "-c", "kill -TERM $$"]) as tool:
        tool.stdout.read()


def test_a_worker_told_to_stop_kills_streaming_tools_too() -> None:
    with pytest.raises(MediaError, match="killed by signal SIGKILL"), \
            stream_tool(["sleep", "600"], stall=None) as tool:
        kill_running_tools()
        assert tool.stdout.read() == b""


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(MediaError, match="no-such-tool-here is not installed"), \
            stream_tool(["no-such-tool-here"]):
        pass


def test_limits_are_in_place_before_the_caller_gets_the_tool() -> None:
    with stream_tool(["cat"], stdin=PIPE, memory=512 * 1024 * 1024) as tool:
        got = limits(tool.pid)
        assert got["Max core file size"] == "0"
        assert got["Max address space"] == str(512 * 1024 * 1024)
        fields = _stat(tool.pid)
        assert fields is not None and fields[2] == str(tool.pid)  # its own process group


def test_a_tool_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A SIGKILLed caller (a pipeline worker killed by the OOM killer) leaves no tool behind,
    even one that would otherwise wait forever."""
    script = textwrap.dedent("""
        import sys
        from strongroom.media.run import stream_tool
        with stream_tool(["sleep", "600"], stall=None) as tool:
            print(tool.pid, flush=True)
            sys.stdin.read()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not gone(pid)
    finally:
        parent.kill()
        parent.wait()
    assert eventually(lambda: gone(pid))


# -- age through it --------------------------------------------------------------------------------


@pytest.fixture
def key() -> tuple[str, str]:
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


@needs_age
def test_age_round_trip_through_the_cli(key: tuple[str, str], tmp_path: Path) -> None:
    identity, recipient = key
    plain = os.urandom(3 * 1024 * 1024 + 17)
    enc = MultiHash()
    with open(tmp_path / "blob", "wb") as out:
        encrypt_stream(io.BytesIO(plain), out, recipient, enc, expected_size=len(plain),
                       binary_threshold=0)
    got = bytearray()
    dec = MultiHash()
    with open(tmp_path / "blob", "rb") as src:
        decrypt_stream(src, identity, got.extend, dec, what="blob x")
    assert bytes(got) == plain
    assert enc.digests().sha256 == dec.digests().sha256 == hashlib.sha256(plain).hexdigest()
    assert our_children("age") == []


@needs_age
def test_decrypting_garbage_is_an_integrity_error(key: tuple[str, str], tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"age-encryption.org/v1\n-> X25519 garbage\n" * 50)
    with open(tmp_path / "blob", "rb") as src, pytest.raises(
            IntegrityError, match=r"^blob x: cannot be decrypted \(ciphertext damaged or not "
                                  r"for this vault\): age: error: "):
        decrypt_stream(src, key[0], None, MultiHash(), what="blob x")
    assert our_children("age") == []


@needs_age
def test_a_full_disk_under_age_is_enospc(key: tuple[str, str]) -> None:
    """The caller turns ENOSPC into 'the blob store is full' (StorageFull)."""
    plain = os.urandom(2 * 1024 * 1024)
    with open("/dev/full", "wb") as out, pytest.raises(OSError) as caught:
        encrypt_stream(io.BytesIO(plain), out, key[1], MultiHash(),
                       expected_size=len(plain), binary_threshold=0)
    assert caught.value.errno == errno.ENOSPC
    assert our_children("age") == []


@needs_age
def test_a_failing_source_kills_age(key: tuple[str, str], tmp_path: Path) -> None:
    class Dying(io.RawIOBase):
        sent = 0

        def read(self, n: int = -1) -> bytes:
            if self.sent > 4 * 1024 * 1024:
                raise OSError(errno.EIO, "Input/output error")
            self.sent += 1024 * 1024
            return b"\0" * (1024 * 1024)

    with open(tmp_path / "blob", "wb") as out, pytest.raises(OSError, match="Input/output"):
        encrypt_stream(Dying(), out, key[1], MultiHash(), expected_size=1 << 30,  # type: ignore[arg-type]
                       binary_threshold=0)
    assert our_children("age") == []


@needs_age
def test_an_aborted_encrypted_export_leaves_no_age_and_no_volume(
        key: tuple[str, str], tmp_path: Path) -> None:
    sink = TarAgeSink(tmp_path, "bag", [key[1]], volume_size=None)
    with sink.open_file("data/a.bin", 3) as write:
        write(b"abc")
    pid = sink.age.pid
    sink.abort()
    assert gone(pid)
    assert list(tmp_path.iterdir()) == []


@needs_age
def test_an_encrypted_export_decrypts_to_the_tar(key: tuple[str, str], tmp_path: Path) -> None:
    sink = TarAgeSink(tmp_path, "bag", [key[1]], volume_size=4096)
    body = os.urandom(10_000)
    with sink.open_file("data/a.bin", len(body)) as write:
        write(body)
    volumes = sink.finish()
    sink.publish()
    assert len(volumes) > 1
    cipher = b"".join((tmp_path / v.name).read_bytes() for v in volumes)
    plain = bytearray()
    (tmp_path / "all.age").write_bytes(cipher)  # the volumes simply concatenate
    with open(tmp_path / "all.age", "rb") as src:
        decrypt_stream(src, key[0], plain.extend, MultiHash(), what="export")
    with tarfile.open(fileobj=io.BytesIO(bytes(plain))) as tar:
        member = tar.extractfile("bag/data/a.bin")
        assert member is not None and member.read() == body
    assert our_children("age") == []
