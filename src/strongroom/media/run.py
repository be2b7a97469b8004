"""The one way Strongroom runs an external binary (ffmpeg, ffprobe, tesseract, ...).

Every call gets a wall-clock timeout, CPU-time and address-space limits (a hostile or broken
file must not hang or exhaust the machine), its own process group (a timeout kills ffmpeg's
helpers too), and keeps the tail of stderr for the error message. The exact argv is returned
so that derivatives can record the command line that made them. On Linux a tool also dies with
the process that started it (a parent-death signal): a SIGKILLed pipeline worker must not leave
an ffmpeg behind that still reads the plaintext.

`run_tool` is for a call with a bounded job (probe a file, render a proxy): output captured,
wall-clock timeout. `stream_tool` is for a tool the caller streams through (age encrypting an
original of any size): its pipes are handed over, and instead of a timeout — wrong for a
stream of unbounded length — it is killed when it *stalls*: no I/O of its own for `stall`
seconds while it is not waiting on us (see `ToolStream`).

A tool that parses an original (ffprobe, ffmpeg) is called with `isolate=True`: it also runs in
a new, empty network namespace (`leave_network`) and a private 0700 dir of its own, with a
file-size limit. In-process decoders (PyAV) get the same and more from `media/sandbox.py`.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from strongroom.errors import MediaError

#: Defaults for one call; large enough for a multi-hour 1080p clip, small enough to stop a bomb.
DEFAULT_TIMEOUT = 3600.0
#: No call waits longer than a week, whatever a caller computed from a header (a timeout of
#: ~10^10 s overflows the OS's timers: found by the fuzz campaign).
MAX_TIMEOUT = 7 * 86400.0
DEFAULT_MEMORY = 4 * 1024**3
#: A streaming tool that does no I/O for this long, while not waiting on us, is stuck.
DEFAULT_STALL = 120.0
_STDERR_TAIL = 4000
#: How much of a streaming tool's stderr is kept (age writes one line; ffmpeg may write MBs).
_STDERR_KEEP = 64 * 1024
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER = 0x10000000  # <linux/sched.h>
_CLONE_NEWNET = 0x40000000

#: Tools running now, so that a worker told to stop can kill them before it exits.
_RUNNING: set[subprocess.Popen[bytes]] = set()
#: Process groups of sandboxed children running now (`media/sandbox.py`), for the same reason.
_GROUPS: set[int] = set()
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class ToolResult:
    argv: list[str]
    stdout: bytes
    stderr: str
    seconds: float
    extra: dict[str, object] = field(default_factory=dict)


def which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MediaError(f"{name} is not installed (Debian: apt install ffmpeg)")
    return path


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded in the parent: loading a library in a child between fork and exec
    could deadlock on the loader's lock."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return fn


_PRCTL = _load_prctl()


def die_with_parent(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux
    `PR_SET_PDEATHSIG`); False where that is not available. The signal follows the *thread*
    that created the process, so callers must keep that thread alive as long as the child —
    true of `run_tool` (it waits) and of the pipeline's process pool (spawned by the thread
    that calls `process`, which shuts the pool down before it returns). The parent may be
    gone already: callers re-check `os.getppid()` right after."""
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _load_unshare() -> Callable[..., int] | None:
    """libc's unshare, loaded in the parent like `prctl`. (`os.unshare` is Python 3.12.)"""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None
    return fn


_UNSHARE = _load_unshare()


