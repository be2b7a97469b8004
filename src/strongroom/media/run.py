"""The one way Strongroom runs an external binary (ffmpeg, ffprobe, tesseract, ...).

Every call gets a wall-clock timeout, CPU-time and address-space limits (a hostile or broken
file must not hang or exhaust the machine), its own process group (a timeout kills ffmpeg's
helpers too), and keeps the tail of stderr for the error message. The exact argv is returned
so that derivatives can record the command line that made them. On Linux a tool also dies with
the process that started it (a parent-death signal): a SIGKILLed pipeline worker must not leave
an ffmpeg behind that still reads the plaintext.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.errors import MediaError

#: Defaults for one call; large enough for a multi-hour 1080p clip, small enough to stop a bomb.
DEFAULT_TIMEOUT = 3600.0
DEFAULT_MEMORY = 4 * 1024**3
_STDERR_TAIL = 4000
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: Tools running now, so that a worker told to stop can kill them before it exits.
_RUNNING: set[subprocess.Popen[bytes]] = set()
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


def kill_running_tools() -> None:
    """SIGKILL every tool this process is running now (a worker that must stop at once)."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _limits(cpu_seconds: int | None, memory: int | None) -> None:  # pragma: no cover - child
    die_with_parent(signal.SIGKILL)
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump plaintext frames


def run_tool(
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cpu_seconds: int | None = None,
    memory: int | None = DEFAULT_MEMORY,
    cwd: Path | None = None,
    what: str = "",
) -> ToolResult:
    """Run `argv`, returning its stdout; any failure is a `MediaError` with stderr's tail."""
    name = Path(argv[0]).name
    label = f"{name}{f' ({what})' if what else ''}"
    if cpu_seconds is None:
        cpu_seconds = int(timeout * (os.cpu_count() or 1)) + 10
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, start_new_session=True,
            preexec_fn=lambda: _limits(cpu_seconds, memory),
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
        if proc.returncode < 0:
            why = f"killed by signal {signal.Signals(-proc.returncode).name}"
            if proc.returncode == -signal.SIGXCPU:
                why += " (CPU time limit)"
        else:
            why = f"exit {proc.returncode}"
        raise MediaError(f"{label} failed ({why}): {_tail(stderr)}")
    return ToolResult(argv=list(argv), stdout=out, stderr=stderr[-_STDERR_TAIL:],
                      seconds=time.perf_counter() - started)


def _tail(stderr: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-_STDERR_TAIL:] or "no error output"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
