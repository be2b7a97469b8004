"""The sandbox every in-process decoder of an original runs in: a child process with rlimits,
a wall-clock timeout, no network and a private directory.

PyAV (libavcodec) parses hostile bytes inside the Python process that calls it. In a pipeline
worker that would put a crafted clip next to the vault's identity: a decoder crash would kill
the worker, a hang would wedge it, a memory bomb would take the machine, and code execution
would read the key. So `run` calls a function in a child forked from a *fork server*: a fresh
interpreter, started with the secrets scrubbed from its environment, that has imported PyAV,
numpy and Pillow once (a whole sandboxed call then costs ~12 ms; a fresh interpreter per file
would cost ~210 ms of imports, measured here). Before the function runs, the child

- gets its own process group (the parent kills the whole group) and dies with the fork server,
  which dies with the process that started it (a parent-death signal chain);
- leaves the network: `unshare(CLONE_NEWNET)` puts it in a new namespace whose only interface,
  loopback, is down. Without root it tries a user namespace first; where neither is allowed it
  runs with the network and says so (`isolation()`, "best effort"), so a report can record it;
- sets RLIMIT_AS (what it maps already plus `memory`), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE=0
  and no-new-privileges; SIGXFSZ is ignored, so a file over the limit is a write error;
- works in a private 0700 dir (its cwd and TMPDIR) that the parent removes in `finally`.

The parent waits at most `timeout` seconds, then kills the group. What comes back is JSON
written into that dir, never a pickle: a child taken over by a crafted file must not be able to
run code in the worker through what it returns. Files it leaves there are handed to the caller
as paths to plain files (validated: a name in the dir, a regular file, not a link) while the
`with` lasts; the caller reads them as bytes, it does not parse them.

External tools (ffprobe, ffmpeg) get the same treatment through `run_tool(..., isolate=True)`
(`media/run.py`): `leave_network` is called between fork and exec.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import json
import os
import pickle
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.errors import MediaError, StrongroomError
from strongroom.media.run import (
    DEFAULT_MEMORY,
    die_with_parent,
    leave_network,
    no_new_privileges,
    track_group,
    untrack_group,
)

#: RLIMIT_FSIZE of a sandboxed child: no file it writes may be larger (the biggest legitimate
#: one is a greyscale 8K frame handed back for OCR, 33 MB).
DEFAULT_FILE_SIZE = 256 * 1024**2
#: What the fork server imports once, so that its children do not: the decoders, and the
#: pipeline steps whose frame consumers run beside them. `__main__` too: without it every child
#: would import the parent's main script again (multiprocessing's preparation step).
PRELOAD = ("__main__", "av", "numpy", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont", "pdqhash",
           "strongroom.pipeline.decode", "strongroom.pipeline.steps")
_RESULT = ".result.json"
_STDERR = ".stderr"
_STDERR_TAIL = 2000
#: Signals by which a decoder dies of its own bug (as opposed to one of our limits).
_CRASHES = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE,
            signal.SIGTRAP, signal.SIGSYS)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed call may use. `memory` is address space *beyond* what the child maps
    when it starts (the interpreter and the preloaded libraries, ~0.5 GB of mostly shared
    mappings), so that the budget means the same on every machine."""

    timeout: float
    memory: int = DEFAULT_MEMORY
    cpu_seconds: int | None = None  # default: the timeout on every core, plus 10 s
    file_size: int = DEFAULT_FILE_SIZE

    def cpu(self) -> int:
        if self.cpu_seconds is not None:
            return self.cpu_seconds
        return int(self.timeout * (os.cpu_count() or 1)) + 10