def leave_network() -> str:
    """Move the calling process into a new, empty network namespace (its only interface,
    loopback, is down: even 127.0.0.1 is unreachable). Returns how: `netns` (root), or
    `userns+netns` (no root, but unprivileged user namespaces are allowed), or `none: <why>`
    when the kernel refused both — the process then keeps the network, and callers report it
    (best effort). For a freshly forked child: a new user namespace needs a single thread."""
    if _UNSHARE is None:
        return "none: unshare(2) is not available here"
    if _UNSHARE(_CLONE_NEWNET) == 0:
        return "netns"
    first = ctypes.get_errno()
    if _UNSHARE(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        return "userns+netns"
    second = ctypes.get_errno()
    return (f"none: unshare(CLONE_NEWNET) {errno.errorcode.get(first, first)}, with a user "
            f"namespace {errno.errorcode.get(second, second)}")


def no_new_privileges() -> bool:
    """No setuid binary, file capability or LSM transition can raise this process's (or its
    descendants') privileges from now on (Linux `PR_SET_NO_NEW_PRIVS`)."""
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


def kill_running_tools() -> None:
    """SIGKILL every tool and sandboxed child this process is running now (a worker that must
    stop at once)."""
    with _RUNNING_LOCK:
        groups = [p.pid for p in _RUNNING] + list(_GROUPS)
    for pid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def track_group(pid: int) -> None:
    """Remember the process group of a child that `kill_running_tools` must kill."""
    with _RUNNING_LOCK:
        _GROUPS.add(pid)


def untrack_group(pid: int) -> None:
    with _RUNNING_LOCK:
        _GROUPS.discard(pid)


def _limits(cpu_seconds: int | None, memory: int | None, file_size: int | None = None,
            isolate: bool = False) -> None:  # pragma: no cover - child
    die_with_parent(signal.SIGKILL)
    if isolate:
        leave_network()  # best effort where refused: `sandbox.isolation()` reports it
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if file_size is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump plaintext frames


def _child_environment() -> dict[str, str]:
    """Our environment less the passphrase (see `Settings`); imported when first needed, so a
    pipeline worker pays for pydantic only once it runs a tool."""
    from strongroom.settings import child_environment

    return child_environment()


def run_tool(
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cpu_seconds: int | None = None,
    memory: int | None = DEFAULT_MEMORY,
    cwd: Path | None = None,
    what: str = "",
    isolate: bool = False,
    file_size: int | None = None,
) -> ToolResult:
    """Run `argv`, returning its stdout; any failure is a `MediaError` with stderr's tail.

    `isolate` is for a tool that parses an original (ffprobe, ffmpeg): it also runs with no
    network (`leave_network`) in a private 0700 dir of its own (its cwd unless `cwd` is
    given), removed afterwards. `file_size` caps every file it writes (RLIMIT_FSIZE)."""
    if isolate and cwd is None:
        from strongroom.media.sandbox import private_dir

        with private_dir(None, "strongroom-tool-") as box:
            return run_tool(argv, timeout=timeout, cpu_seconds=cpu_seconds, memory=memory,
                            cwd=box, what=what, isolate=True, file_size=file_size)
    name = Path(argv[0]).name
    label = f"{name}{f' ({what})' if what else ''}"
    timeout = min(timeout, MAX_TIMEOUT)  # beyond it the OS's own timers overflow
    if cpu_seconds is None:
        cpu_seconds = int(timeout * (os.cpu_count() or 1)) + 10
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, start_new_session=True, env=_child_environment(),
            preexec_fn=lambda: _limits(cpu_seconds, memory, file_size, isolate),
        )
    except FileNotFoundError:
        raise MediaError(f"{name} is not installed") from None
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise MediaError(f"{label} timed out after {timeout:.0f} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    stderr = err.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise MediaError(f"{label} failed ({_why(proc.returncode)}): {_tail(stderr)}")
    return ToolResult(argv=list(argv), stdout=out, stderr=stderr[-_STDERR_TAIL:],
                      seconds=time.perf_counter() - started)


def _why(returncode: int) -> str:
    if returncode >= 0:
        return f"exit {returncode}"
    try:
        why = f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        why = f"killed by signal {-returncode}"
    if returncode == -signal.SIGXCPU:
        why += " (CPU time limit)"
    elif returncode == -signal.SIGXFSZ:
        why += " (file size limit)"
    return why


def _tail(stderr: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-_STDERR_TAIL:] or "no error output"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- streaming -----------------------------------------------------------------------------

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
#: What a stream's stdin or stdout may be: PIPE (the handle gets our end), DEVNULL, an open
#: file descriptor, or an open binary file.
Stdio = int | IO[bytes]


@functools.cache
def _setpriv() -> str | None:
    """util-linux's `setpriv`, which sets the parent-death signal in the child and execs the
    tool. Going through it keeps Popen on its vfork path: any `preexec_fn` forces a full
    fork(), measured here at 10.7 ms per age call from a 100 MB process and 26 ms from a
    400 MB one, against 3.6 ms with vfork and 4.5 ms with vfork + setpriv — per file of an
    ingest, so the difference is real."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("setpriv")


def _await_exec(pid: int, setpriv: str, timeout: float = 2.0) -> None:
    """Return once `setpriv` has set the parent-death signal and exec'd the tool (the child's
    executable is no longer setpriv), or the child is gone. Until then a caller killed (a
    worker the OOM killer picks, the moment after starting a tool) would leave the tool
    running with no one to stop it."""
    import time

    own = os.path.realpath(setpriv)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{pid}/exe") != own:
                return
        except OSError:  # exited (or a zombie): nothing left running
            return
        time.sleep(0.0005)


def _set_limits(pid: int, cpu_seconds: int | None, memory: int | None) -> None:
    """The same limits as `_limits`, applied from outside with prlimit(2) (the child is
    already running: the caller must not hand it anything secret before this returns)."""
    resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds is not None:
        resource.prlimit(pid, resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if memory is not None:
        resource.prlimit(pid, resource.RLIMIT_AS, (memory, memory))


def _pipe_bytes(f: IO[bytes] | None) -> int | None:
    """Bytes waiting in the pipe behind `f` (either end), None if `f` is gone or not a pipe.
    Called from the watchdog thread while the caller may close `f`: at worst the ioctl reaches
    a descriptor number reused meanwhile, and FIONREAD only reads a count."""
    if f is None or f.closed:
        return None
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(f.fileno(), termios.FIONREAD, buf, True)
    except (OSError, ValueError):
        return None
    return buf[0]


def _io_sample(pid: int) -> object:
    """What changes while process `pid` makes progress: the bytes it has read and written
    (any file, pipe or socket; /proc/PID/io). A process in uninterruptible disk wait ('D':
    a slow device, waiting in the kernel) or already exited ('Z') is never stalled: a fresh
    object is returned, unequal to any earlier sample. None: cannot tell (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        if state in (b"D", b"Z"):
            return object()
        with open(f"/proc/{pid}/io", "rb") as f:
            counters = f.read()
    except (OSError, IndexError):
        return None
    return b"\n".join(ln for ln in counters.splitlines() if ln.startswith((b"rchar", b"wchar")))


class ToolStream:
    """A running tool whose stdin and/or stdout the caller streams through.

    Made by `stream_tool` (or `start_tool` when its life does not fit one `with` block). A
    watchdog thread drains stderr (keeping the tail, so a chatty tool never blocks on it) and
    kills the tool's process group if it exceeds `timeout` or stalls: its read and write
    counters unchanged for `stall` seconds while it is not waiting on us — our end of its
    stdin pipe empty (we have not written) or its stdout pipe holding output we have not read
    means the slow side is ours (a slow source, a `strongroom cat` into a pager), not the
    tool's. No per-chunk work: the caller reads and writes the pipes directly.
    """

    def __init__(self, proc: subprocess.Popen[bytes], label: str, *, stall: float | None,
                 timeout: float | None) -> None:
        self.proc, self.label = proc, label
        self._stall, self._timeout = stall, timeout
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()
        self._killed_because: str | None = None
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                          name=f"watch {label}")
        self._watchdog.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdin(self) -> IO[bytes]:
        """Our end of the tool's stdin (only with `stdin=PIPE`)."""
        if self.proc.stdin is None:
            raise MediaError(f"{self.label}: stdin was not opened as a pipe")
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """Our end of the tool's stdout (only with `stdout=PIPE`)."""
        if self.proc.stdout is None:
            raise MediaError(f"{self.label}: stdout was not opened as a pipe")
        return self.proc.stdout

    def stderr(self) -> str:
        """What the tool wrote to stderr so far (its last 64 KiB); complete after `wait`."""
        with self._stderr_lock:
            return self._stderr.decode("utf-8", errors="replace")

    def close_stdin(self) -> None:
        """Send end-of-file. BrokenPipeError if the tool stopped reading with data still in
        our buffer (its exit status then says why)."""
        f = self.proc.stdin
        if f is not None and not f.closed:
            try:
                f.close()
            except BrokenPipeError:
                with contextlib.suppress(OSError):
                    f.close()
                raise

    def kill(self) -> None:
        """SIGKILL the tool's whole process group now; safe from any thread. The caller still
        calls `wait` or `abort` to reap it."""
        if self.proc.returncode is None:  # not reaped: the group id is still ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Close our ends of the pipes, wait for the exit and return its status. Raises
        `MediaError` if the watchdog killed the tool. Call it once done with the pipes: output
        not read by then is lost (the tool gets EPIPE rather than waiting forever)."""
        with contextlib.suppress(BrokenPipeError):
            self.close_stdin()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            returncode = self.proc.wait()
        finally:
            self._stop()
        if self._killed_because is not None:
            raise MediaError(f"{self.label} {self._killed_because}: {_tail(self.stderr())}")
        return returncode

    def check(self) -> None:
        """`wait`, and a `MediaError` with the tail of stderr unless the exit status is 0."""
        returncode = self.wait()
        if returncode != 0:
            raise MediaError(f"{self.label} failed ({_why(returncode)}): {_tail(self.stderr())}")

    def abort(self) -> None:
        """Kill the group, reap it and release everything; never raises (a failure path)."""
        self.kill()
        with contextlib.suppress(Exception):
            self.wait()
        self._stop()

    def _stop(self) -> None:
        self._done.set()
        if self._watchdog is not threading.current_thread():
            self._watchdog.join()
        with _RUNNING_LOCK:
            _RUNNING.discard(self.proc)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()

    def _keep(self, data: bytes) -> None:
        with self._stderr_lock:
            self._stderr += data
            del self._stderr[:-_STDERR_KEEP]

    def _waiting_on_us(self) -> bool:
        return _pipe_bytes(self.proc.stdin) == 0 or bool(_pipe_bytes(self.proc.stdout))

    def _give_up(self, why: str) -> None:
        self._killed_because = why
        self.kill()

    def _watch(self) -> None:
        err = self.proc.stderr
        fd = err.fileno() if err is not None else -1
        tick = min(1.0, (self._stall or 10.0) / 10)
        started = last_progress = next_check = time.monotonic()
        seen: object = None
        while not self._done.is_set():
            if fd != -1:
                if select.select([fd], [], [], tick)[0]:
                    data = os.read(fd, 65536)
                    if data:
                        self._keep(data)
                    else:
                        fd = -1  # EOF: keep watching until the caller has reaped the tool
            else:
                self._done.wait(tick)
            now = time.monotonic()
            if self._killed_because is not None or now < next_check:
                continue
            next_check = now + tick
            if self._timeout is not None and now - started > self._timeout:
                self._give_up(f"timed out after {self._timeout:.0f} s")
                continue
            sample = _io_sample(self.proc.pid)
            if sample is None or sample != seen or self._waiting_on_us():
                seen, last_progress = sample, now
            elif self._stall is not None and now - last_progress > self._stall:
                self._give_up(f"stalled: no progress for {self._stall:.0f} s")
        while fd != -1 and select.select([fd], [], [], 0)[0]:  # what is left after the exit
            data = os.read(fd, 65536)
            if not data:
                break
            self._keep(data)


def start_tool(
    argv: Sequence[str],
    *,
    stdin: Stdio = DEVNULL,
    stdout: Stdio = PIPE,
    pass_fds: Sequence[int] = (),
    stall: float | None = DEFAULT_STALL,
    timeout: float | None = None,
    cpu_seconds: int | None = None,
    memory: int | None = DEFAULT_MEMORY,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str = "",
) -> ToolStream:
    """Start `argv` as a `ToolStream`; the caller must end it with `wait`/`check` or, on any
    failure, `abort`. Prefer `stream_tool`, which does that.

    Same protections as `run_tool`: its own session and process group, core dumps off,
    optional CPU-time and address-space limits, death with the starting thread (Linux).
    `memory=None` for a Go program such as age: the Go runtime reserves ~1 GB of address
    space up front (measured: age 1.1.1 fails under an 800 MB RLIMIT_AS, on 2 cores; more
    with more cores) while using ~5 MB. The limits are set before this returns, so
    anything secret must reach the tool through its pipes afterwards, never through argv.
    """
    name = Path(argv[0]).name
    label = f"{name}{f' ({what})' if what else ''}"
    if shutil.which(argv[0]) is None:
        raise MediaError(f"{name} is not installed")
    setpriv = _setpriv()
    if env is None:  # ours, less the passphrase: no tool needs it, /proc would show it
        env = _child_environment()
    try:
        if setpriv is None:  # not Linux, or no util-linux: the slower fork() way
            proc = subprocess.Popen(
                list(argv), stdin=stdin, stdout=stdout, stderr=PIPE, pass_fds=tuple(pass_fds),
                env=env, cwd=cwd, start_new_session=True,
                preexec_fn=lambda: _limits(cpu_seconds, memory),
            )
        else:
            proc = subprocess.Popen(
                [setpriv, "--pdeathsig", "KILL", "--", *argv], stdin=stdin, stdout=stdout,
                stderr=PIPE, pass_fds=tuple(pass_fds), env=env, cwd=cwd,
                start_new_session=True,
            )
    except OSError as exc:
        raise MediaError(f"cannot start {name}: {exc.strerror or exc}") from None
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        if setpriv is not None:
            _await_exec(proc.pid, setpriv)
            _set_limits(proc.pid, cpu_seconds, memory)
        return ToolStream(proc, label, stall=stall, timeout=timeout)
    except BaseException:
        _kill_group(proc)
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        raise


@contextlib.contextmanager
def stream_tool(
    argv: Sequence[str],
    *,
    stdin: Stdio = DEVNULL,
    stdout: Stdio = PIPE,
    pass_fds: Sequence[int] = (),
    stall: float | None = DEFAULT_STALL,
    timeout: float | None = None,
    cpu_seconds: int | None = None,
    memory: int | None = DEFAULT_MEMORY,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str = "",
    check: bool = True,
) -> Iterator[ToolStream]:
    """Run `argv` for the length of a `with` block, yielding its `ToolStream`.

    Leaving the block normally closes the pipes and waits; with `check`, a non-zero exit is a
    `MediaError` with the tail of stderr (callers that word their own errors call `wait`
    themselves and pass `check=False`). Any exception in the block kills the whole process
    group first. A stall or timeout is always a `MediaError`. See `start_tool` for the rest.
    """
    tool = start_tool(argv, stdin=stdin, stdout=stdout, pass_fds=pass_fds, stall=stall,
                      timeout=timeout, cpu_seconds=cpu_seconds, memory=memory, env=env,
                      cwd=cwd, what=what)
    try:
        yield tool
        if check:
            tool.check()
        else:
            tool.wait()
    except BaseException:
        tool.abort()
        raise