class SandboxError(MediaError):
    """A sandboxed call failed; `kind` says how, for reports: `timeout`, `memory`, `cpu`,
    `file_size`, `crash` (killed by its own fault), `killed` (by someone else: the OOM killer),
    `error` (a clear error raised inside) or `bug` (an unexpected exception inside)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Boxed:
    """A finished sandboxed call: the JSON value its function returned, and its private dir
    (valid until the `with` of `run` ends)."""

    value: Any
    dir: Path
    network: str  # how the child was cut off from the network (see `leave_network`)

    def file(self, name: object) -> Path:
        """A file the child left in its dir, by plain name; anything else is refused."""
        if (not isinstance(name, str) or not name or name in (".", "..")
                or "/" in name or "\0" in name):
            raise SandboxError(f"the sandbox named a file outside its dir: {name!r:.80}",
                               "error")
        path = self.dir / name
        try:
            st = path.lstat()
        except OSError:
            raise SandboxError(f"the sandbox did not leave the file {name!r:.80}",
                               "error") from None
        import stat

        if not stat.S_ISREG(st.st_mode):
            raise SandboxError(f"the sandbox left {name!r:.80} as something other than a "
                               "plain file", "error")
        return path


# --- the fork server -------------------------------------------------------------------------

class _Server:
    """A fresh interpreter (started with our environment less the passphrase) that imports
    the decoders once and forks one child per request: its children never held a key, and
    cost a fork instead of ~210 ms of imports. One request at a time over its stdin and
    stdout: a pickled (fn, args, limits, box, what) in — trusted, it comes from us — and two
    numbers out: the child's pid once forked, its exit status (as `Popen.returncode`) once
    reaped. It dies with the process that started it (parent-death signal, and end-of-file)."""

    def __init__(self) -> None:
        from strongroom.settings import child_environment

        code = ("import sys, pickle; sys.path[:] = pickle.load(sys.stdin.buffer); "
                "from strongroom.media.sandbox import serve; serve()")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0,
                                     env=child_environment(), start_new_session=True,
                                     preexec_fn=lambda: die_with_parent(signal.SIGKILL))
        self._send(pickle.dumps(list(sys.path)), framed=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _send(self, data: bytes, *, framed: bool = True) -> None:
        if self.proc.stdin is None:  # pragma: no cover - Popen was given stdin=PIPE
            raise SandboxError("the sandbox's fork server has no stdin", "error")
        self.proc.stdin.write((struct.pack("<I", len(data)) if framed else b"") + data)
        self.proc.stdin.flush()

    def start(self, request: bytes) -> int:
        self._send(request)
        pid = self.read(60.0)
        if pid is None:
            raise SandboxError("the sandbox's fork server did not fork", "error")
        if pid < 0:
            raise SandboxError("the sandbox's fork server could not load the call (a "
                               "function it cannot import? see stderr)", "error")
        return pid

    def read(self, timeout: float | None) -> int | None:
        """The next number from the server; None if none came within `timeout`."""
        if self.proc.stdout is None:  # pragma: no cover - Popen was given stdout=PIPE
            raise SandboxError("the sandbox's fork server has no stdout", "error")
        fd = self.proc.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        buf = b""
        while len(buf) < 8:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                if not buf:
                    return None
                continue  # half a number: the rest is on its way
            chunk = os.read(fd, 8 - len(buf))
            if not chunk:
                raise SandboxError("the sandbox's fork server died", "error")
            buf += chunk
        value: int = struct.unpack("<q", buf)[0]
        return value

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


_SERVER: _Server | None = None
_SERVER_LOCK = threading.Lock()


def shutdown() -> None:
    """Stop this process's fork server (the next `run` starts a fresh one, with the
    environment as it is then)."""
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is not None:
            _SERVER.stop()
            _SERVER = None


def serve() -> None:  # pragma: no cover - the fork server's main loop
    die_with_parent(signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    stdin = sys.stdin.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            os._exit(0)
        try:  # from the worker that started us, over our own pipe: trusted
            request = pickle.loads(stdin.read(struct.unpack("<I", head)[0]))  # noqa: S301
        except Exception:  # e.g. a function defined in the caller's __main__
            traceback.print_exc()
            os.write(1, struct.pack("<q", -1))
            continue
        pid = os.fork()
        if pid == 0:
            _child(*request)  # never returns
        with contextlib.suppress(OSError):  # the child does the same: no race either way
            os.setpgid(pid, pid)
        os.write(1, struct.pack("<q", pid))
        _, status = os.waitpid(pid, 0)
        os.write(1, struct.pack("<q", os.waitstatus_to_exitcode(status)))


# --- the child -------------------------------------------------------------------------------

def _vm_size() -> int:
    """Bytes of address space this process maps now (VmSize)."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(limits: Limits) -> None:
    cpu = limits.cpu()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump plaintext frames
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    address = _vm_size() + limits.memory
    resource.setrlimit(resource.RLIMIT_AS, (address, address))


def _child(fn: Callable[..., Any], args: tuple[Any, ...], limits: Limits, box: str,
           what: str) -> None:  # pragma: no cover - runs in the sandbox (tests see its effects)
    """Runs in the forked child: confine this process, call `fn(box, *args)`, write the
    result as JSON, exit without running any parent's clean-up."""
    code = 3
    try:
        # first, away from the fork server's pipes: the child cannot speak for it
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(os.path.join(box, _STDERR), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.close(null)
        os.close(err)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own group, killed whole; not the terminal's (no Ctrl-C)
        die_with_parent(signal.SIGKILL)
        network = leave_network()
        no_new_privileges()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.chdir(box)
        os.environ["TMPDIR"] = box
        tempfile.tempdir = box
        _set_limits(limits)
        try:
            out: dict[str, Any] = {"ok": fn(Path(box), *args)}
        except MemoryError:
            out = {"error": f"out of memory {what} (the sandbox's limit is "
                            f"{limits.memory / 1024**2:.0f} MB)", "kind": "memory"}
        except StrongroomError as exc:
            out = {"error": str(exc), "kind": "error"}
        except OSError as exc:  # PyAV's errors are OSErrors too
            why = exc.strerror or str(exc)
            if exc.errno == errno.EFBIG:
                out = {"error": f"{what}: {why} (the sandbox's file size limit)",
                       "kind": "file_size"}
            elif exc.errno in (errno.ENOMEM, errno.EAGAIN):  # no memory, or none for a thread
                out = {"error": f"out of memory {what} ({why}; the sandbox's limit is "
                                f"{limits.memory / 1024**2:.0f} MB)", "kind": "memory"}
            else:
                out = {"error": f"{what}: {why}", "kind": "error"}
        except Exception as exc:
            out = {"error": describe_bug(exc), "kind": "bug"}
        out["network"] = network
        try:
            text = json.dumps(out, allow_nan=False)
        except ValueError as exc:  # NaN or the like in a step's data: a bug, said as one
            text = json.dumps({"error": f"{what}: the result is not JSON: {describe_bug(exc)}",
                               "kind": "bug", "network": network})
        with open(_RESULT, "w", encoding="utf-8") as f:
            f.write(text)
        code = 0
    except BaseException:  # the set-up or the result's encoding failed: say so on stderr
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    os._exit(code)


def describe_bug(exc: BaseException) -> str:
    """An unexpected exception as one line that says where it happened (a bug, not bad
    input: the error names the file and line to fix)."""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    text = " ".join(str(exc).split())  # one line (OpenCV's messages hold newlines)
    return f"{type(exc).__name__}: {text}" + (
        f" ({Path(where.filename).name}:{where.lineno})" if where else "")


# --- the parent ------------------------------------------------------------------------------

@contextlib.contextmanager
def private_dir(base: Path | str | None, prefix: str = "strongroom-box-") -> Iterator[Path]:
    """A 0700 dir under `base` (default: the system's temp dir), removed when the `with`
    ends, however it ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base or None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def run(fn: Callable[..., Any], *args: Any, limits: Limits, base: Path | str | None = None,
        what: str = "decoding") -> Iterator[Boxed]:
    """Call `fn(box_dir, *args)` in the sandbox; yields its JSON-able return value and the
    files it left, until the `with` ends (then its dir is removed). `fn` must be a module-level
    function; `args` are pickled to the child (we trust the child's starting state, never its
    answers). Every failure — a clear error raised inside, a crash, the timeout, a limit — is
    a `SandboxError` that says which."""
    with private_dir(base) as box:
        yield _call(fn, args, limits, box, what)


def _call(fn: Callable[..., Any], args: tuple[Any, ...], limits: Limits, box: Path,
          what: str) -> Boxed:
    global _SERVER
    request = pickle.dumps((fn, args, limits, str(box), what))
    with _SERVER_LOCK:  # one child at a time per server: a worker does one task at a time
        if _SERVER is None or not _SERVER.alive():
            _SERVER = _Server()
        server = _SERVER
        started = time.monotonic()
        try:
            pid = server.start(request)
        except (OSError, SandboxError) as exc:
            server.stop()
            _SERVER = None
            raise SandboxError(f"{what}: the sandbox could not start ({exc})", "error") from None
        track_group(pid)
        timed_out = False
        try:
            code = server.read(limits.timeout)
            if code is None:
                timed_out = True
                _kill_group(pid)
                code = server.read(60.0)
        except BaseException:
            _kill_group(pid)
            server.stop()  # we may be mid-message: start afresh next time
            _SERVER = None
            raise
        finally:
            untrack_group(pid)
    seconds = time.monotonic() - started
    if timed_out:
        raise SandboxError(f"{what} timed out after {limits.timeout:g} s (killed)", "timeout")
    if code != 0:
        raise _died(code, what, limits, box, seconds)
    try:
        with open(box / _RESULT, "rb") as f:
            raw = f.read(limits.file_size + 1)
        out = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise SandboxError(f"{what}: the sandbox gave no readable result ({exc})",
                           "error") from None
    if not isinstance(out, dict):
        raise SandboxError(f"{what}: the sandbox gave a malformed result", "error")
    network = str(out.get("network") or "unknown")
    if "error" in out:
        kind = out.get("kind")
        raise SandboxError(str(out["error"])[:_STDERR_TAIL],
                           kind if isinstance(kind, str) and kind in _KINDS else "error")
    return Boxed(value=out.get("ok"), dir=box, network=network)


_KINDS = ("timeout", "memory", "cpu", "file_size", "crash", "killed", "error", "bug")


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _died(code: int | None, what: str, limits: Limits, box: Path, seconds: float
          ) -> SandboxError:
    """Why a child ended without a result, from its exit status and the tail of its stderr."""
    tail = _stderr_tail(box)
    tail = f": {tail}" if tail else ""
    if code is None or code >= 0:
        return SandboxError(f"{what} failed in the sandbox (exit {code}){tail}", "error")
    sig = -code
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    if sig == signal.SIGXCPU:
        return SandboxError(f"{what} hit the CPU time limit ({limits.cpu()} s; killed by "
                            f"{name}){tail}", "cpu")
    if sig == signal.SIGXFSZ:
        return SandboxError(f"{what} hit the file size limit "
                            f"({limits.file_size / 1024**2:.0f} MB){tail}", "file_size")
    if sig in _CRASHES:
        return SandboxError(f"the decoder crashed {what} (killed by {name} after "
                            f"{seconds:.1f} s; the worker is unharmed){tail}", "crash")
    return SandboxError(f"{what} was killed by {name} after {seconds:.1f} s (not by us: "
                        f"the out-of-memory killer?){tail}", "killed")


def _stderr_tail(box: Path, lines: int = 3) -> str:
    try:
        with open(box / _STDERR, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-_STDERR_TAIL:]


# --- what this machine gives -------------------------------------------------------------------

def _report(box: Path) -> dict[str, Any]:  # pragma: no cover - runs in the sandbox
    import socket

    limits = {}
    with open("/proc/self/limits", encoding="ascii") as f:
        for line in f:
            for name in ("Max address space", "Max cpu time", "Max file size",
                         "Max core file size"):
                if line.startswith(name):
                    limits[name] = line[len(name):].split()[0]
    try:
        with socket.create_connection(("127.0.0.1", 9), timeout=1):
            reach = "connected"
    except OSError as exc:
        reach = f"failed: {exc.strerror or exc}"
    return {"limits": limits, "connect_127.0.0.1": reach, "cwd": os.getcwd(),
            "cwd_mode": oct(os.stat(".").st_mode & 0o777), "uid": os.getuid()}


@functools.cache
def network_mode() -> str:
    """How a sandboxed child leaves the network on this machine, asked of a throwaway fork
    (cheap: no fork server): `netns`, `userns+netns`, or `none: <why>` (best effort)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the throwaway child
        try:
            os.write(w, leave_network().encode()[:512])
        finally:
            os._exit(0)
    os.close(w)
    try:
        data = os.read(r, 1024)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return data.decode(errors="replace") or "unknown"


@functools.cache
def isolation() -> dict[str, Any]:
    """What the sandbox gives on this machine, asked of a real sandboxed child: how it left
    the network, whether it can still connect to 127.0.0.1, its limits."""
    with run(_report, limits=Limits(timeout=60), what="checking the sandbox") as boxed:
        return {"network": boxed.network, **boxed.value}
